"""SyncBatchNorm: batch norm whose statistics are those of the batch of *every* process.

Built on the batch-norm stages of ``normlab.functional`` (PyTorch's SyncBatchNorm and
apex do the same)::

    forward:  batch_moments(x)  ->  allgather (count, mean, var) of every rank
              merge_moments      ->  global Moments (Chan, count-weighted, exact)
              forward_from_moments; running stats from the global moments and count
    backward: backward_reduce    ->  local sum(dy), sum(dy * x_hat)
              allreduce the two sums; backward_elementwise with the global count

So outputs, ``dx`` and running statistics equal those of BatchNorm on the concatenated
batch, whatever each rank holds: uneven batches, a rank with one sample or none (as
long as the global count per channel exceeds 1).

Parameter gradients follow the data-parallel convention (PyTorch's DDP): ``grads``
holds this rank's share, ``sum(dy * x_hat)`` and ``sum(dy)`` over its own samples, and
the gradient all-reduce of the trainer (``DataParallelTrainer``) sums the shares like
those of every other parameter. Summing them here as well would count them twice.
"""

from __future__ import annotations


import numpy as np

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab import backend
from normlab import functional as F
from normlab.distributed.comm import Communicator, init
from normlab.nn.batchnorm import (BatchNorm1d, BatchNorm2d, BatchNorm3d, _BatchNorm,
                                  _check_float_input, _param_as, _store)
from normlab.nn.module import Module

__all__ = ["SyncBatchNorm", "convert_sync_batchnorm"]


def _check_comm(owner: str, comm):
    if comm is None:
        return init()
    if not isinstance(comm, Communicator):
        raise NormlabTypeError(f"{owner}: expected comm to be a normlab.distributed "
                        f"Communicator, got {type(comm).__name__}. Use "
                        "normlab.distributed.init().")
    return comm


class SyncBatchNorm(_BatchNorm):
    """Batch norm over the union of every process's batch (N, C, *), any rank 2 to 5.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with ``mean`` and the biased
    ``var`` per channel over the batches of all ranks of ``comm`` (and the spatial
    axes); running statistics as ``BatchNorm`` (PyTorch rule, unbiased variance of the
    global batch). Eval communicates nothing: it uses the running statistics or, with
    ``track_running_stats=False``, this rank's batch statistics (PyTorch does the same).

    Parameters
    ----------
    num_features, eps, momentum, affine, track_running_stats, dtype, bias, unbiased_running_var :
        As ``BatchNorm2d``.
    comm : Communicator, keyword only, optional
        Default ``normlab.distributed.init()`` (one process outside ``mpiexec``).

    Shape
    -----
    input (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W) -> output of the same shape.
    N may differ between ranks and be 0 on some.

    Raises
    ------
    ValueError
        As BatchNorm; "more than 1 value per channel" refers to the global batch.
    TypeError
        For a ``comm`` that is not a Communicator, as BatchNorm otherwise.
    """

    _expected = "(N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W)"
    _ranks = (2, 3, 4, 5)
    is_norm = True

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=np.float32,
                 *, bias: bool = True, unbiased_running_var: bool = True, comm=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype,
                         bias=bias, unbiased_running_var=unbiased_running_var)
        self.comm = _check_comm(type(self).__name__, comm)

    def _merged_moments(self, local):
        """Every rank's ``(count, mean, var)`` in one allgather, merged in rank order."""
        C = self.num_features
        xp = backend.namespace(local.mean)
        sdt = local.mean.dtype
        packed = xp.concatenate([xp.full(1, local.count, dtype=sdt), local.mean.astype(sdt),
                                 local.var.astype(sdt)])  # (2C + 1,); counts exact to 2**53
        rows = self.comm.allgather(packed)  # (size, 2C + 1)
        parts = [F.Moments(rows[r, 1:C + 1], rows[r, C + 1:], int(rows[r, 0]))
                 for r in range(rows.shape[0])]
        return F.merge_moments(parts)

    def forward(self, x):
        if not self.training:  # running (or, untracked, local) statistics, as PyTorch
            return super().forward(x)
        owner = type(self).__name__
        _check_float_input(owner, x)
        self._check_input_dim(x)
        self._check_channels(x)
        axes = self._axes(x)
        merged = self._merged_moments(F.batch_moments(x, axes))
        if merged.count <= 1:  # the same on every rank, so every rank raises
            raise NormlabValueError(
                f"{owner}: expected more than 1 value per channel when training, got "
                f"{merged.count} over all {self.comm.size} process(es) (input shape "
                f"{tuple(x.shape)} on rank {self.comm.rank}). Use a larger global batch, or "
                "call .eval() with tracked running statistics.")
        gamma, beta = _param_as(self, "weight", x.dtype), _param_as(self, "bias", x.dtype)
        out, cache = F.batch_norm_forward_from_moments(x, gamma, beta, merged, axes=axes,
                                                       eps=self.eps)
        if self.track_running_stats:
            self._update_buffers(cache.mean, cache.var, cache.count)  # global count
        self._cache = ("sync", cache)
        return out

    def backward(self, dout):
        mode, cache = self._require_cache()
        if mode != "sync":
            return super().backward(dout)
        sum_dy, sum_dy_xhat = F.batch_norm_backward_reduce(dout, cache)
        C = self.num_features
        xp = backend.namespace(sum_dy)
        total = self.comm.allreduce(xp.concatenate([sum_dy, sum_dy_xhat]))  # (2C,)
        dx = F.batch_norm_backward_elementwise(dout, cache, total[:C], total[C:], cache.count)
        dt = cache.x.dtype
        _store(self, sum_dy_xhat.astype(dt), sum_dy.astype(dt))  # this rank's share
        return dx

    def extra_repr(self) -> str:
        return super().extra_repr() + f", comm={self.comm!r}"


def _to_sync(bn: _BatchNorm, comm) -> SyncBatchNorm:
    dtype = next(iter(bn.params.values()), None)
    if dtype is None:
        dtype = bn.buffers.get("running_mean")
    dtype = np.float32 if dtype is None else dtype.dtype
    new = SyncBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine,
                        bn.track_running_stats, dtype, bias="bias" in bn.params,
                        unbiased_running_var=bn.unbiased_running_var, comm=comm)
    for src, dst in ((bn.params, new.params), (bn.grads, new.grads), (bn.buffers, new.buffers)):
        dst.clear()
        dst.update({k: v.copy() for k, v in src.items()})
    new.training = bn.training
    return new


def convert_sync_batchnorm(module: Module, comm=None) -> Module:
    """Replace every ``BatchNorm1d/2d/3d`` in ``module`` by an equal ``SyncBatchNorm``.

    Parameters, gradients, buffers, hyperparameters and the mode are kept (copied);
    child names (and so ``state_dict`` keys) do not change. Convert *before* building
    the optimizer: it holds references to the old layers' parameters.

    Parameters
    ----------
    module : Module
        Changed in place; a batch norm layer itself is returned converted.
    comm : Communicator, optional
        Default ``normlab.distributed.init()``.

    Returns
    -------
    Module
        ``module`` (or the new layer when ``module`` was a batch norm).

    Raises
    ------
    TypeError
        If ``module`` is not a Module or ``comm`` not a Communicator.
    """
    if not isinstance(module, Module):
        raise NormlabTypeError(f"convert_sync_batchnorm: expected a normlab Module, got "
                        f"{type(module).__name__}.")
    comm = _check_comm("convert_sync_batchnorm", comm)
    kinds = (BatchNorm1d, BatchNorm2d, BatchNorm3d)
    if type(module) in kinds:
        return _to_sync(module, comm)
    for parent in list(module.modules()):
        for name, child in list(parent._modules.items()):
            if type(child) in kinds:  # exact classes: other BN variants keep their maths
                new = _to_sync(child, comm)
                if parent.__dict__.get(name) is child:
                    setattr(parent, name, new)  # attribute and registration together
                else:
                    parent._modules[name] = new
    return module
