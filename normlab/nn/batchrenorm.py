"""Batch Renormalization (Ioffe 2017): batch norm corrected towards the running statistics.

In training, with the batch mean ``mu_B`` and ``sigma_B = sqrt(var_B + eps)`` (biased
``var_B``) and the running ``mu`` and ``sigma = sqrt(running_var + eps)``::

    r = clip(sigma_B / sigma, 1 / r_max, r_max)      d = clip((mu_B - mu) / sigma, -d_max, d_max)
    y = weight * ((x - mu_B) / sigma_B * r + d) + bias

``r`` and ``d`` are constants for the backward pass (the paper's ``stop_gradient``), so
the gradient is batch norm's with ``weight`` scaled by ``r``. The affine map absorbs
them: ``y = (weight * r) * x_hat + (weight * d + bias)``, which is how the layer is
computed; with ``r_max=1, d_max=0`` this is bit for bit batch norm. Eval is batch norm's
eval (running statistics). ``r_max`` and ``d_max`` are settable between steps, so a
schedule (the paper relaxes 1 -> 3 and 0 -> 5 during training) can drive them.
"""

from __future__ import annotations

import numbers

import numpy as np

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab import backend
from normlab.functional import batchnorm as _bn
from normlab.nn.batchnorm import _BatchNorm

__all__ = ["BatchRenorm1d", "BatchRenorm2d"]


def _check_bound(owner: str, name: str, value, low: float, hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise NormlabTypeError(f"{owner}: expected {name} to be a float, got {type(value).__name__}.")
    if not value >= low:  # also refuses NaN
        raise NormlabValueError(f"{owner}: expected {name} >= {low:g}, got {name}={value!r}. {hint}")
    return float(value)


class _BatchRenorm(_BatchNorm):
    """Batch renormalization over every axis but the channel axis 1 (Ioffe 2017).

    ``y = weight * ((x - mu_B) / sigma_B * r + d) + bias`` in training, with
    ``r = clip(sigma_B / sigma, 1/r_max, r_max)``, ``d = clip((mu_B - mu) / sigma, -d_max,
    d_max)``, ``sigma_B = sqrt(var_B + eps)`` (biased batch variance) and the running
    ``mu``, ``sigma = sqrt(running_var + eps)`` read *before* this step's update (eps is
    inside both square roots, as batch norm's eval uses it). ``r``, ``d`` are constants in
    backward. Running statistics follow batch norm's rule; eval is batch norm's eval.

    Parameters
    ----------
    num_features : int
    r_max : float >= 1, default 3.0
        Bound of the scale correction ``r``; 1 turns it off. Settable between steps.
    d_max : float >= 0, default 5.0
        Bound of the shift correction ``d``; 0 turns it off. Settable between steps.
    eps, momentum, affine, dtype, bias, unbiased_running_var
        As for ``BatchNorm1d``. Running statistics are always tracked (they are what
        the layer renormalises towards).

    Shape
    -----
    As the matching ``BatchNorm``.

    Raises
    ------
    ValueError
        ``r_max < 1``, ``d_max < 0`` (here or when set later), and everything BatchNorm
        refuses.
    TypeError
        A non-numeric ``r_max`` or ``d_max``.
    """

    def __init__(self, num_features: int, r_max: float = 3.0, d_max: float = 5.0,
                 eps: float = 1e-5, momentum=0.1, affine: bool = True, dtype=np.float32,
                 *, bias: bool = True, unbiased_running_var: bool = True):
        super().__init__(num_features, eps, momentum, affine, True, dtype, bias=bias,
                         unbiased_running_var=unbiased_running_var)
        self.r_max = r_max
        self.d_max = d_max

    @property
    def r_max(self) -> float:
        return self._r_max

    @r_max.setter
    def r_max(self, value) -> None:
        self._r_max = _check_bound(type(self).__name__, "r_max", value, 1.0,
                                   "r is clipped to [1/r_max, r_max]; 1 disables it.")

    @property
    def d_max(self) -> float:
        return self._d_max

    @d_max.setter
    def d_max(self, value) -> None:
        self._d_max = _check_bound(type(self).__name__, "d_max", value, 0.0,
                                   "d is clipped to [-d_max, d_max]; 0 disables it.")

    def corrections(self, batch_mean, batch_var, dtype=None):
        """``(r, d)`` of shape (C,) for a batch's mean and biased variance.

        Computed in the statistics' dtype and returned in ``dtype`` (default: theirs).
        """
        xp = backend.namespace(batch_mean)
        b = self.buffers
        sdt = batch_mean.dtype
        sigma = xp.sqrt(b["running_var"].astype(sdt) + self.eps)
        sigma_b = xp.sqrt(batch_var + self.eps)
        r = xp.clip(sigma_b / sigma, 1.0 / self._r_max, self._r_max)
        d = xp.clip((batch_mean - b["running_mean"].astype(sdt)) / sigma,
                    -self._d_max, self._d_max)
        dtype = sdt if dtype is None else dtype
        return r.astype(dtype, copy=False), d.astype(dtype, copy=False)

    def _batch_forward(self, x, gamma, beta, axes):
        if not self.training:  # unreachable: running stats are always tracked
            return super()._batch_forward(x, gamma, beta, axes)
        xp = backend.namespace(x)
        # The stages: the batch moments, r and d from them and the running statistics
        # before they move, then normalisation with those moments and the folded affine
        # map (weight * r, weight * d + bias). batch_norm_forward is these two stages, so
        # r = 1, d = 0 reproduces batch norm bit for bit.
        # forward() has checked x and the parameters are the module's: the unchecked core
        moments, centred = _bn._moments_centred(x, axes)
        r, d = self.corrections(moments.mean, moments.var, x.dtype)
        g_eff = r if gamma is None else gamma * r
        b_eff = d if gamma is None else gamma * d
        if beta is not None:
            b_eff = b_eff + beta
        if gamma is None and bool(xp.all(r == 1)) and bool(xp.all(d == 0)):
            g_eff = b_eff = None  # affine=False with no correction: batch norm exactly
        out, cache = _bn._forward_from_moments(x, g_eff, b_eff, moments, axes, self.eps,
                                               centred)
        self._update_buffers(cache.mean, cache.var, cache.count)
        return out, ("renorm", (cache, r, d, g_eff is None))

    def _batch_backward(self, dout, mode: str, payload):
        if mode != "renorm":
            return super()._batch_backward(dout, mode, payload)
        cache, r, d, plain = payload
        dx, dg_eff, db_eff = _bn._backward(dout, cache)  # Module.backward checked dout
        if plain or "weight" not in self.params:
            return dx, None, None
        # g_eff = weight * r and b_eff = weight * d + bias with r, d constant
        dgamma = dg_eff * r + db_eff * d
        return dx, dgamma, db_eff if "bias" in self.params else None

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, r_max={self._r_max}, d_max={self._d_max}"


class BatchRenorm1d(_BatchRenorm):
    """Batch renormalization of (N, C) or (N, C, L) input. See ``_BatchRenorm``.

    Shape
    -----
    input (N, C) or (N, C, L) -> output of the same shape.
    """

    _expected = "(N, C) or (N, C, L)"
    _ranks = (2, 3)


class BatchRenorm2d(_BatchRenorm):
    """Batch renormalization of (N, C, H, W) input. See ``_BatchRenorm``.

    Shape
    -----
    input (N, C, H, W) -> output (N, C, H, W).
    """

    _expected = "(N, C, H, W)"
    _ranks = (4,)
