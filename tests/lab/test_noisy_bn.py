"""NoisyBatchNorm1d: BN plus per-step, per-unit noise in training only."""

import numpy as np
import pytest

from normlab import nn
from normlab.gradcheck import rel_error
from normlab.lab.noisy_bn import NoisyBatchNorm1d


def _pair(seed=0):
    noisy = NoisyBatchNorm1d(6, rng=np.random.default_rng(seed), dtype=np.float64)
    bn = nn.BatchNorm1d(6, dtype=np.float64)
    return noisy, bn


def test_eval_mode_is_plain_batchnorm_bit_for_bit():
    x = np.random.default_rng(1).normal(size=(32, 6))
    noisy, bn = _pair()
    noisy(x), bn(x)  # one training step each: same running statistics
    noisy.eval(), bn.eval()
    np.testing.assert_array_equal(noisy(x), bn(x))


def test_training_noise_has_the_documented_per_unit_distribution():
    x = np.random.default_rng(2).normal(size=(4000, 6))
    noisy, bn = _pair()
    shifts, scales = [], []
    for _ in range(200):
        d = noisy(x) - bn(x)  # (N, C): mu + sigma * z per unit
        shifts.append(d.mean(0))
        scales.append(d.std(0))
    shifts, scales = np.array(shifts), np.array(scales)
    assert np.all(np.abs(shifts) < 0.5 + 0.05) and np.all(scales < 0.5 + 0.05)
    # U(-0.5, 0.5) has std 0.289 and U(0, 0.5) mean 0.25: fresh draws every step and unit
    assert abs(shifts.std() - 0.289) < 0.03 and abs(scales.mean() - 0.25) < 0.03


def test_backward_is_batchnorm_backward_and_gradient_checks():
    x = np.random.default_rng(3).normal(size=(16, 6))
    dout = np.random.default_rng(4).normal(size=(16, 6))
    noisy, bn = _pair()
    noisy(x), bn(x)
    np.testing.assert_allclose(noisy.backward(dout), bn.backward(dout), rtol=0, atol=0)
    # the noise does not depend on x: a finite difference with the same noise draws
    h = 1e-6
    i, j = 5, 2
    xp, xm = x.copy(), x.copy()
    xp[i, j] += h
    xm[i, j] -= h
    f = []
    for xx in (xp, xm):
        m = NoisyBatchNorm1d(6, rng=np.random.default_rng(0), dtype=np.float64)
        f.append(float((m(xx) * dout).sum()))
    noisy2 = NoisyBatchNorm1d(6, rng=np.random.default_rng(0), dtype=np.float64)
    noisy2(x)
    assert rel_error((f[0] - f[1]) / (2 * h), noisy2.backward(dout)[i, j]) < 1e-7


def test_zero_noise_is_batchnorm_in_training_too():
    x = np.random.default_rng(5).normal(size=(8, 6))
    noisy = NoisyBatchNorm1d(6, mean_range=0.0, std_max=0.0, dtype=np.float64)
    np.testing.assert_array_equal(noisy(x), nn.BatchNorm1d(6, dtype=np.float64)(x))


def test_state_dict_keys_nest_the_batchnorm():
    assert set(NoisyBatchNorm1d(3).state_dict()) == {
        "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}


def test_bad_noise_bounds_and_inputs_are_refused():
    with pytest.raises(ValueError, match=r"NoisyBatchNorm1d: expected mean_range to be a float >= 0"):
        NoisyBatchNorm1d(3, mean_range=-1.0)
    with pytest.raises(ValueError, match=r"NoisyBatchNorm1d: expected std_max to be a float >= 0"):
        NoisyBatchNorm1d(3, std_max="a")
    with pytest.raises(ValueError, match=r"NoisyBatchNorm1d: expected \(N, C\) input"):
        NoisyBatchNorm1d(3)(np.zeros((4, 3, 5), np.float32))
