"""Course convolution and max-pooling layers (naive loop versions), NCHW layout.

Adapters over ``normlab.functional.conv_naive`` / ``pool_naive``: the course passes the
hyperparameters in dicts (``conv_param = {'stride', 'pad'}``,
``pool_param = {'pool_height', 'pool_width', 'stride'}``); zero padding of ``pad`` on every
side, as PyTorch's ``padding``.
"""

from __future__ import annotations

from normlab.errors import NormlabValueError
from normlab.functional import conv_naive, pool_naive
from normlab.cs231n._params import int_entry, param_dict
from normlab.validation import check_array

__all__ = [
    "conv_forward_naive",
    "conv_backward_naive",
    "max_pool_forward_naive",
    "max_pool_backward_naive",
    "conv_hyper",
    "pool_hyper",
]


def conv_hyper(x, w, conv_param, owner):
    """``(stride, pad)`` from a course ``conv_param``, validated against x and w.

    Raises
    ------
    ValueError
        For non-4D inputs, mismatched channels, or a non-positive stride / negative pad.
    """
    check_array(x, owner, name="x")
    check_array(w, owner, name="w")
    if x.ndim != 4 or w.ndim != 4:
        raise NormlabValueError(
            f"{owner}: expected x (N, C, H, W) and w (F, C, HH, WW), got shapes "
            f"{tuple(x.shape)} and {tuple(w.shape)}."
        )
    if x.shape[1] != w.shape[1]:
        raise NormlabValueError(
            f"{owner}: expected w with {x.shape[1]} input channels (x.shape[1]), got "
            f"w of shape {tuple(w.shape)}."
        )
    param_dict(conv_param, owner, "conv_param")
    stride = int_entry(conv_param, "stride", owner, "conv_param", 1, 1)
    pad = int_entry(conv_param, "pad", owner, "conv_param", 0, 0)
    return stride, pad


def pool_hyper(x, pool_param, owner):
    """``((pool_height, pool_width), stride)`` from a course ``pool_param``.

    Raises
    ------
    ValueError
        For non-4D input or non-positive window/stride.
    """
    check_array(x, owner, name="x")
    if x.ndim != 4:
        raise NormlabValueError(
            f"{owner}: expected 4D input (N, C, H, W), got input of shape {tuple(x.shape)}."
        )
    param_dict(pool_param, owner, "pool_param")
    ph = int_entry(pool_param, "pool_height", owner, "pool_param", 2, 1)
    pw = int_entry(pool_param, "pool_width", owner, "pool_param", 2, 1)
    stride = int_entry(pool_param, "stride", owner, "pool_param", 2, 1)
    return (ph, pw), stride


def conv_forward_naive(x, w, b, conv_param):
    """2D cross-correlation with loops: ``out[n, f] = sum_c x_pad[n, c] * w[f, c] + b[f]``.

    Parameters
    ----------
    x : (N, C, H, W); w : (F, C, HH, WW); b : (F,)
    conv_param : dict with ``stride`` and ``pad``

    Shape
    -----
    out : (N, F, 1 + (H + 2 pad - HH) // stride, 1 + (W + 2 pad - WW) // stride)

    Returns
    -------
    out, cache
    """
    stride, pad = conv_hyper(x, w, conv_param, "conv_forward_naive")
    return conv_naive.conv2d_forward_naive(x, w, b, stride=stride, padding=pad)


def conv_backward_naive(dout, cache):
    """Backward of :func:`conv_forward_naive`: ``(dx, dw, db)``."""
    return conv_naive.conv2d_backward_naive(dout, cache)


def max_pool_forward_naive(x, pool_param):
    """Max pooling with loops over windows of ``pool_height x pool_width``, no padding.

    Shape
    -----
    out : (N, C, 1 + (H - ph) // stride, 1 + (W - pw) // stride)
    """
    kernel, stride = pool_hyper(x, pool_param, "max_pool_forward_naive")
    return pool_naive.max_pool2d_forward_naive(x, kernel, stride=stride)


def max_pool_backward_naive(dout, cache):
    """Backward of :func:`max_pool_forward_naive`: ``dx``."""
    return pool_naive.max_pool2d_backward_naive(dout, cache)
