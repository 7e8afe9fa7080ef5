"""The book's from-scratch batch norm: ``batch_norm(is_training, X, ...)`` and ``BatchNorm``.

"Dive into Deep Learning" writes batch norm out by hand before using the framework's layer.
This is that code's contract, computed by :mod:`normlab.functional.batchnorm` (no second copy
of the arithmetic):

- training: ``X_hat = (X - mean) / sqrt(var + eps)`` with the batch mean and the **biased**
  batch variance, per feature of (N, D) input or per channel of (N, C, H, W) input;
  ``Y = gamma * X_hat + beta``;
- moving averages: ``moving = momentum * moving + (1 - momentum) * batch`` (``momentum = 0.9``
  weighs the OLD value; the biased variance goes in);
- prediction: ``X_hat = (X - moving_mean) / sqrt(moving_var + eps)``.

``BatchNorm(num_features, num_dims)`` starts ``moving_var`` at ones (second edition); the
first edition (``d2lzh``) started it at zeros: ``moving_var_init="zeros"``. PyTorch's
``BatchNorm2d`` differs in the momentum convention (0.1 weighs the NEW value) and feeds the
unbiased variance into ``running_var``.
"""

from __future__ import annotations

import numbers

import numpy as np

from normlab.errors import NormlabValueError
from normlab import backend
from normlab import functional as F
from normlab.nn.module import Module

__all__ = ["batch_norm", "BatchNorm"]


def _axes(owner: str, X) -> tuple:
    if getattr(X, "ndim", None) == 2:
        return (0,)
    if getattr(X, "ndim", None) == 4:
        return (0, 2, 3)
    raise NormlabValueError(
        f"{owner}: expected X of 2 dims (N, D) after a fully connected layer or 4 dims "
        f"(N, C, H, W) after a convolution, got shape {tuple(np.shape(X))}."
    )


def _channel_vector(owner: str, name: str, a, C: int):
    """The book keeps (1, C) or (1, C, 1, 1) arrays; functional wants (C,)."""
    if a is None or np.size(a) != C:
        got = None if a is None else tuple(np.shape(a))
        raise NormlabValueError(
            f"{owner}: expected {name} with {C} values (shape (1, {C}), (1, {C}, 1, 1) or "
            f"({C},)), got {got}."
        )
    return a.reshape(C)


def _check_hyper(owner: str, eps, momentum) -> tuple[float, float]:
    if not (isinstance(eps, numbers.Real) and eps > 0):
        raise NormlabValueError(f"{owner}: expected eps > 0, got {eps!r}.")
    if not (isinstance(momentum, numbers.Real) and 0.0 <= momentum <= 1.0):
        raise NormlabValueError(
            f"{owner}: expected momentum in [0, 1] (the weight of the OLD moving value, "
            f"0.9 in the book), got {momentum!r}."
        )
    return float(eps), float(momentum)


def _batch_norm(owner, is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """``(Y, moving_mean, moving_var, cache)``; ``cache`` feeds ``BatchNorm.backward``."""
    axes = _axes(owner, X)
    eps, momentum = _check_hyper(owner, eps, momentum)
    C = X.shape[1]
    g = _channel_vector(owner, "gamma", gamma, C)
    b = _channel_vector(owner, "beta", beta, C)
    mm = _channel_vector(owner, "moving_mean", moving_mean, C)
    mv = _channel_vector(owner, "moving_var", moving_var, C)
    if not is_training:
        Y, cache = F.batch_norm_eval_forward(X, g, b, mm, mv, axes=axes, eps=eps)
        return Y, moving_mean, moving_var, ("eval", cache)
    if X.size // C < 2:
        raise NormlabValueError(
            f"{owner}: expected more than 1 value per channel when training, got X of shape "
            f"{tuple(X.shape)}. Use a batch of 2 or more."
        )
    Y, cache = F.batch_norm_forward(X, g, b, axes=axes, eps=eps)
    dtype = moving_mean.dtype
    new_mean = momentum * mm + (1.0 - momentum) * cache.mean.astype(dtype, copy=False)
    new_var = momentum * mv + (1.0 - momentum) * cache.var.astype(dtype, copy=False)
    return (Y, new_mean.reshape(moving_mean.shape), new_var.reshape(moving_var.shape),
            ("train", cache))


def batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """The book's ``batch_norm`` (first-edition signature, ``is_training`` first).

    ``Y = gamma * (X - mean) / sqrt(var + eps) + beta`` with batch statistics when
    ``is_training`` (biased variance), the moving averages otherwise.

    Parameters
    ----------
    is_training : bool
    X : ndarray, shape (N, D) or (N, C, H, W)
    gamma, beta : ndarray with C values: (1, C), (1, C, 1, 1) or (C,)
    moving_mean, moving_var : ndarray with C values, any of those shapes
    eps : float
        1e-5 in the book.
    momentum : float
        Weight of the OLD moving value: ``moving = momentum * moving + (1 - momentum) *
        batch``; 0.9 in the book.

    Shape
    -----
    X (N, D) or (N, C, H, W) -> Y of the same shape; moving statistics keep their shape.

    Returns
    -------
    Y : ndarray
    moving_mean, moving_var : new arrays (the inputs are not modified); unchanged (the same
        objects) in prediction mode

    Raises
    ------
    ValueError
        For X not 2D/4D, parameters with the wrong number of values, eps <= 0, a momentum
        outside [0, 1], or training with one value per channel.
    """
    Y, mm, mv, _ = _batch_norm("batch_norm", is_training, X, gamma, beta, moving_mean,
                               moving_var, eps, momentum)
    return Y, mm, mv


class BatchNorm(Module):
    """The book's ``BatchNorm(num_features, num_dims)`` layer over :func:`batch_norm`.

    Parameters ``gamma`` (ones) and ``beta`` (zeros) and buffers ``moving_mean`` (zeros) and
    ``moving_var`` (ones, or zeros with ``moving_var_init="zeros"``) have the book's shapes:
    (1, num_features) for ``num_dims=2``, (1, num_features, 1, 1) for ``num_dims=4``. The
    mode is the module's (``net.train()`` / ``net.eval()``), as the book's
    ``autograd.is_training()`` / ``torch.is_grad_enabled()``.

    Parameters
    ----------
    num_features : int
    num_dims : {2, 4}
    eps : float, default 1e-5
    momentum : float, default 0.9 (weight of the OLD moving value)
    moving_var_init : {"ones", "zeros"}, default "ones"
        "zeros" is the first edition (``d2lzh``).
    dtype : float dtype of the parameters and buffers

    Shape
    -----
    (N, num_features) for num_dims=2, (N, num_features, H, W) for num_dims=4; same out.
    """

    def __init__(self, num_features: int, num_dims: int, *, eps: float = 1e-5,
                 momentum: float = 0.9, moving_var_init: str = "ones", dtype=np.float32):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
                or num_features < 1:
            raise NormlabValueError(f"BatchNorm: expected num_features a positive int, got "
                             f"{num_features!r}.")
        if num_dims not in (2, 4):
            raise NormlabValueError(
                f"BatchNorm: expected num_dims 2 (after a fully connected layer) or 4 (after "
                f"a convolution), got {num_dims!r}."
            )
        if moving_var_init not in ("ones", "zeros"):
            raise NormlabValueError(
                f"BatchNorm: expected moving_var_init 'ones' (second edition) or 'zeros' "
                f"(first edition, d2lzh), got {moving_var_init!r}."
            )
        self.eps, self.momentum = _check_hyper("BatchNorm", eps, momentum)
        self.num_features, self.num_dims = int(num_features), int(num_dims)
        self.moving_var_init = moving_var_init
        shape = (1, self.num_features) if num_dims == 2 else (1, self.num_features, 1, 1)
        self.params["gamma"] = np.ones(shape, dtype=dtype)
        self.params["beta"] = np.zeros(shape, dtype=dtype)
        self.buffers["moving_mean"] = np.zeros(shape, dtype=dtype)
        self.buffers["moving_var"] = (np.ones if moving_var_init == "ones" else np.zeros)(
            shape, dtype=dtype)
        self.zero_grad()

    def forward(self, X):
        if getattr(X, "ndim", None) != self.num_dims:
            raise NormlabValueError(
                f"BatchNorm: expected {self.num_dims}D input for num_dims={self.num_dims}, got "
                f"shape {tuple(np.shape(X))}."
            )
        b = self.buffers
        Y, b["moving_mean"], b["moving_var"], self._cache = _batch_norm(
            "BatchNorm", self.training, X, self.params["gamma"], self.params["beta"],
            b["moving_mean"], b["moving_var"], self.eps, self.momentum)
        return Y

    def backward(self, dout):
        mode, cache = self._require_cache()
        if mode == "train":
            dX, dgamma, dbeta = F.batch_norm_backward(dout, cache)
        else:
            dX, dgamma, dbeta = F.batch_norm_eval_backward(dout, cache)
        xp = backend.namespace(dout)
        shape = self.params["gamma"].shape
        self.grads["gamma"] = xp.asarray(dgamma).reshape(shape)
        self.grads["beta"] = xp.asarray(dbeta).reshape(shape)
        return dX

    def extra_repr(self) -> str:
        return (f"num_features={self.num_features}, num_dims={self.num_dims}, eps={self.eps}, "
                f"momentum={self.momentum}, moving_var_init={self.moving_var_init!r}")
