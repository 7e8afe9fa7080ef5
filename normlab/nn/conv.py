"""Conv1d and Conv2d modules (PyTorch constructor signatures, names and initialisation)."""

from __future__ import annotations

import numpy as np

from normlab import functional as F
from normlab._random import as_generator
from normlab.errors import NormlabValueError
from normlab.functional._spatial import as_tuple, check_input, check_nonneg, check_positive
from normlab.init import calculate_fan_in_and_fan_out, pytorch_default_uniform
from normlab.nn.module import Module
from normlab.validation import check_float_dtype

__all__ = ["Conv1d", "Conv2d"]


class _ConvNd(Module):
    """Shared constructor and plumbing; subclasses fix the number of spatial axes."""

    _nd = 2
    _forward = staticmethod(F.conv2d_forward)
    _backward = staticmethod(F.conv2d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=np.float32,
                 rng=None):
        super().__init__()
        owner, nd = type(self).__name__, self._nd
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise NormlabValueError(f"{owner}: expected {name} to be a positive int, got {v!r}.")
        if in_channels % groups or out_channels % groups:
            raise NormlabValueError(
                f"{owner}: expected in_channels and out_channels divisible by groups={groups}, "
                f"got in_channels={in_channels} and out_channels={out_channels}."
            )
        if padding_mode != "zeros":
            raise NormlabValueError(
                f"{owner}: expected padding_mode='zeros' (the only mode normlab implements), "
                f"got {padding_mode!r}. Pad the input yourself for other modes."
            )
        if isinstance(padding, str):
            raise NormlabValueError(
                f"{owner}: expected padding to be an int or a tuple of {nd} ints, got "
                f"{padding!r}. String padding ('same', 'valid') is not supported."
            )
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = as_tuple(kernel_size, nd, "kernel_size", owner)
        self.stride = as_tuple(stride, nd, "stride", owner)
        self.padding = as_tuple(padding, nd, "padding", owner)
        self.dilation = as_tuple(dilation, nd, "dilation", owner)
        check_positive(self.kernel_size, "kernel_size", owner)
        check_positive(self.stride, "stride", owner)
        check_positive(self.dilation, "dilation", owner)
        check_nonneg(self.padding, "padding", owner)
        self.groups = int(groups)
        self.padding_mode = padding_mode
        dtype = check_float_dtype(dtype, owner)
        rng = as_generator(rng)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        fan_in, _ = calculate_fan_in_and_fan_out(shape)  # in/groups * prod(kernel)
        self.params["weight"] = pytorch_default_uniform(shape, fan_in, rng, dtype)
        if bias:
            self.params["bias"] = pytorch_default_uniform((self.out_channels,), fan_in, rng,
                                                          dtype)
        self.zero_grad()

    def forward(self, x):
        return self._run(x)

    def _run(self, x, overwrite_x=False):
        """``forward``'s work; ``overwrite_x`` (2D, inference: ``nn._fusion.conv_over``)
        lets the output take ``x``'s memory."""
        check_input(x, self._nd, type(self).__name__, channels=self.in_channels)
        kw = {} if self.training or self._nd != 2 else {"keep_transforms": False}
        if overwrite_x:
            kw["overwrite_x"] = True
        out, self._cache = self._forward(
            x, self.params["weight"], self.params.get("bias"), stride=self.stride,
            padding=self.padding, dilation=self.dilation, groups=self.groups, **kw)
        return out

    def backward(self, dout, overwrite_dout=False):
        """``overwrite_dout``: the caller hands ``dout`` over; ``dx`` may be written over
        it (``functional.conv2d_backward``)."""
        dx, dw, db = self._backward(dout, self._require_cache(), need_dx=self.requires_dx,
                                    overwrite_dout=overwrite_dout)
        self.grads["weight"] = dw
        if db is not None:
            self.grads["bias"] = db
        return dx

    _dx_fresh = _takes_dout = True  # nn._owned

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if any(self.padding):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if "bias" not in self.params:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2D convolution (cross-correlation) over (N, C, H, W), as ``torch.nn.Conv2d``.

    ``out = conv2d(x, weight) + bias``; weight ``(out_channels, in_channels/groups, KH, KW)``
    and bias ``(out_channels,)`` start ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with
    ``fan_in = in_channels/groups * KH * KW`` (PyTorch's default).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding, dilation : int or (int, int)
    groups : int, default 1
    bias : bool, default True
    padding_mode : only ``'zeros'``
    dtype : default float32
    rng : np.random.Generator or int, optional

    Shape
    -----
    input (N, C_in, H, W) -> output (N, C_out, OH, OW),
    ``OH = floor((H + 2*ph - dh*(KH-1) - 1) / sh) + 1``.

    Raises
    ------
    ValueError
        Bad hyperparameters (in ``__init__``); wrong rank or channel count, or a kernel
        larger than the padded input (in ``forward``).
    """

    _nd = 2
    _forward = staticmethod(F.conv2d_forward)
    _backward = staticmethod(F.conv2d_backward)


class Conv1d(_ConvNd):
    """1D convolution over (N, C, L), as ``torch.nn.Conv1d``.

    Same parameters and initialisation as ``Conv2d`` with one spatial axis;
    weight ``(out_channels, in_channels/groups, K)``.

    Shape
    -----
    input (N, C_in, L) -> output (N, C_out, OL), ``OL = floor((L + 2p - d(K-1) - 1)/s) + 1``.

    Raises
    ------
    ValueError
        As ``Conv2d``.
    """

    _nd = 1
    _forward = staticmethod(F.conv1d_forward)
    _backward = staticmethod(F.conv1d_backward)
