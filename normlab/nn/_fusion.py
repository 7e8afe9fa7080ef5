"""Batch norm and ReLU run as one pass where a container meets them in a row.

In eval mode (running statistics) batch norm is a fixed per-channel affine map, and the
ReLU after it (with a residual added in between, in ResNet's blocks) can be computed in
the same pass over the data: ``functional.fused.batch_norm_eval_relu_forward``, which
gives the bits of the separate ops. ``Sequential`` and ``models.BasicBlock`` ask
``fusable`` and then call ``bn_relu`` instead of the two modules; each module is left as
if it had run its own forward (its own cache, its output recorded, ``no_grad`` honoured),
so ``backward`` runs unchanged, module by module.

Only the library's own forwards are fused: a subclass that overrides ``forward`` or
``__call__`` (to record activations, say) runs as written. Training-mode batch norm is
never fused.
"""

from __future__ import annotations

from normlab.functional import fused
from normlab.nn._checked import _forward_done
from normlab.nn.activation import ReLU
from normlab.nn.batchnorm import _BatchNorm
from normlab.nn.module import Module
from normlab.validation import check_array

__all__ = ["fusable", "bn_relu"]


def _own(m, cls) -> bool:
    """``m`` is a ``cls`` that runs ``cls``'s forward through ``Module.__call__``."""
    t = type(m)
    return isinstance(m, cls) and t.forward is cls.forward and t.__call__ is Module.__call__


def fusable(bn, relu) -> bool:
    """Whether ``relu(bn(x))`` may run as one fused pass: a batch norm using its running
    statistics, then a ReLU, both with the library's own forward."""
    return _own(bn, _BatchNorm) and _own(relu, ReLU) and bn.uses_running_stats()


def bn_relu(bn, relu, x, residual=None):
    """``relu(bn(x) + residual)`` (``residual`` optional) in one pass; ``fusable(bn, relu)``
    must hold. Each module keeps the cache its own forward would have kept."""
    check_array(x, type(bn).__name__, allow_empty=True)  # what bn's checked forward checks
    axes, gamma, beta = bn._checked_args(x)
    out, cache = fused.batch_norm_eval_relu_forward(
        x, gamma, beta, *bn._running_as(x), axes=axes, eps=bn.eps, residual=residual)
    bn._cache = ("eval", cache.bn)
    relu._cache = cache.relu
    _forward_done(bn, out)  # bn's own output had out's shape and device
    _forward_done(relu, out)
    return out
