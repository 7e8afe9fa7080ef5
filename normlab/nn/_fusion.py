"""Batch norm and the activation after it run as one pass where a container meets them.

Batch norm's output pass (a fixed per-channel affine map in eval mode, the normalising
pass after the statistics in training) can apply the ReLU or Sigmoid after it, with a
residual added in between in ResNet's blocks, while each value is at hand:
``functional.fused.batch_norm_eval_act_forward`` and ``batch_norm_act_forward``, which
give the bits of the separate ops. ``Sequential`` and ``models.BasicBlock`` ask
``fusable`` and then call ``bn_act`` instead of the two modules; each module is left as
if it had run its own forward (its own cache, its output recorded, ``no_grad`` honoured),
so ``backward`` runs unchanged, module by module.

At inference (``no_grad()``, caches not retained) a batch norm whose input a container
has just received from a ``Conv2d`` (the library's forward: a fresh array that nothing
else holds, ``fresh_output``) writes its result over that input instead of into a new
array (``overwrite_x`` of ``functional.fused.batch_norm_eval_act_forward``), and where
that array then goes straight into another such ``Conv2d`` of its shape (ResNet's second
conv of a block), the conv's output takes its memory too (``conv_over``).

Only the library's own forwards are fused: a subclass that overrides ``forward`` or
``__call__`` (to record activations, say), or whose instance has its own ``forward``
(``lab.setups.input_of_last``'s spy), runs as written, and so does a batch norm
whose batch statistics are its own (Ghost BN, Batch Renorm, SyncBatchNorm).
"""

from __future__ import annotations

from normlab.functional import fused
from normlab.nn._checked import _flags, _forward_done
from normlab.nn.activation import ReLU, Sigmoid
from normlab.nn.batchnorm import _BatchNorm
from normlab.nn.conv import Conv2d
from normlab.nn.module import Module
from normlab.validation import check_array

__all__ = ["ACTIVATIONS", "fusable", "bn_act", "fresh_output", "conv_over"]


def _own(m, cls) -> bool:
    """``m`` is a ``cls`` that runs ``cls``'s forward through ``Module.__call__`` (not a
    subclass's, nor one set on the instance, as a spy does)."""
    t = type(m)
    return (isinstance(m, cls) and t.forward is cls.forward and t.__call__ is Module.__call__
            and "forward" not in m.__dict__)


#: the activation modules batch norm fuses with, by their ``functional.fused`` name
ACTIVATIONS = {ReLU: "relu", Sigmoid: "sigmoid"}


def _activation(act):
    """``act``'s ``functional.fused`` activation name if it runs its class's own forward,
    else ``None``."""
    for cls, name in ACTIVATIONS.items():
        if _own(act, cls):
            return name
    return None


def fusable(bn, act) -> bool:
    """Whether ``act(bn(x))`` may run as one fused pass: a batch norm with the library's
    forward (in training, also BN's own batch-statistics step, not Ghost BN's, Batch
    Renorm's or SyncBatchNorm's), then a ReLU or a Sigmoid with theirs."""
    if _activation(act) is None or not _own(bn, _BatchNorm):
        return False
    return bn.uses_running_stats() or type(bn)._batch_forward is _BatchNorm._batch_forward


def fresh_output(m) -> bool:
    """Whether the array ``m``'s forward just returned is held by nothing but its caller:
    at inference (``no_grad()``, caches not retained) from a ``Conv2d`` running the
    library's forward, whose output is always a new array."""
    return (_flags.no_grad and not _flags.retain and _own(m, Conv2d)
            and type(m)._forward is Conv2d._forward)


def conv_over(conv, x):
    """``conv(x)`` for a ``Conv2d`` that ``fresh_output`` vouches for, given an ``x`` that
    only the caller holds (a fresh conv output, overwritten by its batch norm pass):
    the output may take ``x``'s memory (``conv2d_forward(..., overwrite_x=True)``; the
    same bits). The module is left as its own forward under ``no_grad()`` leaves it."""
    check_array(x, type(conv).__name__, allow_empty=True)  # what conv's checked forward checks
    out = conv._run(x, overwrite_x=True)
    _forward_done(conv, out)
    return out


def bn_act(bn, act, x, residual=None, overwrite_x=False):
    """``act(bn(x) + residual)`` (``residual`` optional) in one pass; ``fusable(bn, act)``
    must hold. Each module keeps the cache its own forward would have kept, and a
    training batch norm takes its running-statistics step. ``overwrite_x``: the caller
    owns ``x`` (``fresh_output``), so an eval batch norm may write its result over it."""
    check_array(x, type(bn).__name__, allow_empty=True)  # what bn's checked forward checks
    axes, gamma, beta = bn._checked_args(x)
    name = _activation(act)
    if bn.uses_running_stats():
        out, cache = fused.batch_norm_eval_act_forward(
            x, gamma, beta, *bn._running_as(x), axes=axes, eps=bn.eps, activation=name,
            residual=residual, overwrite_x=bool(overwrite_x))
        # x overwritten (cache None): no cache to keep, inference only
        bn._cache = None if cache is None else ("eval", cache.bn)
    else:
        bn._check_batch_count(x)
        out, cache = fused.batch_norm_act_forward(x, gamma, beta, axes=axes, eps=bn.eps,
                                                  activation=name, residual=residual)
        bn._cache = bn._batch_done(cache.bn)
    act._cache = None if cache is None else cache.act
    _forward_done(bn, out)  # bn's own output had out's shape and device
    _forward_done(act, out)
    return out
