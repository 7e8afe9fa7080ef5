"""Shared pieces of the model builders: a named chain and activation lookup."""

from __future__ import annotations

from normlab import nn
from normlab.errors import NormlabValueError

__all__ = ["NamedChain", "ACTIVATIONS", "make_activation"]

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")


def make_activation(owner: str, name: str):
    """``nn.ReLU()``, ``nn.Tanh()``, ``nn.Sigmoid()`` or ``nn.LeakyReLU()`` by name."""
    classes = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "leaky_relu": "LeakyReLU"}
    if name not in classes:
        raise NormlabValueError(f"{owner}: expected activation in {ACTIVATIONS}, got {name!r}.")
    return getattr(nn, classes[name])()


class NamedChain(nn.Sequential):
    """A Sequential whose children keep the attribute names they were assigned.

    ``self.conv1 = ...; self.bn1 = ...`` registers them in order, so ``state_dict`` keys
    equal those of a PyTorch module with the same attribute names (``conv1.weight``);
    forward and backward are Sequential's (registration order, reversed for backward).
    """
