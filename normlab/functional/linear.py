"""Linear (affine) layer: ``y = x @ W.T + b`` with PyTorch's weight layout."""

from __future__ import annotations

from typing import NamedTuple

from normlab import backend
from normlab.errors import ShapeError
from normlab.validation import check_array, check_cache, check_dout, check_vector

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

    Raises
    ------
    NormlabTypeError
        Non-arrays or integer arrays.
    ShapeError
        ``x``'s last axis other than ``in_features``; a weight not 2D; a bias not
        ``(out_features,)``.
    """
    owner = "linear_forward"
    x = check_array(x, owner, name="x", min_ndim=1, allow_empty=True)
    weight = check_array(weight, owner, name="weight", ndim=2, layout="(out_features, "
                         "in_features)", allow_empty=True)
    if x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"{owner}: expected x with last dimension {weight.shape[1]} "
                         f"(weight.shape[1], in_features), got x of shape {tuple(x.shape)}.")
    check_vector(bias, weight.shape[0], owner, "bias", allow_none=True)
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
    x, weight, has_bias = check_cache(cache, LinearCache, "linear_backward")
    dout = check_dout(dout, x.shape[:-1] + weight.shape[:1], "linear_backward", like=x)
    xp = backend.namespace(dout, x)
    in_f = x.shape[-1]
    out_f = weight.shape[0]
    dx = xp.matmul(dout, weight) if need_dx else None
    x2 = x.reshape(-1, in_f)  # (N*, in)
    d2 = dout.reshape(-1, out_f)  # (N*, out)
    dweight = d2.T @ x2
    dbias = d2.sum(axis=0) if has_bias else None
    return dx, dweight, dbias
