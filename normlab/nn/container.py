"""Sequential container."""

from __future__ import annotations

from normlab.nn import _fusion, _owned
from normlab.nn.module import Module
from normlab.validation import check_bool

__all__ = ["Sequential"]


class Sequential(Module):
    """Chains modules; children are named ``"0"``, ``"1"``, ... as in PyTorch.

    ``Sequential(a, b)`` or, as ``torch.nn.Sequential(OrderedDict(...))``, one dict of
    named modules. ``backward`` runs the children's backward in reverse order; with
    ``overwrite_dout=True`` (the caller hands ``dout`` over) the children may write their
    gradients over it, as they may over the new arrays the others return (``nn._owned``).
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

    def _first_learnable(self) -> int:
        """Index of the first child with parameters (its subtree's); ``len`` if none."""
        for i, m in enumerate(self._modules.values()):
            if any(sub.params for sub in m.modules()):
                return i
        return len(self._modules)

    def set_requires_dx(self, flag: bool) -> "Sequential":
        """``requires_dx`` for the chain: with ``False``, ``backward`` stops at the first
        learnable child (which may skip its own input gradient) and returns ``None``;
        the parameter-free children before it are not backpropagated."""
        self.requires_dx = bool(flag)
        children = list(self._modules.values())
        first = self._first_learnable()
        if first < len(children):
            children[first].set_requires_dx(flag)
        return self

    def forward(self, x):
        children = list(self._modules.values())
        i = 0
        fresh = False  # x is a conv's new output that only this loop holds (inference)
        while i < len(children):
            m = children[i]
            if i + 1 < len(children) and _fusion.fusable(m, children[i + 1]):
                # BN + ReLU/Sigmoid: one pass (over a fresh conv output, in place)
                x = _fusion.bn_act(m, children[i + 1], x, overwrite_x=fresh)
                i += 2
                fresh = False
                continue
            x = m(x)
            fresh = _fusion.fresh_output(m)
            i += 1
        self._cache = True
        return x

    def backward(self, dout, overwrite_dout=False):
        self._require_cache()
        owned = check_bool(overwrite_dout, "overwrite_dout", type(self).__name__)
        children = list(self._modules.values())
        if not self.requires_dx:  # nothing uses dx: stop after the last parameters
            children = children[self._first_learnable():]
        for m in reversed(children):
            dout, owned = _owned.backward(m, dout, owned)
        return dout if self.requires_dx else None

    _takes_dout = True  # nn._owned

    def _dx_fresh(self) -> bool:  # its dx is its first child's
        first = next(iter(self._modules.values()), None)
        return self.requires_dx and first is not None and _owned.fresh(first)
