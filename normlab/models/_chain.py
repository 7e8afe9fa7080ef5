"""Shared pieces of the model builders: a named chain and activation lookup."""

from __future__ import annotations

from normlab import nn

__all__ = ["NamedChain", "ACTIVATIONS", "make_activation"]

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")


def make_activation(owner: str, name: str):
    """``nn.ReLU()``, ``nn.Tanh()``, ``nn.Sigmoid()`` or ``nn.LeakyReLU()`` by name."""
    classes = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "leaky_relu": "LeakyReLU"}
    if name not in classes:
        raise ValueError(f"{owner}: expected activation in {ACTIVATIONS}, got {name!r}.")
    return getattr(nn, classes[name])()


class NamedChain(nn.Module):
    """Runs its children in registration order, like ``torch.nn.Sequential(OrderedDict(...))``.

    Children keep the attribute names they were assigned (``conv1``, ``bn1``, ``fc``),
    so ``state_dict`` keys equal those of a PyTorch module with the same attribute
    names. ``backward`` runs the children's backward in reverse order.
    """

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        self._cache = True
        return x

    def backward(self, dout):
        self._require_cache()
        for m in reversed(list(self._modules.values())):
            dout = m.backward(dout)
        return dout
