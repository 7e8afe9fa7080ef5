"""Student-t intervals and paired differences over seeds."""

import math

import numpy as np
import pytest

from normlab.lab.stats import interval_label, mean_ci, mean_halfwidth, paired, t_quantile


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 7, 10, 30, 101])
@pytest.mark.parametrize("q", [0.975, 0.995, 0.9, 0.6, 0.025])
def test_t_quantile_matches_scipy(q, df):
    stats = pytest.importorskip("scipy.stats")  # scipy comes with scikit-learn
    assert t_quantile(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-11, abs=1e-12)


def test_t_quantile_table_values():
    # printed t tables (two-sided 95 %): 12.706, 4.303, 3.182, 2.776, 2.228 (df = 10)
    for df, table in ((1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (10, 2.228)):
        assert abs(t_quantile(0.975, df) - table) < 5e-4
    assert t_quantile(0.5, 7) == 0.0
    assert t_quantile(0.025, 3) == -t_quantile(0.975, 3)
    # df -> infinity approaches the normal quantile 1.95996...
    assert abs(t_quantile(0.975, 2000) - 1.959964) < 2e-3


def test_paired_interval_on_a_known_example():
    # arm A beats arm B by 2, 2 and 3.5 over three seeds
    p = paired([3.0, 4.0, 5.5], [1.0, 2.0, 2.0])
    assert p["diffs"] == [2.0, 2.0, 3.5] and p["n"] == 3
    sd = math.sqrt(((2 - 2.5) ** 2 * 2 + (3.5 - 2.5) ** 2) / 2)  # ddof = 1: sqrt(0.75)
    # df = 2 has a closed form: P(|T| <= t) = t / sqrt(2 + t²) = 0.95
    t = math.sqrt(2 * 0.95**2 / (1 - 0.95**2))  # 4.3026527...
    half = t * sd / math.sqrt(3)
    assert p["mean"] == pytest.approx(2.5, rel=1e-15)
    assert p["sd"] == pytest.approx(sd, rel=1e-14)
    assert p["low"] == pytest.approx(2.5 - half, rel=1e-12)
    assert p["high"] == pytest.approx(2.5 + half, rel=1e-12)
    assert p["every_seed"] is True and p["interval_above"] is True


def test_paired_sign_and_mixed_seeds():
    p = paired([1.0, 0.0], [0.0, 0.5])
    assert p["diffs"] == [1.0, -0.5]
    assert p["every_seed"] is False and p["interval_above"] is False


def test_paired_threshold():
    # "A is at least 3x B" on log10 values: log10(3) = 0.477
    p = paired([1.0, 0.5, 0.75], [0.0, 0.0, 0.0], threshold=0.477)
    assert p["threshold"] == 0.477 and p["every_seed"] is True
    assert p["interval_above"] is False  # low = 0.75 - 4.30 * 0.25 / sqrt(3) = 0.129
    assert paired([1.0, 1.0, 0.75], [0.0, 0.0, 0.0], threshold=0.477)["interval_above"] is True
    assert paired([1.0, 0.375], [0.0, 0.0], threshold=0.477)["every_seed"] is False


def test_one_seed_has_no_interval():
    p = paired([0.9], [0.5])
    assert p["mean"] == pytest.approx(0.4) and p["low"] is None and p["high"] is None
    assert p["every_seed"] is True and p["interval_above"] is None
    assert mean_ci([3.0]) == {"mean": 3.0, "low": None, "high": None, "sd": None, "n": 1}
    assert "no interval" in interval_label(1)
    assert interval_label(3) == "mean ± 95% t-interval over 3 seeds"


def test_non_finite_values_have_no_mean():
    assert mean_ci([1.0, float("nan")])["mean"] is None
    assert paired([1.0, float("nan")], [0.0, 0.0])["every_seed"] is False


def test_mean_halfwidth_matches_mean_ci_pointwise():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 5))
    mean, half = mean_halfwidth(a)
    for j in range(5):
        ci = mean_ci(a[:, j])
        assert mean[j] == pytest.approx(ci["mean"], rel=1e-12)
        assert half[j] == pytest.approx(ci["high"] - ci["mean"], rel=1e-12)
    assert mean_halfwidth(a[:1])[1] is None


@pytest.mark.parametrize("call, message", [
    (lambda: t_quantile(1.0, 3), r"t_quantile: expected q in \(0, 1\), got 1.0"),
    (lambda: t_quantile(0.9, 0), "t_quantile: expected df to be a positive int, got 0"),
    (lambda: t_quantile(0.9, 2.5), "t_quantile: expected df to be a positive int, got 2.5"),
    (lambda: mean_ci([]), "mean_ci: expected at least one value, got none"),
    (lambda: paired([1.0, 2.0], [1.0]),
     "paired: expected one value per seed in each arm, got 2 and 1 values"),
])
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
