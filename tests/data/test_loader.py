"""DataLoader and RandomBatchSampler: coverage, drop_last, determinism, exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from normlab.data import DataLoader, RandomBatchSampler, sample_batches


def _xy(N=10):
    X = np.arange(N * 3, dtype=np.float32).reshape(N, 3)
    return X, np.arange(N, dtype=np.int64)


def test_every_sample_once_per_epoch_and_new_permutation():
    X, y = _xy(10)
    loader = DataLoader(X, y, batch_size=3, rng=0)
    assert len(loader) == 4
    epochs = []
    for _ in range(2):
        batches = list(loader)
        assert [len(yb) for _, yb in batches] == [3, 3, 3, 1]
        seen = np.concatenate([yb for _, yb in batches])
        np.testing.assert_array_equal(np.sort(seen), y)
        for xb, yb in batches:
            np.testing.assert_array_equal(xb, X[yb])
        epochs.append(seen)
    assert not np.array_equal(epochs[0], epochs[1])


def test_drop_last_and_no_shuffle():
    X, y = _xy(10)
    loader = DataLoader(X, y, batch_size=3, shuffle=False, drop_last=True)
    assert len(loader) == 3
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in loader]), np.arange(9))
    assert len(DataLoader(X, y, batch_size=10, drop_last=True)) == 1


def _three_epochs(X, y, seed):
    loader = DataLoader(X, y, 4, rng=seed)
    return [yb.tolist() for _ in range(3) for _, yb in loader]


def test_determinism_by_seed():
    X, y = _xy(20)
    assert _three_epochs(X, y, 5) == _three_epochs(X, y, 5)
    assert _three_epochs(X, y, 1) != _three_epochs(X, y, 2)


def test_loader_uses_given_generator_not_global():
    X, y = _xy(8)
    state = np.random.get_state()
    g = np.random.default_rng(3)
    loader = DataLoader(X, y, 4, rng=g)
    assert loader.rng is g
    list(loader)
    np.testing.assert_array_equal(np.random.get_state()[1], state[1])


@pytest.mark.parametrize("stop_after", [0, 1, 2, 4])
def test_state_round_trip_resumes_bit_identically(stop_after):
    X, y = _xy(10)
    ref = DataLoader(X, y, 3, rng=7)
    reference = [yb.tolist() for _ in range(3) for _, yb in ref]

    first = DataLoader(X, y, 3, rng=7)
    got = []
    it = iter(first)
    for _ in range(stop_after):  # stop mid-epoch (4 = the whole first epoch)
        got.append(next(it)[1].tolist())
    state = json.loads(json.dumps(first.state_dict()))  # must survive JSON

    resumed = DataLoader(X, y, 3, rng=123)
    resumed.load_state_dict(state)
    while len(got) < len(reference):
        got.extend(yb.tolist() for _, yb in resumed)
    assert got == reference


def test_state_dict_of_a_just_restored_loader_keeps_the_position():
    X, y = _xy(10)
    a = DataLoader(X, y, 3, rng=2)
    it = iter(a)
    next(it)
    state = a.state_dict()
    b = DataLoader(X, y, 3, rng=0)
    b.load_state_dict(state)
    assert b.state_dict() == state  # saving again before iterating loses nothing
    s = RandomBatchSampler(X, y, 2, num_batches=3, rng=0)
    s.load_state_dict({"rng": s.state_dict()["rng"], "position": 2})
    assert s.state_dict()["position"] == 2
    assert len(list(s)) == 1


def test_mt19937_state_is_json_able():
    X, y = _xy(6)
    loader = DataLoader(X, y, 2, rng=np.random.Generator(np.random.MT19937(0)))
    state = json.loads(json.dumps(loader.state_dict()))
    expected = [yb.tolist() for _, yb in loader]
    other = DataLoader(X, y, 2, rng=np.random.Generator(np.random.MT19937(9)))
    other.load_state_dict(state)
    assert [yb.tolist() for _, yb in other] == expected


def test_random_batch_sampler_with_replacement_and_resume():
    X, y = _xy(5)
    s = RandomBatchSampler(X, y, batch_size=4, rng=0)
    assert len(s) == 1  # max(N // batch_size, 1), the CS231n Solver's iterations per epoch
    draws = np.concatenate([s.sample()[1] for _ in range(50)])
    assert len(np.unique(draws)) == 5
    expected = np.random.default_rng(0).choice(5, 4)
    np.testing.assert_array_equal(RandomBatchSampler(X, y, 4, rng=0).sample()[1], expected)

    a = RandomBatchSampler(X, y, 2, num_batches=3, rng=1)
    reference = [yb.tolist() for _ in range(2) for _, yb in a]
    b = RandomBatchSampler(X, y, 2, num_batches=3, rng=1)
    it = iter(b)
    got = [next(it)[1].tolist()]
    state = json.loads(json.dumps(b.state_dict()))
    c = RandomBatchSampler(X, y, 2, num_batches=3, rng=99)
    c.load_state_dict(state)
    while len(got) < len(reference):
        got.extend(yb.tolist() for _, yb in c)
    assert got == reference


def test_sample_batches_is_endless_and_seeded():
    X, y = _xy(7)
    gen = sample_batches(X, y, 3, rng=4)
    batches = [next(gen) for _ in range(20)]
    assert all(xb.shape == (3, 3) and yb.shape == (3,) for xb, yb in batches)
    rng = np.random.default_rng(4)
    np.testing.assert_array_equal(batches[1][1], [rng.choice(7, 3) for _ in range(2)][1])


def test_errors():
    X, y = _xy(4)
    with pytest.raises(ValueError, match="DataLoader: expected X and y with the same number "
                                         "of samples, got 4 and 3"):
        DataLoader(X, y[:3], 2)
    with pytest.raises(ValueError, match="DataLoader: expected batch_size >= 1, got 0"):
        DataLoader(X, y, 0)
    with pytest.raises(TypeError, match="DataLoader: expected batch_size to be an int, got float"):
        DataLoader(X, y, 2.0)
    with pytest.raises(ValueError, match=r"expected batch_size <= 4 \(the number of samples\) "
                                         "with drop_last=True, got 5"):
        DataLoader(X, y, 5, drop_last=True)
    with pytest.raises(ValueError, match="DataLoader: expected at least one sample, got 0"):
        DataLoader(X[:0], y[:0], 1)
    with pytest.raises(TypeError, match="RandomBatchSampler: expected X to be an array"):
        RandomBatchSampler([1, 2], y, 1)
    with pytest.raises(ValueError, match="RandomBatchSampler: expected num_batches an int >= 1"):
        RandomBatchSampler(X, y, 2, num_batches=0)
    loader = DataLoader(X, y, 2, rng=0)
    with pytest.raises(ValueError, match=r"DataLoader: expected position an int in \[0, 2\], "
                                         "got 3"):
        loader.load_state_dict({"rng": loader.state_dict()["rng"], "position": 3})
    mt = DataLoader(X, y, 2, rng=np.random.Generator(np.random.MT19937(0))).state_dict()
    with pytest.raises(ValueError, match="DataLoader: expected a state of a PCG64 generator, "
                                         "got 'MT19937'"):
        loader.load_state_dict(mt)
    with pytest.raises(TypeError, match="as_generator: expected None, an int seed"):
        DataLoader(X, y, 2, rng="seed")
