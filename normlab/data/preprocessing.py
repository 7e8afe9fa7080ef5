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

import numpy as np

from normlab import backend

__all__ = ["NotFittedError", "Centering", "Standardizer", "PCA", "ZCAWhitening"]

_MODES = ("feature", "channel", "pixel")


class NotFittedError(RuntimeError, AttributeError):
    """Raised when ``transform`` or ``inverse_transform`` is called before ``fit``.

    A RuntimeError (wrong call order, as everywhere in normlab) that is also an
    AttributeError, like scikit-learn's, so ``hasattr``-style checks keep working.
    """


def _check_eps(owner: str, eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise TypeError(f"{owner}: expected eps to be a float, got {type(eps).__name__}.")
    if not eps >= 0.0:
        raise ValueError(f"{owner}: expected eps >= 0, got {eps!r}.")
    return float(eps)


class _Transformer:
    """Shared input checks, ``fit_transform`` and the not-fitted error."""

    _fitted_attr = "mean_"
    _min_samples = 1

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attr):
            raise NotFittedError(
                f"{type(self).__name__}: expected a fitted transformer, got one that was never "
                "fitted. Call fit(X_train) first, then transform(X)."
            )

    def _check_array(self, X, *, fitting: bool):
        """Validate ``X``; return ``(xp, X)`` with X unchanged (no copy)."""
        name = type(self).__name__
        if not hasattr(X, "shape") or not hasattr(X, "dtype"):
            raise TypeError(f"{name}: expected a NumPy or CuPy array, got {type(X).__name__}.")
        xp = backend.namespace(X)
        if X.ndim < 2:
            raise ValueError(
                f"{name}: expected input of shape (N, D) or (N, C, H, W), got {X.ndim}D input "
                f"of shape {tuple(X.shape)}. Reshape a single sample with x[None]."
            )
        kind = np.dtype(X.dtype).kind
        if kind not in "fiub":
            raise TypeError(f"{name}: expected a real-valued array, got dtype {X.dtype}.")
        if fitting:
            if X.shape[0] < self._min_samples:
                raise ValueError(
                    f"{name}: expected at least {self._min_samples} samples to fit, got "
                    f"{X.shape[0]}."
                )
            if kind == "f" and not bool(xp.all(xp.isfinite(X))):
                raise ValueError(
                    f"{name}: expected finite values, got NaN or inf in the input. Clean or "
                    "impute the data before fitting."
                )
        return xp, X

    def _check_sample_shape(self, X) -> None:
        if tuple(X.shape[1:]) != self.sample_shape_:
            raise ValueError(
                f"{type(self).__name__}: expected samples of shape {self.sample_shape_} (as in "
                f"fit), got {tuple(X.shape[1:])}. Transform data with the per-sample shape the "
                "transformer was fitted on."
            )

    @staticmethod
    def _out_dtype(X):
        return X.dtype if np.dtype(X.dtype).kind == "f" else np.dtype(np.float32)

    def fit_transform(self, X):
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)


class Centering(_Transformer):
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
            raise ValueError(
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
            raise ValueError(
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
                raise ValueError(
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
        self.eps = _check_eps(type(self).__name__, eps)

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


def _covariance_eigh(xp, X2):
    """Eigen-decomposition of the unbiased covariance of centred (N, D) float64 data.

    Returns ``(eigvals, eigvecs)`` sorted by decreasing eigenvalue, with eigenvectors as the
    rows of ``eigvecs`` and the sign fixed so that each vector's largest-magnitude entry is
    positive (scikit-learn's convention), making the result deterministic.
    """
    N = X2.shape[0]
    cov = (X2.T @ X2) / (N - 1)  # (D, D); N-1 as in np.cov and sklearn's PCA
    vals, vecs = xp.linalg.eigh(cov)  # ascending
    order = xp.argsort(vals)[::-1]
    vals = xp.clip(vals[order], 0.0, None)  # round-off can give tiny negative values
    vecs = vecs[:, order].T  # (D, D): one eigenvector per row
    pivot = xp.argmax(xp.abs(vecs), axis=1)
    signs = xp.sign(vecs[xp.arange(vecs.shape[0]), pivot])
    signs = xp.where(signs == 0, 1.0, signs)
    return vals, vecs * signs[:, None]


class PCA(_Transformer):
    """Principal component projection, optionally whitened.

    ``z = (x - mean) @ components_.T``, and with ``whiten=True``
    ``z = (x - mean) @ components_.T / sqrt(explained_variance_ + eps)``.

    Components are the eigenvectors of the unbiased covariance ``Xc^T Xc / (N - 1)`` of the
    centred, flattened training data (float64, ``eigh``), sorted by decreasing variance; the
    largest-magnitude entry of each component is positive.

    Parameters
    ----------
    n_components : int or None
        Number of components kept; None keeps all D.
    whiten : bool
        Divide each projection by ``sqrt(eigval + eps)`` (unit variance outputs).
    eps : float
        Added to the eigenvalues before whitening, default 1e-5.

    Attributes
    ----------
    mean_ : (D,) float64
    components_ : (K, D) float64
    explained_variance_ : (K,) float64
    explained_variance_ratio_ : (K,) float64
    sample_shape_ : tuple, the per-sample shape seen in ``fit``

    Shape
    -----
    ``transform``: ``(N, ...)`` -> ``(N, K)``. ``inverse_transform``: ``(N, K)`` -> the fitted
    per-sample shape, e.g. ``(N, C, H, W)``.

    Raises
    ------
    ValueError
        ``n_components`` < 1 or > D, fewer than 2 samples, a per-sample shape other than the
        fitted one. ``NotFittedError`` for ``transform`` before ``fit``.
    """

    _min_samples = 2

    def __init__(self, n_components: int | None = None, whiten: bool = False, eps: float = 1e-5):
        if n_components is not None:
            if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
                raise TypeError(
                    f"PCA: expected n_components to be an int or None, got "
                    f"{type(n_components).__name__}."
                )
            if n_components < 1:
                raise ValueError(f"PCA: expected n_components >= 1, got {n_components}.")
        self.n_components = n_components
        self.whiten = bool(whiten)
        self.eps = _check_eps("PCA", eps)

    def fit(self, X):
        """Learn mean, components and variances from ``X``; returns ``self``."""
        xp, X = self._check_array(X, fitting=True)
        N = X.shape[0]
        X2 = X.reshape(N, -1).astype(xp.float64)
        D = X2.shape[1]
        K = D if self.n_components is None else int(self.n_components)
        if K > D:
            raise ValueError(
                f"PCA: expected n_components <= {D} (the number of features), got {K}."
            )
        self.mean_ = X2.mean(axis=0)
        vals, vecs = _covariance_eigh(xp, X2 - self.mean_)
        total = vals.sum()
        self.components_ = vecs[:K]
        self.explained_variance_ = vals[:K]
        self.explained_variance_ratio_ = vals[:K] / total if total > 0 else xp.zeros_like(vals[:K])
        self.sample_shape_ = tuple(X.shape[1:])
        return self

    def _scale(self, xp):
        return xp.sqrt(self.explained_variance_ + self.eps)

    def transform(self, X):
        """Project ``X`` on the components: ``(N, ...)`` -> ``(N, K)``."""
        xp, X = self._check_array(X, fitting=False)
        self._check_fitted()
        self._check_sample_shape(X)
        Z = (X.reshape(X.shape[0], -1).astype(xp.float64) - self.mean_) @ self.components_.T
        if self.whiten:
            Z = Z / self._scale(xp)
        return Z.astype(self._out_dtype(X))

    def inverse_transform(self, Z):
        """Map projections back to input space: ``(N, K)`` -> ``(N, *sample_shape_)``.

        Exact when all components are kept; otherwise the best rank-K reconstruction.
        """
        xp, Z = self._check_array(Z, fitting=False)
        self._check_fitted()
        K = self.components_.shape[0]
        if Z.ndim != 2 or Z.shape[1] != K:
            raise ValueError(
                f"PCA: expected projections of shape (N, {K}), got {tuple(Z.shape)}. Pass the "
                "output of transform()."
            )
        Z64 = Z.astype(xp.float64)
        if self.whiten:
            Z64 = Z64 * self._scale(xp)
        X2 = Z64 @ self.components_ + self.mean_
        return X2.reshape((Z.shape[0],) + self.sample_shape_).astype(self._out_dtype(Z))


class ZCAWhitening(_Transformer):
    """ZCA ("Mahalanobis") whitening: ``out = (x - mean) @ W``, ``W = U diag(1/sqrt(S+eps)) U^T``.

    ``U, S`` are the eigenvectors and eigenvalues of the unbiased covariance of the centred,
    flattened training data (float64). Unlike PCA whitening the output stays in the input
    basis (and shape), which is why whitened images still look like images.

    Parameters
    ----------
    eps : float
        Added to the eigenvalues, default 1e-5. Larger values (1e-2, 1e-1 for pixels in
        [0, 1]) damp the amplification of low-variance directions.

    Attributes
    ----------
    mean_ : (D,) float64
    components_ : (D, D) float64, eigenvectors as rows (sorted by decreasing eigenvalue)
    explained_variance_ : (D,) float64, eigenvalues S
    whitening_ : (D, D) float64, W
    sample_shape_ : tuple

    Shape
    -----
    ``(N, ...)`` in, same shape out.

    Raises
    ------
    ValueError
        Fewer than 2 samples, a per-sample shape other than the fitted one.
        ``NotFittedError`` for ``transform`` before ``fit``.
    """

    _min_samples = 2

    def __init__(self, eps: float = 1e-5):
        self.eps = _check_eps("ZCAWhitening", eps)

    def fit(self, X):
        """Learn mean and whitening matrix from ``X``; returns ``self``."""
        xp, X = self._check_array(X, fitting=True)
        X2 = X.reshape(X.shape[0], -1).astype(xp.float64)
        self.mean_ = X2.mean(axis=0)
        vals, vecs = _covariance_eigh(xp, X2 - self.mean_)
        self.components_ = vecs
        self.explained_variance_ = vals
        # W and its inverse are symmetric: U^T diag(.) U with U's rows the eigenvectors.
        self.whitening_ = (vecs.T / xp.sqrt(vals + self.eps)) @ vecs
        self._dewhitening = (vecs.T * xp.sqrt(vals + self.eps)) @ vecs
        self.sample_shape_ = tuple(X.shape[1:])
        return self

    def transform(self, X):
        """Whitened copy of ``X``, same shape."""
        xp, X = self._check_array(X, fitting=False)
        self._check_fitted()
        self._check_sample_shape(X)
        X2 = X.reshape(X.shape[0], -1).astype(xp.float64)
        out = (X2 - self.mean_) @ self.whitening_
        return out.reshape(X.shape).astype(self._out_dtype(X))

    def inverse_transform(self, X):
        """Undo ``transform``: ``x @ W^-1 + mean``."""
        xp, X = self._check_array(X, fitting=False)
        self._check_fitted()
        self._check_sample_shape(X)
        X2 = X.reshape(X.shape[0], -1).astype(xp.float64)
        out = X2 @ self._dewhitening + self.mean_
        return out.reshape(X.shape).astype(self._out_dtype(X))
