"""The ``Dataset`` container and the seeded, stratified train/val/test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normlab.errors import NormlabTypeError, NormlabValueError

__all__ = ["Dataset", "stratified_split", "check_fraction"]


@dataclass(eq=False)  # array fields: == would be ambiguous
class Dataset:
    """Train/validation/test arrays of one data set.

    Attributes
    ----------
    X_train, X_val, X_test : ndarray, float32
        Features, shape ``(N, *input_shape)``.
    y_train, y_val, y_test : ndarray, int64
        Class labels in ``[0, num_classes)``, shape ``(N,)``.
    num_classes : int
    input_shape : tuple
        Per-sample shape, e.g. ``(1, 8, 8)``, ``(1, 40)`` or ``(64,)`` when flattened.
    name : str
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple
    name: str

    def splits(self):
        """``{"train": (X, y), "val": (X, y), "test": (X, y)}``."""
        return {
            "train": (self.X_train, self.y_train),
            "val": (self.X_val, self.y_val),
            "test": (self.X_test, self.y_test),
        }

    def flatten(self) -> "Dataset":
        """A copy whose features are flattened to ``(N, D)``."""
        def flat(X):
            return X.reshape(X.shape[0], -1)

        return Dataset(
            flat(self.X_train), self.y_train, flat(self.X_val), self.y_val,
            flat(self.X_test), self.y_test, self.num_classes,
            (int(np.prod(self.input_shape)),), self.name,
        )

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes})"
        )


def check_fraction(owner: str, name: str, value) -> float:
    """Validate a split fraction in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise NormlabTypeError(f"{owner}: expected {name} to be a float, got {type(value).__name__}.")
    if not 0.0 <= value < 1.0:
        raise NormlabValueError(f"{owner}: expected {name} in [0, 1), got {value!r}.")
    return float(value)


def stratified_split(y: np.ndarray, fractions, rng: np.random.Generator):
    """Split indices ``0..N-1`` class by class into ``len(fractions) + 1`` shuffled parts.

    Part ``i`` (for ``i < len(fractions)``) receives ``round(n_c * fractions[i])`` samples of
    every class ``c``; the last part gets the rest. Within each part the order is a random
    permutation, so no part is sorted by class.

    Returns
    -------
    list of int64 index arrays, one per part.
    """
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        start = 0
        for i, frac in enumerate(fractions):
            n = int(round(len(idx) * frac))
            parts[i].append(idx[start:start + n])
            start += n
        parts[-1].append(idx[start:])
    return [rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts]
