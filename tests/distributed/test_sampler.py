"""Sharding: the same global batches as one process, split by np.array_split."""

from __future__ import annotations

import numpy as np
import pytest

from normlab.data import DataLoader
from normlab.distributed import ShardedLoader, shard_bounds

from tests.distributed._fakes import CountingComm


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_shard_bounds_is_array_split(size):
    for n in range(0, 30):
        parts = np.array_split(np.arange(n), size)
        for r in range(size):
            start, stop = shard_bounds(n, size, r)
            np.testing.assert_array_equal(np.arange(start, stop), parts[r])


def test_shard_bounds_errors():
    for args in ((-1, 2, 0), (5, 0, 0), (5, 2, 2), (5, 2, -1)):
        with pytest.raises(ValueError, match="shard_bounds: expected n >= 0, size >= 1 and "
                                             "0 <= rank < size"):
            shard_bounds(*args)


def test_shards_of_every_rank_make_the_one_process_batches():
    X, y = np.arange(46.0).reshape(23, 2), np.arange(23)
    ref = [yb for _, yb in DataLoader(X, y, batch_size=7, rng=4)]  # 7, 7, 7, 2
    size = 3
    per_rank = []
    for r in range(size):
        loader = ShardedLoader(DataLoader(X, y, batch_size=7, rng=4), CountingComm(size, r),
                               min_shard=0)
        assert len(loader) == 4 and loader.batch_size == 7
        assert isinstance(loader.rng, np.random.Generator)
        per_rank.append([(xb, yb) for xb, yb in loader])
        assert loader.last_global_size == 2
    for b, want in enumerate(ref):
        got = np.concatenate([per_rank[r][b][1] for r in range(size)])
        np.testing.assert_array_equal(got, want)
        assert [len(per_rank[r][b][1]) for r in range(size)] == \
            [len(p) for p in np.array_split(want, size)]
        np.testing.assert_array_equal(per_rank[1][b][0][:, 0] / 2, per_rank[1][b][1])


def test_sharded_loader_state_is_the_wrapped_loaders():
    X, y = np.zeros((10, 1)), np.arange(10)
    inner = DataLoader(X, y, batch_size=4, rng=1)
    loader = ShardedLoader(inner, CountingComm(2, 0))
    assert loader.state_dict() == inner.state_dict()
    with pytest.raises(AttributeError, match="ShardedLoader has no attribute 'nope'"):
        loader.nope


def test_sharded_loader_errors():
    X, y = np.zeros((10, 1)), np.arange(10)
    with pytest.raises(ValueError, match="ShardedLoader: expected min_shard to be an int >= 0"):
        ShardedLoader(DataLoader(X, y, batch_size=4), CountingComm(2, 0), min_shard=-1)
    loader = ShardedLoader(DataLoader(X, y, batch_size=4, shuffle=False), CountingComm(3, 0))
    with pytest.raises(ValueError, match="expected global batches of at least 3 samples .* "
                                         "got a batch of 2"):
        list(loader)
