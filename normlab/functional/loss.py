"""Losses with their gradients: softmax cross-entropy, multi-class margin, mean squared error.

Each function returns ``(loss, dinput)``: ``loss`` is a 0-d array of the input's dtype
and ``dinput`` is ``d loss / d input`` for an upstream gradient of 1. Numerics follow
``torch.nn.functional`` (``cross_entropy``, ``multi_margin_loss``, ``mse_loss``).
"""

from __future__ import annotations

import numpy as np

from normlab import backend
from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.validation import describe, is_array

__all__ = ["REDUCTIONS", "check_reduction", "softmax_cross_entropy", "multi_margin_loss",
           "mse_loss"]

REDUCTIONS = ("mean", "sum")


def check_reduction(owner: str, reduction) -> str:
    """Return ``reduction`` if it is supported, else raise a ValueError naming ``owner``."""
    if reduction not in REDUCTIONS:
        raise NormlabValueError(
            f"{owner}: expected reduction 'mean' or 'sum', got {reduction!r}. "
            "reduction='none' is not supported: the per-sample loss has no backward here."
        )
    return reduction


def _check_scores(owner: str, x, what: str):
    """Validate a floating (N, C) score array; return ``(N, C)``."""
    if not hasattr(x, "ndim") or x.ndim != 2:
        got = f"{x.ndim}D input of shape {tuple(x.shape)}" if hasattr(x, "ndim") \
            else type(x).__name__
        raise NormlabValueError(f"{owner}: expected 2D {what} (N, C), got {got}.")
    if np.dtype(x.dtype).kind != "f":
        raise NormlabTypeError(
            f"{owner}: expected floating {what}, got dtype {x.dtype}. "
            "Cast with x.astype(np.float32)."
        )
    N, C = x.shape
    if N == 0 or C == 0:
        raise NormlabValueError(f"{owner}: expected a non-empty {what}, got shape {tuple(x.shape)}.")
    return N, C


def _check_labels(owner: str, y, N: int, C: int, xp):
    """Validate integer class labels of shape (N,) in [0, C); return them on ``xp``'s device."""
    y = xp.asarray(y)
    if y.dtype == bool or np.dtype(y.dtype).kind not in "iu":
        raise NormlabTypeError(
            f"{owner}: expected integer class labels, got dtype {y.dtype}. "
            "Pass class indices, e.g. y.astype(np.int64) (class probabilities are not supported)."
        )
    if y.shape != (N,):
        raise NormlabValueError(
            f"{owner}: expected labels of shape ({N},) to match the input's N, "
            f"got shape {tuple(y.shape)}."
        )
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= C:
        raise NormlabValueError(
            f"{owner}: expected labels in [0, {C - 1}] for C={C} classes, got values in "
            f"[{lo}, {hi}]."
        )
    return y


def _scalar(value, dtype, xp):
    """A 0-d array of ``dtype`` (NumPy reductions return scalars, not arrays)."""
    return xp.asarray(value, dtype=dtype)


def softmax_cross_entropy(logits, y, *, reduction: str = "mean"):
    """Softmax cross-entropy: ``loss = mean_n(logsumexp(z_n) - z_n[y_n])``.

    Log-sum-exp is computed after subtracting each row's maximum, so logits of any
    magnitude (1e4 and more) give a finite loss and gradient.

    Parameters
    ----------
    logits : ndarray, shape (N, C), floating
    y : ndarray of int, shape (N,), values in [0, C)
    reduction : {"mean", "sum"}

    Returns
    -------
    loss : 0-d ndarray of ``logits.dtype``
    dlogits : ndarray (N, C), ``(softmax(z) - onehot(y)) / N`` (without ``/ N`` for "sum")

    Raises
    ------
    ValueError
        For a non-2D or empty input, labels of the wrong shape or out of range, or an
        unknown reduction.
    TypeError
        For non-floating logits or non-integer labels.
    """
    owner = "softmax_cross_entropy"
    check_reduction(owner, reduction)
    N, C = _check_scores(owner, logits, "logits")
    xp = backend.namespace(logits)
    y = _check_labels(owner, y, N, C, xp)
    shifted = logits - xp.max(logits, axis=1, keepdims=True)  # (N, C), max 0 per row
    log_probs = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    onehot = y[:, None] == xp.arange(C)[None, :]  # (N, C) bool
    picked = xp.sum(xp.where(onehot, log_probs, 0), axis=1)  # (N,)
    dlogits = xp.exp(log_probs) - onehot.astype(logits.dtype)
    if reduction == "mean":
        return _scalar(-xp.mean(picked), logits.dtype, xp), dlogits / float(N)
    return _scalar(-xp.sum(picked), logits.dtype, xp), dlogits


def multi_margin_loss(x, y, margin: float = 1.0, *, p: int = 1, reduction: str = "mean"):
    """Multi-class hinge loss as ``torch.nn.MultiMarginLoss`` (no class weights).

    ``loss_n = sum_{i != y_n} max(0, margin - x[n, y_n] + x[n, i])^p / C``, then the
    mean (or sum) over N. A term at exactly 0 gets zero gradient, as in PyTorch.

    Parameters
    ----------
    x : ndarray, shape (N, C), floating
    y : ndarray of int, shape (N,), values in [0, C)
    margin : float
    p : {1, 2}
    reduction : {"mean", "sum"}

    Returns
    -------
    loss : 0-d ndarray of ``x.dtype``
    dx : ndarray (N, C)

    Raises
    ------
    ValueError
        As ``softmax_cross_entropy``, and for ``p`` other than 1 or 2.
    TypeError
        For non-floating scores or non-integer labels.
    """
    owner = "multi_margin_loss"
    check_reduction(owner, reduction)
    if p not in (1, 2) or isinstance(p, bool):
        raise NormlabValueError(f"{owner}: expected p to be 1 or 2, got {p!r}.")
    N, C = _check_scores(owner, x, "scores")
    xp = backend.namespace(x)
    y = _check_labels(owner, y, N, C, xp)
    onehot = y[:, None] == xp.arange(C)[None, :]  # (N, C) bool
    correct = xp.sum(xp.where(onehot, x, 0), axis=1, keepdims=True)  # (N, 1) = x[n, y_n]
    z = float(margin) - correct + x  # (N, C)
    active = (z > 0) & ~onehot
    z = xp.where(active, z, 0)
    if p == 1:
        per_sample = xp.sum(z, axis=1) / float(C)
        coef = active.astype(x.dtype)  # d z^1 / dz on the active terms
    else:
        per_sample = xp.sum(z * z, axis=1) / float(C)
        coef = 2.0 * z
    # x[n, y_n] enters every active term with a minus sign
    dx = (coef - onehot * xp.sum(coef, axis=1, keepdims=True)) / float(C)
    if reduction == "mean":
        return _scalar(xp.mean(per_sample), x.dtype, xp), dx / float(N)
    return _scalar(xp.sum(per_sample), x.dtype, xp), dx


def mse_loss(pred, target, *, reduction: str = "mean"):
    """Mean squared error: ``loss = mean((pred - target)^2)`` over every element.

    ``target`` is cast to ``pred.dtype`` so that the loss keeps the prediction's dtype.

    Parameters
    ----------
    pred : ndarray, any shape, floating
    target : ndarray, same shape as ``pred``
    reduction : {"mean", "sum"}

    Returns
    -------
    loss : 0-d ndarray of ``pred.dtype``
    dpred : ndarray shaped like ``pred``, ``2 (pred - target) / pred.size`` for "mean"

    Raises
    ------
    ValueError
        For mismatched shapes, an empty input or an unknown reduction.
    TypeError
        For a non-array or non-floating prediction or target.
    """
    owner = "mse_loss"
    check_reduction(owner, reduction)
    if not is_array(pred):
        raise NormlabTypeError(f"{owner}: expected the prediction to be an ndarray, got "
                               f"{describe(pred)}.")
    if np.dtype(pred.dtype).kind != "f":
        raise NormlabTypeError(
            f"{owner}: expected a floating prediction, got dtype {pred.dtype}. "
            "Cast with pred.astype(np.float32)."
        )
    xp = backend.namespace(pred)
    if not is_array(target) or np.dtype(target.dtype).kind != "f":
        raise NormlabTypeError(
            f"{owner}: expected a floating target array, got {describe(target)}. Cast with "
            "target.astype(pred.dtype) (as torch.nn.functional.mse_loss requires)."
        )
    target = backend.to_device(target, backend.device_of(pred))
    if tuple(target.shape) != tuple(pred.shape):
        raise NormlabValueError(
            f"{owner}: expected target of the prediction's shape {tuple(pred.shape)}, got "
            f"{tuple(target.shape)}. Reshape the target; broadcasting is not done silently."
        )
    if pred.size == 0:
        raise NormlabValueError(f"{owner}: expected a non-empty prediction, got shape "
                         f"{tuple(pred.shape)}.")
    diff = pred - target.astype(pred.dtype, copy=False)
    if reduction == "mean":
        return _scalar(xp.mean(diff * diff), pred.dtype, xp), diff * (2.0 / pred.size)
    return _scalar(xp.sum(diff * diff), pred.dtype, xp), 2.0 * diff
