"""Santurkar et al. (2018)'s "noisy BN": BatchNorm followed by random, time-varying shifts.

To test whether BN helps by reducing internal covariate shift, Santurkar et al. inject
covariate shift on purpose: after each BN layer, in training only, every unit gets a fresh
random mean and scale at every step. It lives in the lab, not in ``normlab.nn``, because it
is an experimental device, not a layer anyone should train with.
"""

from __future__ import annotations

import numbers

import numpy as np

from normlab import backend, nn
from normlab._random import as_generator

__all__ = ["NoisyBatchNorm1d"]


class NoisyBatchNorm1d(nn.Module):
    """``BatchNorm1d`` plus per-step, per-unit noise in training mode.

    ``out = bn(x) + mu + sigma * z`` with, drawn anew at every training forward,
    ``mu ~ U(-mean_range, mean_range)`` and ``sigma ~ U(0, std_max)`` per unit (C,) and
    ``z ~ N(0, 1)`` per element (N, C). Eval mode is plain ``bn(x)``. The noise does not
    depend on ``x``, so the backward is BatchNorm's.

    Parameters
    ----------
    num_features : int
    mean_range : float, default 0.5
    std_max : float, default 0.5
    rng : np.random.Generator or int, optional
        Draws the noise (kept as ``self.rng`` so checkpoints save its state).
    dtype : default float32

    Shape
    -----
    (N, C) -> (N, C), same dtype.

    Raises
    ------
    ValueError
        For a negative ``mean_range`` or ``std_max``.
    """

    def __init__(self, num_features: int, mean_range: float = 0.5, std_max: float = 0.5,
                 rng=None, dtype=np.float32):
        super().__init__()
        for name, v in (("mean_range", mean_range), ("std_max", std_max)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= 0:
                raise ValueError(f"NoisyBatchNorm1d: expected {name} to be a float >= 0, got "
                                 f"{v!r}. It bounds the uniform noise parameters.")
        self.mean_range, self.std_max = float(mean_range), float(std_max)
        self.num_features = int(num_features)
        self.bn = nn.BatchNorm1d(num_features, dtype=dtype)
        self.rng = as_generator(rng)

    def forward(self, x):
        if x.ndim != 2:
            raise ValueError(f"NoisyBatchNorm1d: expected (N, C) input, got input of shape "
                             f"{tuple(x.shape)}.")
        out = self.bn(x)
        self._cache = True
        if not self.training:
            return out
        N, C = out.shape
        xp = backend.namespace(out)
        mu = self.rng.uniform(-self.mean_range, self.mean_range, size=C)
        sigma = self.rng.uniform(0.0, self.std_max, size=C)
        z = self.rng.standard_normal((N, C))
        noise = xp.asarray(mu + sigma * z, dtype=out.dtype)  # (N, C)
        return out + noise

    def backward(self, dout):
        self._require_cache()
        return self.bn.backward(dout)

    def extra_repr(self) -> str:
        return f"{self.num_features}, mean_range={self.mean_range}, std_max={self.std_max}"
