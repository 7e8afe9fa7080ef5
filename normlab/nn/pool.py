"""Pooling modules: MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool2d (PyTorch signatures).

Only PyTorch's defaults are implemented (``dilation=1``, ``ceil_mode=False``,
``count_include_pad=True``, no ``return_indices``/``divisor_override``); other values are
rejected in ``__init__`` with a message saying so.
"""

from __future__ import annotations

import numpy as np

from normlab import functional as F
from normlab.errors import NormlabValueError
from normlab.functional._spatial import (as_tuple, check_input, check_nonneg, check_pool_padding,
                                         check_positive)
from normlab.nn.module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool2d"]


def _reject(owner: str, name: str, value, default) -> None:
    if value != default:
        raise NormlabValueError(
            f"{owner}: expected {name}={default!r} (the only value normlab implements), "
            f"got {name}={value!r}."
        )


class _PoolNd(Module):
    """Shared constructor: validated int-or-tuple kernel, stride (default kernel), padding."""

    _nd = 2
    _forward = staticmethod(F.max_pool2d_forward)
    _backward = staticmethod(F.max_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        owner, nd = type(self).__name__, self._nd
        self.kernel_size = as_tuple(kernel_size, nd, "kernel_size", owner)
        check_positive(self.kernel_size, "kernel_size", owner)
        self.stride = (self.kernel_size if stride is None
                       else as_tuple(stride, nd, "stride", owner))
        check_positive(self.stride, "stride", owner)
        self.padding = as_tuple(padding, nd, "padding", owner)
        check_nonneg(self.padding, "padding", owner)
        check_pool_padding(self.kernel_size, self.padding, owner)

    def forward(self, x):
        check_input(x, self._nd, type(self).__name__)
        out, self._cache = self._forward(x, self.kernel_size, self.stride, self.padding)
        return out

    def backward(self, dout):
        return self._backward(dout, self._require_cache())

    _dx_fresh = True  # nn._owned

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_PoolNd):
    """2D max pooling over (N, C, H, W), as ``torch.nn.MaxPool2d`` (``-inf`` padding).

    Backward sends each window's gradient to its FIRST maximum (row-major window order),
    as PyTorch on CPU does for tied values.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int, (int, int) or None (default ``kernel_size``)
    padding : int or (int, int), at most ``kernel_size // 2``
    dilation, return_indices, ceil_mode : only PyTorch's defaults

    Shape
    -----
    (N, C, H, W) -> (N, C, OH, OW), ``OH = floor((H + 2*ph - KH) / sh) + 1``.

    Raises
    ------
    ValueError
        Bad hyperparameters; wrong rank or a kernel larger than the padded input.
    """

    _nd = 2
    _forward = staticmethod(F.max_pool2d_forward)
    _backward = staticmethod(F.max_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        owner = type(self).__name__
        _reject(owner, "dilation", dilation, 1)
        _reject(owner, "return_indices", return_indices, False)
        _reject(owner, "ceil_mode", ceil_mode, False)
        super().__init__(kernel_size, stride, padding)


class MaxPool1d(MaxPool2d):
    """1D max pooling over (N, C, L), as ``torch.nn.MaxPool1d``; see ``MaxPool2d``."""

    _nd = 1
    _forward = staticmethod(F.max_pool1d_forward)
    _backward = staticmethod(F.max_pool1d_backward)


class AvgPool2d(_PoolNd):
    """2D average pooling, as ``torch.nn.AvgPool2d``: window sum / ``(KH*KW)``.

    Zero padding counts in the average (``count_include_pad=True``).

    Parameters
    ----------
    kernel_size, stride, padding : as ``MaxPool2d``
    ceil_mode, count_include_pad, divisor_override : only PyTorch's defaults

    Shape
    -----
    (N, C, H, W) -> (N, C, OH, OW).

    Raises
    ------
    ValueError
        As ``MaxPool2d``.
    """

    _nd = 2
    _forward = staticmethod(F.avg_pool2d_forward)
    _backward = staticmethod(F.avg_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        owner = type(self).__name__
        _reject(owner, "ceil_mode", ceil_mode, False)
        _reject(owner, "count_include_pad", count_include_pad, True)
        _reject(owner, "divisor_override", divisor_override, None)
        super().__init__(kernel_size, stride, padding)


class AvgPool1d(AvgPool2d):
    """1D average pooling over (N, C, L), as ``torch.nn.AvgPool1d``; see ``AvgPool2d``."""

    _nd = 1
    _forward = staticmethod(F.avg_pool1d_forward)
    _backward = staticmethod(F.avg_pool1d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed ``output_size``, as ``torch.nn.AdaptiveAvgPool2d``.

    ``AdaptiveAvgPool2d(1)`` is global average pooling. Bins follow PyTorch:
    ``[floor(i*H/OH), ceil((i+1)*H/OH))``.

    Parameters
    ----------
    output_size : int or (int or None, int or None); None keeps the input size

    Shape
    -----
    (N, C, H, W) -> (N, C, OH, OW).

    Raises
    ------
    ValueError
        Non-positive output size; wrong input rank.
    """

    def __init__(self, output_size):
        super().__init__()
        owner = type(self).__name__
        sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
        if len(sizes) != 2 or not all(
                s is None or (isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                              and s > 0) for s in sizes):
            raise NormlabValueError(
                f"{owner}: expected output_size to be a positive int or a tuple of 2 positive "
                f"ints (or None), got {output_size!r}."
            )
        self.output_size = output_size

    def forward(self, x):
        check_input(x, 2, type(self).__name__)
        out, self._cache = F.adaptive_avg_pool2d_forward(x, self.output_size)
        return out

    def backward(self, dout):
        return F.adaptive_avg_pool2d_backward(dout, self._require_cache())

    _dx_fresh = True  # nn._owned

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
