"""Gradients that a container hands over to the next child in ``backward``.

PyTorch's engine frees a gradient once the node that consumes it has run. normlab passes
gradients down Python frames instead: the container's loop variable, the checked
wrapper's argument and the child's own parameter all hold the incoming ``dout`` until the
child returns, also where the child no longer needs it. A ResNet block's ReLU backward
makes ``d(main + shortcut)`` from the block's ``dout``, and while the block's two branches
run, ``dout`` (a whole activation's size) stays alive beside it: at the step's peak.

Where a container knows that nothing but its own frames holds a gradient (a new array
that a child's library ``backward`` has just returned), it lets the next child write over
it: ``backward(dout, overwrite_dout=True)`` for the modules that take it (``ReLU`` and
``Sigmoid`` write their gradient in place, a training batch norm and a stride-1 Winograd
``Conv2d`` their dx, where shapes and dtypes allow; ``Sequential`` and
``models.BasicBlock`` hand it on). The results are the same bits; an array that the caller
of the outermost ``backward`` passed in is never written unless it passes
``overwrite_dout=True`` itself.

What a module's ``backward`` gives and takes is declared by the class that defines that
``backward``, so a subclass that overrides it (to record gradients, say) is handed
nothing and its output is not trusted, unless it declares the same:

* ``_dx_fresh``: its ``backward`` returns a new array that nothing else holds (or a
  function of the module saying whether it does, for containers);
* ``_dx_view``: it returns ``dout`` itself or a view of it (``Flatten``, ``Identity``):
  owned if ``dout`` was;
* ``_takes_dout``: its ``backward`` accepts ``overwrite_dout``.
"""

from __future__ import annotations

__all__ = ["backward", "fresh"]


def _declared(m, name: str) -> bool:
    """What the class that defines ``m``'s ``backward`` declares under ``name``."""
    if "backward" in m.__dict__:  # a backward set on the instance (a spy)
        return False
    for cls in type(m).__mro__:
        if "backward" in vars(cls):
            flag = vars(cls).get(name, False)
            return bool(flag(m) if callable(flag) else flag)
    return False


def fresh(m) -> bool:
    """Whether ``m.backward`` returns a new array that nothing but its caller holds."""
    return _declared(m, "_dx_fresh")


def backward(m, dout, owned: bool):
    """``m.backward(dout)``, handing ``dout`` over where ``owned`` (nothing but the
    caller holds it) and ``m`` takes it. Returns ``(dx, dx_owned)``."""
    if owned and _declared(m, "_takes_dout"):
        dx = m.backward(dout, overwrite_dout=True)
    else:
        dx = m.backward(dout)
    return dx, dx is not None and (fresh(m) or (owned and _declared(m, "_dx_view")))
