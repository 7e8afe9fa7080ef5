"""Uncertainty over seeds: means with Student-t intervals, and paired differences.

Every experiment runs each arm once per replicate seed, and the arms of one replicate share
their data and initial weights (``normlab.lab.seeding``). A comparison between two arms is
therefore *paired*: its unit is the per-seed difference ``d_s = a_s - b_s``, and its
uncertainty is the Student-t interval of the mean difference over seeds,

    mean(d) ± t_{0.975, n-1} · sd(d) / sqrt(n)          (sd with ddof = 1)

With one seed the interval is undefined and is reported as ``None``, never invented.

A claim check on a paired comparison passes when the difference favours the claim in every
seed (:func:`paired` reports ``every_seed``; "favours" means above a threshold, 0 unless the
claim names one, such as "at least 3x"); the interval is reported beside it, and
``interval_above`` says whether it lies entirely on the claim's side.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["t_quantile", "mean_ci", "paired", "interval_label", "mean_halfwidth", "LEVEL"]

LEVEL = 0.95  # two-sided coverage of every interval the lab reports


def _t_two_sided_mass(theta: float, df: int) -> float:
    """``P(|T| <= sqrt(df) tan(theta))`` for Student's t with integer ``df`` (closed form).

    With ``c = cos(theta)``, ``s = sin(theta)`` (Abramowitz & Stegun 26.7.3/26.7.4):
    even df: ``s (1 + c²/2 + 1·3 c⁴/(2·4) + ...)`` up to ``c^(df-2)``;
    odd df: ``(2/pi) (theta + s c (1 + 2/3 c² + 2·4/(3·5) c⁴ + ...))`` up to ``c^(df-3)``.
    """
    c, s = math.cos(theta), math.sin(theta)
    c2 = c * c
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        return s * total
    total = 0.0
    if df > 1:
        term, total = 1.0, 1.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
    return (2.0 / math.pi) * (theta + s * c * total)


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (integer df >= 1).

    Found by bisection on the closed-form CDF (no SciPy needed); agrees with
    ``scipy.stats.t.ppf`` to about 1e-12.

    Raises
    ------
    ValueError
        For ``q`` outside (0, 1) or a ``df`` that is not a positive integer.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"t_quantile: expected q in (0, 1), got {q!r}.")
    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"t_quantile: expected df to be a positive int, got {df!r}.")
    if q == 0.5:
        return 0.0
    mass = abs(2.0 * q - 1.0)  # P(|T| <= t) for the upper quantile t
    lo, hi = 0.0, math.pi / 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _t_two_sided_mass(mid, int(df)) < mass:
            lo = mid
        else:
            hi = mid
    t = math.sqrt(df) * math.tan(0.5 * (lo + hi))
    return t if q > 0.5 else -t


def mean_ci(values, level: float = LEVEL) -> dict:
    """``{"mean", "low", "high", "sd", "n"}``: the mean over seeds and its t-interval.

    ``sd`` is the sample standard deviation (ddof = 1); with ``n = 1`` it and the interval
    are ``None``. Non-finite values make every entry but ``n`` ``None`` (a diverged run has
    no mean). Raises ``ValueError`` for no values.
    """
    a = np.asarray(values, dtype=np.float64).ravel()
    n = int(a.size)
    if n == 0:
        raise ValueError("mean_ci: expected at least one value, got none.")
    if not np.all(np.isfinite(a)):
        return {"mean": None, "low": None, "high": None, "sd": None, "n": n}
    mean = float(a.mean())
    if n == 1:
        return {"mean": mean, "low": None, "high": None, "sd": None, "n": 1}
    sd = float(a.std(ddof=1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "sd": sd, "n": n}


def paired(a, b, level: float = LEVEL, threshold: float = 0.0) -> dict:
    """Paired comparison of two arms over the same seeds: ``d = a - b`` per seed.

    Returns ``mean_ci(d)`` plus ``diffs`` (per seed), ``threshold``, ``every_seed`` (all
    ``d > threshold``: with the default 0, the first arm is larger in every seed) and
    ``interval_above`` (the interval lies above the threshold; ``None`` with one seed).
    Orient ``a`` and ``b`` so that the claim predicts ``d > threshold`` (e.g. a log-ratio
    above ``log10(3)`` for "at least 3x").

    Raises
    ------
    ValueError
        If ``a`` and ``b`` do not have one value per seed each.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired: expected one value per seed in each arm, got {a.size} and "
                         f"{b.size} values.")
    d = a - b
    out = mean_ci(d, level)
    out["diffs"] = [float(v) for v in d]
    out["threshold"] = float(threshold)
    out["every_seed"] = bool(np.all(d > threshold))
    out["interval_above"] = None if out["low"] is None else bool(out["low"] > threshold)
    return out


def mean_halfwidth(values, level: float = LEVEL):
    """``(mean, half_width)`` over axis 0 (seeds) of an ``(n_seeds, ...)`` array.

    ``half_width`` is the t-interval's half width per point, ``None`` with one seed; for
    error bars and bands. NaN entries (e.g. a diverged seed) make their point NaN.
    """
    a = np.asarray(values, dtype=np.float64)
    n = a.shape[0]
    mean = a.mean(axis=0)
    if n < 2:
        return mean, None
    half = t_quantile(0.5 + level / 2.0, n - 1) * a.std(axis=0, ddof=1) / math.sqrt(n)
    return mean, half


def interval_label(n: int, level: float = LEVEL) -> str:
    """What an error bar shows, for figure legends and captions."""
    if n <= 1:
        return "one seed: no interval (needs >= 2 seeds)"
    return f"mean ± {level:.0%} t-interval over {n} seeds"
