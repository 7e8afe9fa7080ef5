"""Sequential container."""

from __future__ import annotations

from normlab.nn.module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """Chains modules; children are named ``"0"``, ``"1"``, ... as in PyTorch.

    ``Sequential(a, b)`` or, as ``torch.nn.Sequential(OrderedDict(...))``, one dict of
    named modules. ``backward`` runs the children's backward in reverse order.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            for name, m in modules[0].items():
                self.add_module(str(name), m)
            return
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self._modules)), module)
        return self

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
