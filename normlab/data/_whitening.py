"""PCA and ZCA whitening (re-exported by ``normlab.data.preprocessing``, documented there)."""

from __future__ import annotations

import numpy as np

from normlab import backend
from normlab.data._preproc_base import Transformer, check_eps, covariance_eigh
from normlab.errors import NormlabTypeError, NormlabValueError

__all__ = ["PCA", "ZCAWhitening"]


def _check_rank(owner: str, vals, eps: float, knob) -> None:
    """Whitening divides by ``sqrt(eigval + eps)``: refuse a (numerically) zero divisor.

    An eigenvalue counts as zero below ``D * float64 eps * largest eigenvalue`` (the rank
    tolerance of ``numpy.linalg.matrix_rank``).
    """
    vals = backend.to_numpy(vals)
    if vals.size == 0:
        return
    tol = vals.size * np.finfo(np.float64).eps * max(float(vals.max()), 0.0)
    zero = int((vals + eps <= tol).sum())
    if zero:
        fix = "Use eps > 0 (e.g. 1e-5)" + (f" or fewer {knob}" if knob else "")
        raise NormlabValueError(
            f"{owner}: expected full-rank data or eps > 0 for whitening, got {zero} of "
            f"{vals.size} covariance eigenvalues at zero with eps={eps!r} (rank-deficient data "
            f"would be divided by 0). {fix}."
        )


class PCA(Transformer):
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
                raise NormlabTypeError(
                    f"PCA: expected n_components to be an int or None, got "
                    f"{type(n_components).__name__}."
                )
            if n_components < 1:
                raise NormlabValueError(f"PCA: expected n_components >= 1, got {n_components}.")
        self.n_components = n_components
        self.whiten = bool(whiten)
        self.eps = check_eps("PCA", eps)

    def fit(self, X):
        """Learn mean, components and variances from ``X``; returns ``self``."""
        xp, X = self._check_array(X, fitting=True)
        N = X.shape[0]
        X2 = X.reshape(N, -1).astype(xp.float64)
        D = X2.shape[1]
        K = D if self.n_components is None else int(self.n_components)
        if K > D:
            raise NormlabValueError(
                f"PCA: expected n_components <= {D} (the number of features), got {K}."
            )
        self.mean_ = X2.mean(axis=0)
        vals, vecs = covariance_eigh(xp, X2 - self.mean_)
        total = vals.sum()
        if self.whiten:
            _check_rank("PCA", vals[:K], self.eps, "n_components")
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
            raise NormlabValueError(
                f"PCA: expected projections of shape (N, {K}), got {tuple(Z.shape)}. Pass the "
                "output of transform()."
            )
        Z64 = Z.astype(xp.float64)
        if self.whiten:
            Z64 = Z64 * self._scale(xp)
        X2 = Z64 @ self.components_ + self.mean_
        return X2.reshape((Z.shape[0],) + self.sample_shape_).astype(self._out_dtype(Z))


class ZCAWhitening(Transformer):
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
        self.eps = check_eps("ZCAWhitening", eps)

    def fit(self, X):
        """Learn mean and whitening matrix from ``X``; returns ``self``."""
        xp, X = self._check_array(X, fitting=True)
        X2 = X.reshape(X.shape[0], -1).astype(xp.float64)
        self.mean_ = X2.mean(axis=0)
        vals, vecs = covariance_eigh(xp, X2 - self.mean_)
        _check_rank("ZCAWhitening", vals, self.eps, None)
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
