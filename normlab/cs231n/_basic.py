"""Course layers without normalisation: affine, ReLU, dropout, softmax and SVM losses.

Adapters over :mod:`normlab.functional` with the course's signatures and layouts. The one
thing the course does differently from normlab's core is randomness: ``dropout_forward``
draws its mask from the GLOBAL ``np.random`` stream (and reseeds it when
``dropout_param['seed']`` is given), because the course's seeded cells depend on it.
"""

from __future__ import annotations

import numbers

import numpy as np

from normlab import backend
from normlab import functional as F
from normlab.errors import NormlabValueError
from normlab.functional.dropout import DropoutCache
from normlab.cs231n._params import int_entry, param_dict

__all__ = [
    "affine_forward",
    "affine_backward",
    "relu_forward",
    "relu_backward",
    "dropout_forward",
    "dropout_backward",
    "softmax_loss",
    "svm_loss",
]


def affine_forward(x, w, b):
    """Affine layer with the course's weight layout: ``out = x.reshape(N, D) @ w + b``.

    Parameters
    ----------
    x : ndarray, shape (N, d_1, ..., d_k) with D = d_1 * ... * d_k
    w : ndarray, shape (D, M) (the transpose of PyTorch's ``Linear.weight``)
    b : ndarray, shape (M,)

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple for :func:`affine_backward`

    Raises
    ------
    ValueError
        If ``x`` does not flatten to ``D = w.shape[0]`` features.
    """
    N = x.shape[0]
    D = int(np.prod(x.shape[1:]))
    if w.ndim != 2 or D != w.shape[0]:
        raise NormlabValueError(
            f"affine_forward: expected w of shape (D, M) with D = prod(x.shape[1:]) = {D}, "
            f"got w of shape {tuple(w.shape)}. The course layout is (in, out), the transpose "
            "of PyTorch's Linear.weight."
        )
    out, lin_cache = F.linear_forward(x.reshape(N, D), w.T, b)
    return out, (x.shape, lin_cache)


def affine_backward(dout, cache):
    """Gradients of :func:`affine_forward`.

    Returns
    -------
    dx : shape of ``x``; dw : (D, M); db : (M,)
    """
    x_shape, lin_cache = cache
    dx, dweight, db = F.linear_backward(dout, lin_cache)
    return dx.reshape(x_shape), dweight.T, db


def relu_forward(x):
    """``out = max(0, x)``; returns ``(out, cache)``."""
    return F.relu_forward(x)


def relu_backward(dout, cache):
    """Gradient of :func:`relu_forward`: ``dx = dout * (x > 0)``."""
    return F.relu_backward(dout, cache)


def dropout_forward(x, dropout_param):
    """Inverted dropout, course convention: ``p`` is the probability of KEEPING a unit.

    Train mode: ``mask = (np.random.rand(*x.shape) < p) / p`` drawn from the global NumPy
    stream (after ``np.random.seed(seed)`` when ``dropout_param['seed']`` is set) and
    ``out = x * mask``. Test mode: ``out = x``. PyTorch's and normlab's ``p`` is the DROP
    probability: ``p_course = 1 - p_torch``.

    Parameters
    ----------
    x : ndarray, any shape
    dropout_param : dict
        ``p`` (keep probability in (0, 1]), ``mode`` ('train' | 'test'), optional ``seed``.

    Returns
    -------
    out : ndarray like ``x``; cache : ``functional.dropout.DropoutCache`` (mask None in test)

    Raises
    ------
    ValueError
        For a keep probability outside (0, 1] or an unknown mode.
    """
    param_dict(dropout_param, "dropout_forward", "dropout_param", required=("p", "mode"))
    p, mode = dropout_param["p"], dropout_param["mode"]
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 < p <= 1.0:
        raise NormlabValueError(
            f"dropout_forward: expected dropout_param['p'] (the KEEP probability) in (0, 1], "
            f"got {p!r}. The course's p keeps units; PyTorch's p drops them."
        )
    if mode == "train":
        if dropout_param.get("seed") is not None:
            np.random.seed(int_entry(dropout_param, "seed", "dropout_forward", "dropout_param",
                                     0, 0))
        xp = backend.namespace(x)
        keep = np.random.rand(*x.shape) < p  # global stream: the course's seeded cells
        # the mask is the course's draw (keep where u < p), so it cannot come from
        # functional.dropout_forward (drop where u < p_drop, from a Generator); the cache and
        # the backward are functional's
        mask = xp.asarray(keep / p, dtype=x.dtype)
        return x * mask, DropoutCache(mask)
    if mode == "test":
        return x, DropoutCache(None, tuple(x.shape))
    raise NormlabValueError(
        f"dropout_forward: expected dropout_param['mode'] 'train' or 'test', got {mode!r}."
    )


def dropout_backward(dout, cache):
    """Gradient of :func:`dropout_forward`: ``dout * mask`` in train mode, ``dout`` in test."""
    return F.dropout_backward(dout, cache)


def _check_scores(x, y, owner):
    if x.ndim != 2:
        raise NormlabValueError(f"{owner}: expected scores x of shape (N, C), got shape {tuple(x.shape)}.")
    N, C = x.shape
    if y.shape != (N,):
        raise NormlabValueError(f"{owner}: expected labels y of shape ({N},), got shape {tuple(y.shape)}.")
    if N and (int(y.min()) < 0 or int(y.max()) >= C):
        raise NormlabValueError(
            f"{owner}: expected labels in [0, {C}), got labels in "
            f"[{int(y.min())}, {int(y.max())}]."
        )


def softmax_loss(x, y):
    """Softmax cross-entropy, averaged over the batch.

    ``loss = -1/N sum_i log(exp(x[i, y_i]) / sum_j exp(x[i, j]))``;
    ``dx = (softmax(x) - onehot(y)) / N``.

    Parameters
    ----------
    x : ndarray, shape (N, C) of scores
    y : int ndarray, shape (N,), labels in [0, C)

    Returns
    -------
    loss : float; dx : ndarray, shape (N, C)

    Raises
    ------
    ValueError
        For mismatched shapes or labels out of range.
    """
    _check_scores(x, y, "softmax_loss")
    # the course's softmax loss is normlab's mean softmax cross-entropy; only the loss type
    # differs (a Python float here)
    loss, dx = F.softmax_cross_entropy(x, y)
    return float(loss), dx


def svm_loss(x, y):
    """Multiclass SVM (hinge) loss, course normalisation.

    ``loss = 1/N sum_i sum_{j != y_i} max(0, x[i, j] - x[i, y_i] + 1)``. PyTorch's
    ``MultiMarginLoss`` divides additionally by C (see ``functional.multi_margin_loss``).

    Returns
    -------
    loss : float; dx : ndarray, shape (N, C)

    Raises
    ------
    ValueError
        For mismatched shapes or labels out of range.
    """
    _check_scores(x, y, "svm_loss")
    xp = backend.namespace(x)
    N = x.shape[0]
    rows = xp.arange(N)
    margins = xp.maximum(0, x - x[rows, y][:, None] + 1.0)
    margins[rows, y] = 0
    loss = float(margins.sum()) / N
    positive = (margins > 0).astype(x.dtype)
    dx = positive
    dx[rows, y] -= positive.sum(axis=1)
    dx /= N
    return loss, dx
