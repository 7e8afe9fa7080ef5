"""The measuring probes of the published-results experiments leave the run unchanged."""

import numpy as np

from normlab.lab.experiments import loss_landscape, santurkar_noise
from normlab.lab.noisy_bn import NoisyBatchNorm1d
from normlab.lab.seeding import Seeds
from normlab.lab.setups import mlp


def _state(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, 40)).astype(np.float32), rng.integers(0, 10, n)


def test_loss_landscape_probe_restores_weights_grads_and_running_stats():
    X, y = _data()
    model = mlp([16, 16], Seeds("t"), 0, norm="batch", init="he")
    model(X)  # running stats away from their initial values
    grads = [g.copy() for _, _, g in model.named_parameters()]
    before = _state(model)
    p = loss_landscape._landscape_probe(X, y, (0.1, 0.4), every=5)(model, 5)
    after = _state(model)
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)
    for g0, (_, _, g) in zip(grads, model.named_parameters()):
        np.testing.assert_array_equal(g0, g)
    assert len(p["losses"]) == 2 and p["loss_range"] == max(p["losses"]) - min(p["losses"])
    assert loss_landscape._landscape_probe(X, y, (0.1,), every=5)(model, 3) is None


def test_loss_landscape_gradient_change_is_zero_for_a_zero_step():
    X, y = _data()
    model = mlp([16], Seeds("t"), 1, norm=None)
    p = loss_landscape._landscape_probe(X, y, (0.0,), every=1)(model, 1)
    assert p["grad_change"] == 0.0 and p["loss_range"] == 0.0


def test_santurkar_probe_restores_running_stats_and_reads_the_last_relu_input():
    X, _ = _data()
    model = mlp([16, 12], Seeds("t"), 3, norm=lambda C: NoisyBatchNorm1d(C, rng=2))
    before = _state(model)
    means = santurkar_noise._preactivation_probe(X)(model, 1)
    for k, v in _state(model).items():
        np.testing.assert_array_equal(before[k], v, err_msg=k)
    assert means.shape == (12,)
