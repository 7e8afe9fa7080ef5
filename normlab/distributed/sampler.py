"""Sharding: every rank draws the single-process run's global batch and keeps its slice.

Each rank holds the same loader (same data, same seed), so each draws exactly the batch
the single-process run would draw, from the same generator stream, and keeps the
contiguous slice ``np.array_split`` would give it: with ``n`` samples on ``size`` ranks,
the first ``n % size`` ranks get ``n // size + 1`` samples and the others ``n // size``.
Drawing indices costs nothing next to a training step, and no index ever has to be sent.
"""

from __future__ import annotations
from normlab.errors import NormlabValueError

__all__ = ["shard_bounds", "ShardedLoader"]


def shard_bounds(n: int, size: int, rank: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s slice of ``n`` items (``np.array_split`` rule).

    Raises
    ------
    ValueError
        For a negative ``n``, ``size < 1`` or a rank outside ``[0, size)``.
    """
    n, size, rank = int(n), int(size), int(rank)
    if n < 0 or size < 1 or not 0 <= rank < size:
        raise NormlabValueError(f"shard_bounds: expected n >= 0, size >= 1 and 0 <= rank < size, got "
                         f"n={n}, size={size}, rank={rank}.")
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class ShardedLoader:
    """Wrap a loader of global ``(xb, yb)`` batches; yield this rank's slice of each.

    Parameters
    ----------
    loader : iterable of (xb, yb)
        E.g. ``normlab.data.DataLoader``; identical on every rank (same seed).
    comm : Communicator
        Gives ``rank`` and ``size``.
    min_shard : int, default 1
        Fewest samples a rank may get: a global batch smaller than ``min_shard * size``
        raises (on every rank alike). ``0`` allows empty slices, for models that accept
        an empty batch (convolutions here do not).

    Raises
    ------
    ValueError
        While iterating, for a global batch too small to give each rank ``min_shard``.

    ``len()``, ``rng``, ``batch_size``, ``state_dict()`` and ``load_state_dict()`` are
    the wrapped loader's, so the Trainer's resume logic sees the global loader.
    ``last_global_size`` is the size of the global batch last sliced.
    """

    def __init__(self, loader, comm, min_shard: int = 1):
        if isinstance(min_shard, bool) or not isinstance(min_shard, int) or min_shard < 0:
            raise NormlabValueError(f"ShardedLoader: expected min_shard to be an int >= 0, got "
                             f"{min_shard!r}.")
        self.loader = loader
        self.comm = comm
        self.min_shard = min_shard
        self.last_global_size = None

    def __iter__(self):
        for xb, yb in self.loader:
            n = len(yb)
            if n < self.min_shard * self.comm.size:
                raise NormlabValueError(
                    f"ShardedLoader: expected global batches of at least "
                    f"{self.min_shard * self.comm.size} samples ({self.min_shard} per process "
                    f"on {self.comm.size}), got a batch of {n}. Use a larger batch size, "
                    "drop_last=True, or fewer processes.")
            start, stop = shard_bounds(n, self.comm.size, self.comm.rank)
            self.last_global_size = n
            yield xb[start:stop], yb[start:stop]

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name):
        if name in ("rng", "batch_size", "state_dict", "load_state_dict", "num_samples"):
            return getattr(self.loader, name)
        raise AttributeError(f"ShardedLoader has no attribute {name!r}")
