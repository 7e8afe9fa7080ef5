"""Mini-batch iteration: epoch-wise shuffling (``DataLoader``) and i.i.d. sampling with
replacement (``RandomBatchSampler``, ``sample_batches``, the CS231n Solver's way).

Both keep their ``np.random.Generator`` in ``self.rng`` and expose ``state_dict()`` /
``load_state_dict()`` (JSON-able) so that a resumed run draws exactly the batches that the
uninterrupted run would have drawn, even when it was stopped mid-epoch.
"""

from __future__ import annotations

import numpy as np

from normlab._random import as_generator
from normlab.errors import NormlabTypeError, NormlabValueError, StateError
from normlab.validation import check_mapping_keys

__all__ = ["DataLoader", "RandomBatchSampler", "sample_batches"]


def _check_xy(owner: str, X, y):
    for name, a in (("X", X), ("y", y)):
        if not hasattr(a, "shape") or len(a.shape) < 1:
            raise NormlabTypeError(
                f"{owner}: expected {name} to be an array with a leading sample axis, got "
                f"{type(a).__name__}."
            )
    if X.shape[0] != y.shape[0]:
        raise NormlabValueError(
            f"{owner}: expected X and y with the same number of samples, got {X.shape[0]} and "
            f"{y.shape[0]}."
        )
    if X.shape[0] == 0:
        raise NormlabValueError(f"{owner}: expected at least one sample, got 0.")
    return int(X.shape[0])


def _check_batch_size(owner: str, batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise NormlabTypeError(
            f"{owner}: expected batch_size to be an int, got {type(batch_size).__name__}."
        )
    if batch_size < 1:
        raise NormlabValueError(f"{owner}: expected batch_size >= 1, got {batch_size}.")
    return int(batch_size)


def _rng_state(rng: np.random.Generator) -> dict:
    """The generator's state with arrays as lists (MT19937 keeps one), JSON-able."""
    def plain(v):
        if isinstance(v, dict):
            return {k: plain(w) for k, w in v.items()}
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, np.integer):
            return int(v)
        return v

    return plain(rng.bit_generator.state)


def _set_rng_state(owner: str, rng: np.random.Generator, state) -> None:
    want = type(rng.bit_generator).__name__
    got = state.get("bit_generator") if isinstance(state, dict) else None
    if got != want:
        raise NormlabValueError(
            f"{owner}: expected a state of a {want} generator, got {got!r}. Load a state saved "
            "by a loader built with the same kind of generator."
        )
    try:
        if want == "MT19937":
            state = {**state, "state": {**state["state"],
                                        "key": np.asarray(state["state"]["key"], dtype=np.uint32)}}
        rng.bit_generator.state = state
    except (KeyError, TypeError, ValueError) as e:
        raise StateError(
            f"{owner}: expected a complete {want} generator state, got a malformed one "
            f"({type(e).__name__}: {e}). Load a state saved by state_dict()."
        ) from None


def _check_position(owner: str, position, n_batches: int) -> int:
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or \
            not 0 <= position <= n_batches:
        raise NormlabValueError(
            f"{owner}: expected position an int in [0, {n_batches}], got {position!r}."
        )
    return int(position)


class DataLoader:
    """Iterate ``(xb, yb)`` mini-batches; a fresh permutation of the samples every epoch.

    Each ``iter(loader)`` is one epoch: with ``shuffle=True`` it draws
    ``self.rng.permutation(N)`` and visits every sample exactly once; the last batch is
    smaller when ``N % batch_size != 0`` unless ``drop_last=True`` drops it.

    Parameters
    ----------
    X, y : ndarray
        Features ``(N, ...)`` and labels ``(N, ...)``. Batches are views/copies by fancy
        indexing; the arrays themselves are never modified.
    batch_size : int
    shuffle : bool
    drop_last : bool
    rng : None, int or np.random.Generator
        Source of the permutations, kept in ``self.rng``.
    transform : callable, optional
        ``transform(xb, rng) -> xb`` applied to every batch (augmentation, see
        ``normlab.data.transforms``), drawing from ``self.rng`` right after the batch is
        indexed, so ``state_dict``/resume reproduce the augmented batches too. Use it on
        the training loader only.

    Raises
    ------
    ValueError
        X and y of different lengths, no samples, batch_size < 1, or ``drop_last=True`` with
        ``batch_size > N`` (no batch at all).
    TypeError
        Non-array X/y, non-int batch_size, bad rng.
    """

    def __init__(self, X, y, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 rng=None, transform=None):
        owner = "DataLoader"
        if transform is not None and not callable(transform):
            raise NormlabTypeError(f"DataLoader: expected transform a callable t(xb, rng) or None, got "
                            f"{type(transform).__name__}.")
        N = _check_xy(owner, X, y)
        self.batch_size = _check_batch_size(owner, batch_size)
        if drop_last and self.batch_size > N:
            raise NormlabValueError(
                f"DataLoader: expected batch_size <= {N} (the number of samples) with "
                f"drop_last=True, got {self.batch_size}, which gives no batch at all. Use a "
                "smaller batch_size or drop_last=False."
            )
        self.X = X
        self.y = y
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = as_generator(rng)
        self.transform = transform
        self.num_samples = N
        self._epoch_start = None  # rng state before the running epoch's permutation
        self._position = 0  # batches of the running epoch already handed out
        self._resume_at = 0

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def __iter__(self):
        start = _rng_state(self.rng)
        order = self.rng.permutation(self.num_samples) if self.shuffle else \
            np.arange(self.num_samples)
        skip, self._resume_at = self._resume_at, 0
        self._epoch_start, self._position = start, skip
        bs = self.batch_size
        if self.transform is not None:
            for b in range(skip):  # redraw the skipped batches' augmentation: same rng stream
                self.transform(self.X[order[b * bs:(b + 1) * bs]], self.rng)
        for b in range(skip, len(self)):
            idx = order[b * bs:(b + 1) * bs]
            self._position = b + 1
            xb = self.X[idx]
            if self.transform is not None:
                xb = self.transform(xb, self.rng)
            yield xb, self.y[idx]
        self._epoch_start, self._position = None, 0

    def state_dict(self) -> dict:
        """``{"rng": generator state, "position": batches done in the running epoch}``.

        Mid-epoch, ``rng`` is the state *before* that epoch's permutation, so that after
        ``load_state_dict`` the next ``iter()`` redraws it and resumes at ``position``.
        """
        if self._epoch_start is not None and self._position < len(self):
            return {"rng": self._epoch_start, "position": self._position}
        return {"rng": _rng_state(self.rng), "position": self._resume_at}

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict()``: the next ``iter()`` continues where it was taken."""
        check_mapping_keys(state, ("rng",), "DataLoader.load_state_dict", "a loader state dict")
        position = _check_position("DataLoader", state.get("position", 0), len(self))
        _set_rng_state("DataLoader", self.rng, state["rng"])
        self._resume_at = position
        self._epoch_start, self._position = None, 0


class RandomBatchSampler:
    """Mini-batches drawn independently *with replacement*: ``idx = rng.choice(N, batch_size)``.

    This is how the CS231n ``Solver`` samples (``np.random.choice(num_train, batch_size)``),
    here with a private Generator. One ``iter()`` yields ``num_batches`` batches (default
    ``max(N // batch_size, 1)``, the Solver's iterations per epoch); ``sample()`` draws one.

    Raises
    ------
    ValueError, TypeError
        As ``DataLoader`` for X, y and batch_size; ``num_batches < 1``.
    """

    def __init__(self, X, y, batch_size: int, num_batches: int | None = None, rng=None):
        owner = "RandomBatchSampler"
        N = _check_xy(owner, X, y)
        self.batch_size = _check_batch_size(owner, batch_size)
        if num_batches is None:
            num_batches = max(N // self.batch_size, 1)
        if isinstance(num_batches, bool) or not isinstance(num_batches, (int, np.integer)) \
                or num_batches < 1:
            raise NormlabValueError(
                f"RandomBatchSampler: expected num_batches an int >= 1 or None, got "
                f"{num_batches!r}."
            )
        self.X, self.y = X, y
        self.num_batches = int(num_batches)
        self.rng = as_generator(rng)
        self.num_samples = N
        self._position = 0
        self._resume_at = 0

    def __len__(self) -> int:
        return self.num_batches

    def sample(self):
        """One batch ``(xb, yb)`` of ``batch_size`` samples drawn with replacement."""
        idx = self.rng.choice(self.num_samples, self.batch_size)
        return self.X[idx], self.y[idx]

    def __iter__(self):
        skip, self._resume_at = self._resume_at, 0
        for b in range(skip, self.num_batches):
            batch = self.sample()
            self._position = b + 1
            yield batch
        self._position = 0

    def state_dict(self) -> dict:
        """``{"rng": generator state, "position": batches done in the running epoch}``."""
        position = self._position if 0 < self._position < self.num_batches else self._resume_at
        return {"rng": _rng_state(self.rng), "position": position}

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict()``: the next ``iter()`` continues where it was taken."""
        check_mapping_keys(state, ("rng",), "RandomBatchSampler.load_state_dict",
                           "a sampler state dict")
        position = _check_position("RandomBatchSampler", state.get("position", 0),
                                   self.num_batches)
        _set_rng_state("RandomBatchSampler", self.rng, state["rng"])
        self._resume_at = position
        self._position = 0


def sample_batches(X, y, batch_size: int, rng=None):
    """Endless generator of ``(xb, yb)`` batches drawn with replacement (CS231n Solver style).

    ``rng`` (None, int or Generator) goes through ``as_generator``; a Generator is shared.
    """
    sampler = RandomBatchSampler(X, y, batch_size, num_batches=1, rng=rng)
    while True:
        yield sampler.sample()
