"""Data preprocessing with scikit-learn conventions: centring, standardising, PCA, ZCA.

Every transformer stores its hyperparameters verbatim in ``__init__``, learns statistics in
``fit(X) -> self`` (fitted attributes end in ``_``) and applies them in ``transform``,
``fit_transform`` and ``inverse_transform``. Inputs are ``(N, D)`` feature matrices or
image-shaped ``(N, C, H, W)`` (any ``(N, ...)``) arrays; decompositions flatten each sample
and restore the shape afterwards. Statistics are computed in float64; outputs keep the input
float dtype (integer input, e.g. uint8 pixels, gives float32).

Fit on the training set only, then apply the *same* fitted transformer to validation and test
data, so that no statistic leaks from held-out data::

    >>> from normlab.data import load_dataset
    >>> from normlab.data.preprocessing import Standardizer, ZCAWhitening
    >>> ds = load_dataset("digits", seed=0)
    >>> std = Standardizer(mode="channel").fit(ds.X_train)
    >>> X_train, X_val = std.transform(ds.X_train), std.transform(ds.X_val)
    >>> zca = ZCAWhitening(eps=1e-2).fit(X_train)
    >>> X_val_white = zca.transform(X_val)          # same shape as X_val: (N, 1, 8, 8)

Modes of ``Centering`` and ``Standardizer``:

- ``"feature"``: one statistic per flattened feature (mean over N); ``mean_`` has shape (D,).
- ``"channel"``: one statistic per channel, over all axes but axis 1 (N, H, W for
  (N, C, H, W)); ``mean_`` has shape (C,). Needs input with a channel axis, ndim >= 3.
- ``"pixel"``: the CS231n "mean image": mean over N of every pixel of every channel;
  ``mean_`` has the per-sample shape, e.g. (C, H, W). Numerically the same as ``"feature"``,
  kept in image shape.
"""

from __future__ import annotations

from normlab.data._preproc_base import NotFittedError, Transformer, check_eps
from normlab.data._whitening import PCA, ZCAWhitening
from normlab.errors import NormlabValueError

__all__ = ["NotFittedError", "Centering", "Standardizer", "PCA", "ZCAWhitening"]

_MODES = ("feature", "channel", "pixel")


class Centering(Transformer):
    """Subtract the training mean: ``out = x - mean``.

    Parameters
    ----------
    mode : {"feature", "channel", "pixel"}
        Which statistic (see the module docstring). Default ``"feature"``.

    Attributes
    ----------
    mean_ : ndarray, float64
        (D,) for "feature", (C,) for "channel", the per-sample shape for "pixel".
    sample_shape_ : tuple
        Per-sample shape seen in ``fit`` (for "channel" only ``C`` must match later).

    Shape
    -----
    ``(N, ...)`` in, same shape out.

    Raises
    ------
    ValueError
        Unknown mode, "channel" on input without a channel axis, a shape that differs from
        the fitted one. ``NotFittedError`` for ``transform`` before ``fit``.
    """

    def __init__(self, mode: str = "feature"):
        if mode not in _MODES:
            raise NormlabValueError(
                f"{type(self).__name__}: expected mode in {_MODES}, got {mode!r}."
            )
        self.mode = mode

    def _stat_view(self, xp, X):
        """X as float64 arranged so the statistic is a reduction over axis ``red``."""
        X64 = X.astype(xp.float64)
        if self.mode == "feature":
            return X64.reshape(X.shape[0], -1), 0
        if self.mode == "pixel":
            return X64, 0
        if X.ndim < 3:
            raise NormlabValueError(
                f"{type(self).__name__}: expected input with a channel axis (N, C, H, W) or "
                f"(N, C, L) for mode='channel', got {X.ndim}D input of shape {tuple(X.shape)}. "
                "Use mode='feature' for (N, D) data."
            )
        return X64, tuple(a for a in range(X.ndim) if a != 1)

    def _check_transform_input(self, X):
        xp, X = self._check_array(X, fitting=False)
        self._check_fitted()
        if self.mode == "channel":
            if X.ndim < 3 or X.shape[1] != self.sample_shape_[0]:
                raise NormlabValueError(
                    f"{type(self).__name__}: expected input with {self.sample_shape_[0]} "
                    f"channels on axis 1 (as in fit), got shape {tuple(X.shape)}."
                )
        else:
            self._check_sample_shape(X)
        return xp, X

    def _broadcast(self, stat, X):
        """Reshape a fitted statistic so that it broadcasts against X."""
        if self.mode == "feature":
            return stat.reshape(X.shape[1:])
        if self.mode == "channel":
            return stat.reshape((X.shape[1],) + (1,) * (X.ndim - 2))
        return stat

    def fit(self, X):
        """Learn ``mean_`` from training data ``X``; returns ``self``."""
        xp, X = self._check_array(X, fitting=True)
        X64, red = self._stat_view(xp, X)
        self.mean_ = X64.mean(axis=red)
        self.sample_shape_ = tuple(X.shape[1:])
        return self

    def transform(self, X):
        """Centred copy of ``X`` (input is not modified)."""
        xp, X = self._check_transform_input(X)
        out = X.astype(xp.float64) - self._broadcast(self.mean_, X)
        return out.astype(self._out_dtype(X))

    def inverse_transform(self, X):
        """Undo ``transform``: ``x + mean``."""
        xp, X = self._check_transform_input(X)
        out = X.astype(xp.float64) + self._broadcast(self.mean_, X)
        return out.astype(self._out_dtype(X))


class Standardizer(Centering):
    """Zero mean, unit variance: ``out = (x - mean) / sqrt(var + eps)``.

    The variance is the biased one (ddof=0, as in scikit-learn's StandardScaler), computed in
    two passes in float64. ``eps`` keeps constant features finite (they map to 0).

    Parameters
    ----------
    mode : {"feature", "channel", "pixel"}
        Which statistic (see the module docstring). Default ``"feature"``.
    eps : float
        Added to the variance, default 1e-8.

    Attributes
    ----------
    mean_, var_, scale_ : ndarray, float64
        Same shapes as ``Centering.mean_``; ``scale_ = sqrt(var_ + eps)``.

    Shape
    -----
    ``(N, ...)`` in, same shape out.

    Raises
    ------
    ValueError
        As ``Centering``, and for ``eps < 0``.
    """

    def __init__(self, mode: str = "feature", eps: float = 1e-8):
        super().__init__(mode)
        self.eps = check_eps(type(self).__name__, eps)

    def fit(self, X):
        """Learn ``mean_``, ``var_`` and ``scale_`` from ``X``; returns ``self``."""
        xp, X = self._check_array(X, fitting=True)
        X64, red = self._stat_view(xp, X)
        self.mean_ = X64.mean(axis=red)
        self.var_ = X64.var(axis=red)
        self.scale_ = xp.sqrt(self.var_ + self.eps)
        self.sample_shape_ = tuple(X.shape[1:])
        return self

    def transform(self, X):
        """Standardised copy of ``X``."""
        xp, X = self._check_transform_input(X)
        out = (X.astype(xp.float64) - self._broadcast(self.mean_, X)) / self._broadcast(
            self.scale_, X
        )
        return out.astype(self._out_dtype(X))

    def inverse_transform(self, X):
        """Undo ``transform``: ``x * sqrt(var + eps) + mean``."""
        xp, X = self._check_transform_input(X)
        out = X.astype(xp.float64) * self._broadcast(self.scale_, X) + self._broadcast(
            self.mean_, X
        )
        return out.astype(self._out_dtype(X))
