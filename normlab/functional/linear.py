"""Linear (affine) layer: ``y = x @ W.T + b`` with PyTorch's weight layout."""

from __future__ import annotations

from typing import NamedTuple

from normlab import backend

__all__ = ["LinearCache", "linear_forward", "linear_backward"]


class LinearCache(NamedTuple):
    x: object
    weight: object
    has_bias: bool


def linear_forward(x, weight, bias=None):
    """Affine map over the last axis: ``out = x @ weight.T + bias``.

    Parameters
    ----------
    x : ndarray, shape (N, *, in_features)
    weight : ndarray, shape (out_features, in_features)
    bias : ndarray or None, shape (out_features,)

    Returns
    -------
    out : ndarray, shape (N, *, out_features)
    cache : LinearCache
    """
    xp = backend.namespace(x, weight, bias)
    out = xp.matmul(x, weight.T)
    if bias is not None:
        out += bias
    return out, LinearCache(x, weight, bias is not None)


def linear_backward(dout, cache: LinearCache, need_dx: bool = True):
    """Gradients of ``linear_forward``.

    Parameters
    ----------
    need_dx : bool
        ``False`` skips the input gradient (returned as ``None``).

    Returns
    -------
    dx : shape of ``x`` or None; dweight : (out_features, in_features); dbias : (out_features,) or None
    """
    x, weight, has_bias = cache
    xp = backend.namespace(dout, x)
    in_f = x.shape[-1]
    out_f = weight.shape[0]
    dx = xp.matmul(dout, weight) if need_dx else None
    x2 = x.reshape(-1, in_f)  # (N*, in)
    d2 = dout.reshape(-1, out_f)  # (N*, out)
    dweight = d2.T @ x2
    dbias = d2.sum(axis=0) if has_bias else None
    return dx, dweight, dbias
