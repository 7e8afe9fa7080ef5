"""Ghost Batch Normalization (Hoffer et al. 2017): batch norm over virtual batches.

In training the batch is cut along axis 0 into consecutive chunks of
``virtual_batch_size`` samples (the last one smaller when ``N`` is not a multiple); each
chunk is normalised with its own statistics, and the running statistics take one step
per chunk, in order (``num_batches_tracked`` counts chunks). Eval is batch norm's eval.
With ``virtual_batch_size >= N`` the layer is bit for bit batch norm.
"""

from __future__ import annotations

import numpy as np

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab import backend
from normlab import functional as F
from normlab.functional import batchnorm as _bn
from normlab.nn.batchnorm import _BatchNorm

__all__ = ["GhostBatchNorm1d", "GhostBatchNorm2d"]


def _check_virtual_batch_size(owner: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise NormlabTypeError(
            f"{owner}: expected virtual_batch_size to be a positive int, got "
            f"{type(value).__name__} {value!r}."
        )
    if value <= 0:
        raise NormlabValueError(
            f"{owner}: expected virtual_batch_size to be a positive int, got {value!r}. It "
            "is the number of samples per virtual batch (default 32)."
        )
    return int(value)


class _GhostBatchNorm(_BatchNorm):
    """Batch norm whose training statistics come from virtual batches (Hoffer 2017).

    For each chunk ``x_k = x[k*V:(k+1)*V]`` (``V = virtual_batch_size``):
    ``y_k = (x_k - mean_k) / sqrt(var_k + eps) * weight + bias`` with the chunk's mean and
    biased variance; running statistics follow batch norm's rule once per chunk.
    Gradients: each chunk's batch-norm backward; ``weight``/``bias`` gradients summed
    over chunks. Eval (and ``track_running_stats=False`` in eval) is batch norm's.

    Parameters
    ----------
    num_features : int
    virtual_batch_size : int > 0, default 32
        Samples per virtual batch; settable between steps.
    eps, momentum, affine, track_running_stats, dtype, bias, unbiased_running_var
        As for ``BatchNorm1d``.

    Shape
    -----
    As the matching ``BatchNorm``.

    Raises
    ------
    ValueError
        A non-positive ``virtual_batch_size``; a virtual batch with one value per
        channel in training (e.g. a last chunk of one sample on (N, C) input); everything
        BatchNorm refuses.
    TypeError
        A non-int ``virtual_batch_size``.
    """

    def __init__(self, num_features: int, virtual_batch_size: int = 32, eps: float = 1e-5,
                 momentum=0.1, affine: bool = True, track_running_stats: bool = True,
                 dtype=np.float32, *, bias: bool = True, unbiased_running_var: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype,
                         bias=bias, unbiased_running_var=unbiased_running_var)
        self.virtual_batch_size = virtual_batch_size

    @property
    def virtual_batch_size(self) -> int:
        return self._virtual_batch_size

    @virtual_batch_size.setter
    def virtual_batch_size(self, value) -> None:
        self._virtual_batch_size = _check_virtual_batch_size(type(self).__name__, value)

    def _batch_forward(self, x, gamma, beta, axes):
        N, V = x.shape[0], self._virtual_batch_size
        if not self.training or V >= N:
            return super()._batch_forward(x, gamma, beta, axes)
        per_sample = x.size // (N * self.num_features)
        last = N - (N - 1) // V * V
        if last * per_sample == 1:
            raise NormlabValueError(
                f"{type(self).__name__}: expected more than 1 value per channel in every "
                f"virtual batch, got a last virtual batch of 1 sample (input shape "
                f"{tuple(x.shape)}, virtual_batch_size={V}). Use a batch size that leaves "
                "2 or more samples in the last chunk, or drop the last batch of the loader."
            )
        xp = backend.namespace(x)
        outs, caches = [], []
        for start in range(0, N, V):
            out, cache = F.batch_norm_forward(x[start:start + V], gamma, beta, axes=axes,
                                              eps=self.eps)
            if self.track_running_stats:
                self._update_buffers(cache.mean, cache.var, cache.count)
            outs.append(out)
            caches.append(cache)
        return xp.concatenate(outs, axis=0), ("ghost", (V, caches))

    def _batch_backward(self, dout, mode: str, payload):
        if mode != "ghost":
            return super()._batch_backward(dout, mode, payload)
        V, caches = payload
        xp = backend.namespace(dout)
        dxs, dgamma, dbeta = [], None, None
        for k, cache in enumerate(caches):
            dx, dg, db = _bn._backward(dout[k * V:(k + 1) * V], cache)  # dout checked once
            dxs.append(dx)
            dgamma = dg if dgamma is None else dgamma + dg
            dbeta = db if dbeta is None else dbeta + db
        return xp.concatenate(dxs, axis=0), dgamma, dbeta

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, virtual_batch_size={self._virtual_batch_size}"


class GhostBatchNorm1d(_GhostBatchNorm):
    """Ghost batch norm of (N, C) or (N, C, L) input. See ``_GhostBatchNorm``.

    Shape
    -----
    input (N, C) or (N, C, L) -> output of the same shape.
    """

    _expected = "(N, C) or (N, C, L)"
    _ranks = (2, 3)


class GhostBatchNorm2d(_GhostBatchNorm):
    """Ghost batch norm of (N, C, H, W) input. See ``_GhostBatchNorm``.

    Shape
    -----
    input (N, C, H, W) -> output (N, C, H, W).
    """

    _expected = "(N, C, H, W)"
    _ranks = (4,)
