"""update_bn_stats (precise BN): the issue's exact examples, torch's update_bn, restores, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim.swa_utils import update_bn

from normlab import nn
from normlab.train import update_bn_stats

BATCHES = [np.array([[1.0], [3.0]]), np.array([[5.0], [9.0], [10.0]])]


def _bn64(**kw):
    return nn.BatchNorm1d(1, **kw).to(dtype=np.float64)


@pytest.mark.parametrize("estimator,mean,var", [("average", 5.0, 4.5),
                                                ("population", 5.6, 11.84)])
def test_issue_examples_exact(estimator, mean, var):
    m = _bn64()
    m.buffers["running_mean"] += 7.0  # stale statistics are replaced, not blended
    update_bn_stats(m, BATCHES, estimator=estimator)
    np.testing.assert_allclose(m.buffers["running_mean"], [mean], rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.buffers["running_var"], [var], rtol=0, atol=1e-12)


def test_batches_may_be_x_y_tuples_or_lists():
    a, b = _bn64(), _bn64()
    update_bn_stats(a, [(x, np.zeros(len(x))) for x in BATCHES])
    update_bn_stats(b, [[x, None] for x in BATCHES], estimator="average")
    np.testing.assert_array_equal(a.buffers["running_var"], [4.5])
    np.testing.assert_array_equal(b.buffers["running_var"], [4.5])


def _pair(rng):
    ours = nn.Sequential(nn.Linear(4, 5, rng=rng), nn.BatchNorm1d(5, momentum=0.3), nn.ReLU(),
                         nn.Linear(5, 3, rng=rng), nn.BatchNorm1d(3)).to(dtype=np.float64)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5, momentum=0.3),
                                 torch.nn.ReLU(), torch.nn.Linear(5, 3),
                                 torch.nn.BatchNorm1d(3)).double()
    for m in (ours[1], ours[4]):
        m.params["weight"] = 1.0 + rng.standard_normal(m.params["weight"].shape)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            ours.state_dict().items()})
    return ours, theirs


def test_average_equals_torch_update_bn(rng):
    ours, theirs = _pair(rng)
    batches = [(2.0 * rng.standard_normal((n, 4)) + 1.0, np.zeros(n)) for n in (8, 5, 3, 6)]
    loader = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
    ours.eval(), theirs.eval()
    update_bn_stats(ours, batches, estimator="average")
    update_bn(loader, theirs)
    for key, v in theirs.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert int(ours.state_dict()[key]) == int(v) == 4
        else:
            np.testing.assert_allclose(ours.state_dict()[key], v.numpy(), rtol=1e-7, atol=1e-12)
    assert ours[1].momentum == theirs[1].momentum == 0.3 and ours[4].momentum == 0.1
    assert not any(m.training for m in ours.modules())


def test_population_is_mean_and_biased_var_of_all_samples(rng):
    """First layer sees the raw inputs: population = statistics of the concatenation."""
    ours, _ = _pair(rng)
    ours = nn.Sequential(nn.BatchNorm1d(4), *list(ours)).to(dtype=np.float64)
    batches = [3.0 * rng.standard_normal((n, 4)) - 2.0 for n in (7, 2, 5)]
    update_bn_stats(ours, batches, estimator="population")
    allx = np.concatenate(batches)
    np.testing.assert_allclose(ours[0].buffers["running_mean"], allx.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(ours[0].buffers["running_var"], allx.var(axis=0), rtol=1e-12)


def test_population_ignores_how_ghost_bn_chunks_the_batch(rng):
    """Per-chunk moments merged by count give the same population statistics."""
    batches = [rng.standard_normal((n, 3, 4)) * 2.0 + 1.0 for n in (6, 5)]
    ghost = nn.GhostBatchNorm1d(3, virtual_batch_size=2).to(dtype=np.float64)
    bn = nn.BatchNorm1d(3).to(dtype=np.float64)
    update_bn_stats(ghost, batches, estimator="population")
    update_bn_stats(bn, batches, estimator="population")
    for key in ("running_mean", "running_var"):
        np.testing.assert_allclose(ghost.buffers[key], bn.buffers[key], rtol=1e-12)
    assert int(ghost.buffers["num_batches_tracked"]) == 6  # 3 chunks per batch


def test_restores_each_modules_mode_and_momentum(rng):
    ours, _ = _pair(rng)
    ours.train()
    ours[4].training = False
    ours[1].momentum = None
    update_bn_stats(ours, [rng.standard_normal((4, 4))], estimator="population")
    assert [m.training for m in ours] == [True, True, True, True, False]
    assert ours[1].momentum is None and ours[4].momentum == 0.1
    assert ours[1].moments_hook is None
    with pytest.raises(RuntimeError, match="expected forward\\(\\) before backward\\(\\)"):
        ours.backward(np.ones((4, 3)))  # the estimation passes leave no cache behind


def test_float32_model_keeps_float32_buffers(rng):
    m = nn.BatchNorm2d(2)
    update_bn_stats(m, [rng.standard_normal((3, 2, 2, 2)).astype(np.float32)],
                    estimator="population")
    assert m.buffers["running_mean"].dtype == m.buffers["running_var"].dtype == np.float32


def test_empty_iterable_refused_and_buffers_restored():
    m = _bn64()
    m.buffers["running_mean"] = np.array([2.0])
    with pytest.raises(ValueError, match="update_bn_stats: expected at least one batch, got an "
                                         "empty iterable"):
        update_bn_stats(m, iter([]))
    np.testing.assert_array_equal(m.buffers["running_mean"], [2.0])
    assert m.momentum == 0.1


def test_error_mid_way_restores_everything(rng):
    m = _bn64()
    m.buffers["running_var"] = np.array([3.0])
    with pytest.raises(ValueError, match="BatchNorm1d: expected input with 1 channels"):
        update_bn_stats(m, [np.ones((2, 1)), np.ones((2, 2))], estimator="population")
    np.testing.assert_array_equal(m.buffers["running_var"], [3.0])
    assert int(m.buffers["num_batches_tracked"]) == 0 and m.moments_hook is None


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Linear(2, 2), nn.ReLU()),
    nn.Sequential(nn.LayerNorm(2), nn.BatchNorm1d(2, track_running_stats=False)),
    nn.FrozenBatchNorm2d(2),
])
def test_model_without_bn_refused(model):
    with pytest.raises(ValueError, match="update_bn_stats: expected a model with at least one "
                                         "BatchNorm layer that tracks running statistics, got "):
        update_bn_stats(model, [np.ones((2, 2))])


def test_bad_estimator_and_model():
    with pytest.raises(ValueError, match="update_bn_stats: expected estimator in "
                                         r"\('average', 'population'\), got 'median'"):
        update_bn_stats(_bn64(), BATCHES, estimator="median")
    with pytest.raises(TypeError, match="update_bn_stats: expected a normlab Module, got list"):
        update_bn_stats([], BATCHES)


def test_num_batches_takes_the_first_batches_of_an_endless_loader():
    def endless():
        while True:
            yield from BATCHES

    m = _bn64()
    update_bn_stats(m, endless(), num_batches=2, estimator="population")
    np.testing.assert_allclose(m.buffers["running_mean"], [5.6], rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.buffers["running_var"], [11.84], rtol=0, atol=1e-12)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="update_bn_stats: expected num_batches to be a "
                                             "positive int or None, got "):
            update_bn_stats(m, BATCHES, num_batches=bad)
