"""Convolution written as loops over samples, filters and output positions: read this first.

This is the reference the fast ``conv.py`` is tested against and what the course API
(``normlab.cs231n``) exposes. It is slow on purpose: every output value is one explicit
dot product between a filter and the window of input it sits on.

``out[n, f, oh, ow] = bias[f] + sum_{c, i, j} weight[f, c, i, j] *
xpad[n, g*C/G + c, oh*sh + i*dh, ow*sw + j*dw]``, ``g = f // (F/G)`` the filter's group.
"""

from __future__ import annotations

from typing import NamedTuple

from normlab import backend
from normlab.functional._spatial import conv_args

__all__ = ["conv1d_forward_naive", "conv1d_backward_naive",
           "conv2d_forward_naive", "conv2d_backward_naive"]


class ConvNaiveCache(NamedTuple):
    x: object
    weight: object
    has_bias: bool
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int


def _window(i0: int, j0: int, KH: int, KW: int, dilation):
    """Rows and columns of the padded input under a kernel whose corner is at (i0, j0)."""
    dh, dw = dilation
    return slice(i0, i0 + dh * (KH - 1) + 1, dh), slice(j0, j0 + dw * (KW - 1) + 1, dw)


def conv2d_forward_naive(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    """Loop reference for ``conv2d_forward`` (same arguments, shapes and errors)."""
    stride, padding, dilation, (OH, OW) = conv_args(
        x, weight, bias, stride, padding, dilation, groups, 2, "conv2d_forward_naive")
    xp = backend.namespace(x, weight, bias)
    N, C, H, W = x.shape
    F, Cg, KH, KW = weight.shape
    Fg = F // groups  # filters per group
    ph, pw = padding
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = xp.zeros((N, F, OH, OW), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            c0 = (f // Fg) * Cg  # first input channel this filter sees
            for oh in range(OH):
                for ow in range(OW):
                    rows, cols = _window(oh * stride[0], ow * stride[1], KH, KW, dilation)
                    patch = xpad[n, c0:c0 + Cg, rows, cols]  # (C/G, KH, KW)
                    out[n, f, oh, ow] = xp.sum(patch * weight[f])
            if bias is not None:
                out[n, f] += bias[f]
    return out, ConvNaiveCache(x, weight, bias is not None, stride, padding, dilation, groups)


def conv2d_backward_naive(dout, cache: ConvNaiveCache):
    """Loop reference for ``conv2d_backward``: every output value sends its gradient back
    to the window and the filter that produced it.

    Returns
    -------
    dx : (N, C, H, W); dweight : (F, C/groups, KH, KW); dbias : (F,) or None
    """
    x, weight, has_bias, stride, padding, dilation, groups = cache
    xp = backend.namespace(dout, x)
    N, C, H, W = x.shape
    F, Cg, KH, KW = weight.shape
    Fg = F // groups
    OH, OW = dout.shape[2:]
    ph, pw = padding
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxpad = xp.zeros_like(xpad)
    dweight = xp.zeros_like(weight)
    for n in range(N):
        for f in range(F):
            c0 = (f // Fg) * Cg
            for oh in range(OH):
                for ow in range(OW):
                    rows, cols = _window(oh * stride[0], ow * stride[1], KH, KW, dilation)
                    g = dout[n, f, oh, ow]
                    dweight[f] += g * xpad[n, c0:c0 + Cg, rows, cols]
                    dxpad[n, c0:c0 + Cg, rows, cols] += g * weight[f]
    dx = dxpad[:, :, ph:ph + H, pw:pw + W].copy()
    dbias = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dweight, dbias


def conv1d_forward_naive(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    """Loop reference for ``conv1d_forward``: the 2D loops on ``H = 1``."""
    s, p, d, _ = conv_args(x, weight, bias, stride, padding, dilation, groups, 1,
                           "conv1d_forward_naive")
    out, cache = conv2d_forward_naive(x[:, :, None, :], weight[:, :, None, :], bias,
                                      stride=(1,) + s, padding=(0,) + p,
                                      dilation=(1,) + d, groups=groups)
    return out[:, :, 0, :], cache


def conv1d_backward_naive(dout, cache: ConvNaiveCache):
    """Loop reference for ``conv1d_backward``."""
    dx, dweight, dbias = conv2d_backward_naive(dout[:, :, None, :], cache)
    return dx[:, :, 0, :], dweight[:, :, 0, :], dbias
