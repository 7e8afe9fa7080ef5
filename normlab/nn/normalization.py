"""LayerNorm, GroupNorm, InstanceNorm1d/2d/3d and RMSNorm over ``normlab.functional.norm``.

Constructor signatures, defaults, parameter and buffer names follow PyTorch 2.13. Layer,
group and RMS norm use per-sample statistics, so training and eval behave the same.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from normlab import functional as F
from normlab.errors import NormlabValueError
from normlab.nn.batchnorm import (_add_affine, _check_eps, _check_float_input,
                                  _check_num_features, _NormBase, _param_as, _store)
from normlab.nn.markers import NormLayer
from normlab.validation import check_float_dtype

__all__ = ["LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
           "RMSNorm"]


def _check_normalized_shape(owner: str, normalized_shape) -> tuple:
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else \
        normalized_shape
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    if not shape or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d <= 0
                        for d in shape):
        raise NormlabValueError(
            f"{owner}: expected normalized_shape to be a positive int or a non-empty tuple "
            f"of positive ints, got {normalized_shape!r}."
        )
    return tuple(int(d) for d in shape)


def _check_trailing(owner: str, x, normalized_shape: tuple) -> None:
    k = len(normalized_shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k:]) != normalized_shape:
        raise NormlabValueError(
            f"{owner}: expected input of shape (*, {', '.join(map(str, normalized_shape))}) "
            f"ending in normalized_shape={normalized_shape}, got input of shape "
            f"{tuple(x.shape)}."
        )


class LayerNorm(NormLayer):
    """Layer norm over the trailing ``normalized_shape`` axes of each sample.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` (biased variance).

    Parameters
    ----------
    normalized_shape : int or tuple of int
    eps : float, default 1e-5
    elementwise_affine : bool, default True
        Learnable ``weight`` (ones) and ``bias`` (zeros) of shape ``normalized_shape``.
    bias : bool, default True
        With ``elementwise_affine``, whether to learn ``bias``.
    dtype : default float32

    Shape
    -----
    input (*, *normalized_shape) -> output of the same shape.

    Raises
    ------
    ValueError
        Bad ``normalized_shape`` or ``eps``; input whose trailing shape differs.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=np.float32):
        super().__init__()
        dtype = check_float_dtype(dtype, type(self).__name__)
        self.normalized_shape = _check_normalized_shape("LayerNorm", normalized_shape)
        self.eps = _check_eps("LayerNorm", eps)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            _add_affine(self, self.normalized_shape, dtype, bias)
        self.zero_grad()

    def forward(self, x):
        _check_float_input("LayerNorm", x)
        _check_trailing("LayerNorm", x, self.normalized_shape)
        out, self._cache = F.layer_norm_forward(
            x, _param_as(self, "weight", x.dtype), _param_as(self, "bias", x.dtype),
            normalized_ndim=len(self.normalized_shape), eps=self.eps)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = F.layer_norm_backward(dout, self._require_cache())
        _store(self, dgamma, dbeta)
        return dx

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={'bias' in self.params}")


class GroupNorm(NormLayer):
    """Group norm: per sample, over each of ``num_groups`` contiguous channel groups.

    ``y = (x - mean_g) / sqrt(var_g + eps) * weight_c + bias_c`` (biased variance).

    Parameters
    ----------
    num_groups : int
        Must divide ``num_channels``.
    num_channels : int
    eps : float, default 1e-5
    affine : bool, default True
        Per-channel ``weight`` (ones) and ``bias`` (zeros).
    dtype : default float32
    bias : bool, keyword only, default True

    Shape
    -----
    input (N, C, *) -> output of the same shape.

    Raises
    ------
    ValueError
        Non-positive sizes, ``num_channels`` not divisible by ``num_groups``, bad ``eps``,
        or an input without ``num_channels`` channels at dim 1.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, dtype=np.float32, *, bias: bool = True):
        super().__init__()
        dtype = check_float_dtype(dtype, type(self).__name__)
        self.num_groups = _check_num_features("GroupNorm", "num_groups", num_groups)
        self.num_channels = _check_num_features("GroupNorm", "num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise NormlabValueError(
                f"GroupNorm: expected num_channels divisible by num_groups, got "
                f"num_channels={num_channels}, num_groups={num_groups}. Pick a divisor of "
                f"{num_channels} for num_groups."
            )
        self.eps = _check_eps("GroupNorm", eps)
        self.affine = bool(affine)
        if self.affine:
            _add_affine(self, self.num_channels, dtype, bias)
        self.zero_grad()

    def forward(self, x):
        _check_float_input("GroupNorm", x)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise NormlabValueError(
                f"GroupNorm: expected input (N, C, *) with C={self.num_channels} channels "
                f"(num_channels), got input of shape {tuple(x.shape)}."
            )
        out, self._cache = F.group_norm_forward(
            x, _param_as(self, "weight", x.dtype), _param_as(self, "bias", x.dtype),
            num_groups=self.num_groups, eps=self.eps)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = F.group_norm_backward(dout, self._require_cache())
        _store(self, dgamma, dbeta)
        return dx

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(_NormBase):
    """Instance norm: per sample and channel, over the spatial axes.

    ``y = (x - mean_nc) / sqrt(var_nc + eps) * weight_c + bias_c``. With
    ``track_running_stats`` the running statistics move towards the batch average of the
    per-instance statistics (unbiased variance) and eval uses them, as in PyTorch; there
    ``momentum=None`` freezes them and ``num_batches_tracked`` is never incremented.

    Parameters
    ----------
    num_features : int
    eps : float, default 1e-5
    momentum : float in [0, 1] or None, default 0.1
    affine : bool, default False
    track_running_stats : bool, default False
    dtype : default float32
    bias : bool, keyword only, default True

    Raises
    ------
    ValueError
        Bad hyperparameters, wrong input rank, a channel mismatch when the layer has
        per-channel arrays, or a single spatial element in training.
    """

    _expected = ""
    _batched_ndim = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1,
                 affine: bool = False, track_running_stats: bool = False, dtype=np.float32,
                 *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype,
                         bias=bias)

    def forward(self, x):
        owner = type(self).__name__
        _check_float_input(owner, x)
        nd = self._batched_ndim
        if x.ndim not in (nd - 1, nd):
            raise NormlabValueError(
                f"{owner}: expected {nd - 1}D (unbatched) or {nd}D input {self._expected}, "
                f"got {x.ndim}D input of shape {tuple(x.shape)}."
            )
        unbatched = x.ndim == nd - 1
        shape_in = tuple(x.shape)
        if unbatched:
            x = x[None]
        if x.shape[1] != self.num_features:
            if self.affine or self.track_running_stats:
                self._check_channels(x)  # raises: per-channel arrays cannot broadcast
            warnings.warn(
                f"{owner}: input has {x.shape[1]} channels but num_features="
                f"{self.num_features}; num_features is unused because affine=False and "
                "track_running_stats=False.", UserWarning, stacklevel=2)
        gamma, beta = _param_as(self, "weight", x.dtype), _param_as(self, "bias", x.dtype)
        if self.training or not self.track_running_stats:
            if math.prod(x.shape[2:]) == 1:
                raise NormlabValueError(
                    f"{owner}: expected more than 1 spatial element when training, got "
                    f"input shape {shape_in}."
                )
            out, cache = F.instance_norm_forward(x, gamma, beta, eps=self.eps)
            if self.training and self.track_running_stats and x.shape[0] > 0:
                b = self.buffers
                b["running_mean"], b["running_var"] = F.update_running_stats(
                    b["running_mean"], b["running_var"], cache.mean.mean(axis=0),
                    cache.var.mean(axis=0), cache.count,
                    0.0 if self.momentum is None else self.momentum,
                    b["num_batches_tracked"])
            self._cache = ("train", cache, unbatched)
        else:
            b = self.buffers
            out, cache = F.batch_norm_eval_forward(
                x, gamma, beta, b["running_mean"].astype(x.dtype, copy=False),
                b["running_var"].astype(x.dtype, copy=False),
                axes=(0,) + tuple(range(2, x.ndim)), eps=self.eps)
            self._cache = ("eval", cache, unbatched)
        return out[0] if unbatched else out

    def backward(self, dout):
        mode, cache, unbatched = self._require_cache()
        if unbatched:
            dout = dout[None]
        if mode == "train":
            dx, dgamma, dbeta = F.instance_norm_backward(dout, cache)
        else:
            dx, dgamma, dbeta = F.batch_norm_eval_backward(dout, cache)
        _store(self, dgamma, dbeta)
        return dx[0] if unbatched else dx


class InstanceNorm1d(_InstanceNorm):
    """Instance norm of (N, C, L) or unbatched (C, L) input. See ``_InstanceNorm``."""

    _expected = "(N, C, L)"
    _batched_ndim = 3


class InstanceNorm2d(_InstanceNorm):
    """Instance norm of (N, C, H, W) or unbatched (C, H, W) input. See ``_InstanceNorm``."""

    _expected = "(N, C, H, W)"
    _batched_ndim = 4


class InstanceNorm3d(_InstanceNorm):
    """Instance norm of (N, C, D, H, W) or unbatched (C, D, H, W) input. See ``_InstanceNorm``.

    Shape
    -----
    input (N, C, D, H, W) or (C, D, H, W) -> output of the same shape.
    """

    _expected = "(N, C, D, H, W)"
    _batched_ndim = 5


class RMSNorm(NormLayer):
    """Root-mean-square norm over the trailing ``normalized_shape`` axes (no centring).

    ``y = x / sqrt(mean(x^2) + eps) * weight``.

    Parameters
    ----------
    normalized_shape : int or tuple of int
    eps : float or None, default None
        None means ``finfo(x.dtype).eps`` of the input (PyTorch's default).
    elementwise_affine : bool, default True
        Learnable ``weight`` (ones) of shape ``normalized_shape``; there is no bias.
    dtype : default float32

    Shape
    -----
    input (*, *normalized_shape) -> output of the same shape.

    Raises
    ------
    ValueError
        Bad ``normalized_shape`` or ``eps``; input whose trailing shape differs.
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine: bool = True,
                 dtype=np.float32):
        super().__init__()
        dtype = check_float_dtype(dtype, type(self).__name__)
        self.normalized_shape = _check_normalized_shape("RMSNorm", normalized_shape)
        self.eps = _check_eps("RMSNorm", eps, allow_none=True)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            _add_affine(self, self.normalized_shape, dtype, bias=False)
        self.zero_grad()

    def forward(self, x):
        _check_float_input("RMSNorm", x)
        _check_trailing("RMSNorm", x, self.normalized_shape)
        out, self._cache = F.rms_norm_forward(
            x, _param_as(self, "weight", x.dtype),
            normalized_ndim=len(self.normalized_shape), eps=self.eps)
        return out

    def backward(self, dout):
        dx, dgamma = F.rms_norm_backward(dout, self._require_cache())
        _store(self, dgamma, None)
        return dx

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")

