"""The course's ``cs231n.fast_layers``: vectorised conv and max-pool, NCHW layout.

Adapters over ``normlab.functional.conv`` / ``pool``. The course ships several fast
variants (im2col, strides, reshape); here they are all the same vectorised functional
code, kept under the course's names so that the notebooks' imports work.
"""

from __future__ import annotations

from normlab import functional as F
from normlab.cs231n._conv import conv_hyper, pool_hyper

__all__ = [
    "conv_forward_fast",
    "conv_backward_fast",
    "max_pool_forward_fast",
    "max_pool_backward_fast",
    "conv_forward_im2col",
    "conv_backward_im2col",
    "conv_forward_strides",
    "conv_backward_strides",
    "max_pool_forward_im2col",
    "max_pool_backward_im2col",
    "max_pool_forward_reshape",
    "max_pool_backward_reshape",
]


def conv_forward_fast(x, w, b, conv_param):
    """Vectorised 2D convolution; same contract as ``layers.conv_forward_naive``."""
    stride, pad = conv_hyper(x, w, conv_param, "conv_forward_fast")
    return F.conv2d_forward(x, w, b, stride=stride, padding=pad)


def conv_backward_fast(dout, cache):
    """Backward of :func:`conv_forward_fast`: ``(dx, dw, db)``."""
    return F.conv2d_backward(dout, cache)


def max_pool_forward_fast(x, pool_param):
    """Vectorised max pooling; same contract as ``layers.max_pool_forward_naive``."""
    kernel, stride = pool_hyper(x, pool_param, "max_pool_forward_fast")
    return F.max_pool2d_forward(x, kernel, stride=stride)


def max_pool_backward_fast(dout, cache):
    """Backward of :func:`max_pool_forward_fast`: ``dx``."""
    return F.max_pool2d_backward(dout, cache)


conv_forward_im2col = conv_forward_strides = conv_forward_fast
conv_backward_im2col = conv_backward_strides = conv_backward_fast
max_pool_forward_im2col = max_pool_forward_reshape = max_pool_forward_fast
max_pool_backward_im2col = max_pool_backward_reshape = max_pool_backward_fast
