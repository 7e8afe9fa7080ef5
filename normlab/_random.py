"""Random generators: normlab never touches the global NumPy stream (except normlab.cs231n)."""

from __future__ import annotations

import numpy as np

from normlab.errors import NormlabTypeError

__all__ = ["as_generator"]


def as_generator(seed_or_rng=None) -> np.random.Generator:
    """Return a ``np.random.Generator``.

    ``None`` gives a fresh unseeded generator, an ``int`` seeds one, and a
    ``Generator`` is returned as is (shared, not copied).

    Raises
    ------
    TypeError
        For anything else (``np.random.RandomState`` included: use a Generator).
    """
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    if seed_or_rng is None:
        return np.random.default_rng()
    if isinstance(seed_or_rng, (int, np.integer)) and not isinstance(seed_or_rng, bool):
        return np.random.default_rng(int(seed_or_rng))
    raise NormlabTypeError(
        "as_generator: expected None, an int seed or a np.random.Generator, got "
        f"{type(seed_or_rng).__name__}. Create one with np.random.default_rng(seed)."
    )
