"""Shared machinery of the preprocessing transformers (public names live in ``preprocessing``)."""

from __future__ import annotations

import numpy as np

from normlab import backend
from normlab.errors import CallOrderError, NormlabTypeError, NormlabValueError

__all__ = ["NotFittedError", "check_eps", "Transformer", "covariance_eigh"]


class NotFittedError(CallOrderError, AttributeError):
    """Raised when ``transform`` or ``inverse_transform`` is called before ``fit``.

    A RuntimeError (wrong call order, as everywhere in normlab) that is also an
    AttributeError, like scikit-learn's, so ``hasattr``-style checks keep working.
    """


def check_eps(owner: str, eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise NormlabTypeError(f"{owner}: expected eps to be a float, got {type(eps).__name__}.")
    if not eps >= 0.0:
        raise NormlabValueError(f"{owner}: expected eps >= 0, got {eps!r}.")
    return float(eps)


class Transformer:
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
            raise NormlabTypeError(f"{name}: expected a NumPy or CuPy array, got {type(X).__name__}.")
        xp = backend.namespace(X)
        if X.ndim < 2:
            raise NormlabValueError(
                f"{name}: expected input of shape (N, D) or (N, C, H, W), got {X.ndim}D input "
                f"of shape {tuple(X.shape)}. Reshape a single sample with x[None]."
            )
        kind = np.dtype(X.dtype).kind
        if kind not in "fiub":
            raise NormlabTypeError(f"{name}: expected a real-valued array, got dtype {X.dtype}.")
        if fitting:
            if X.shape[0] < self._min_samples:
                raise NormlabValueError(
                    f"{name}: expected at least {self._min_samples} samples to fit, got "
                    f"{X.shape[0]}."
                )
            if kind == "f" and not bool(xp.all(xp.isfinite(X))):
                raise NormlabValueError(
                    f"{name}: expected finite values, got NaN or inf in the input. Clean or "
                    "impute the data before fitting."
                )
        return xp, X

    def _check_sample_shape(self, X) -> None:
        if tuple(X.shape[1:]) != self.sample_shape_:
            raise NormlabValueError(
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


def covariance_eigh(xp, X2):
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
