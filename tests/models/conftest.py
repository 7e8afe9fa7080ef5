"""Helpers for the model tests: a NumPy softmax cross-entropy, an Adam loop, a spot gradcheck."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from normlab.gradcheck import check_module, rel_error
from normlab.optim import Adam


def softmax_cross_entropy(logits, y):
    """Mean cross-entropy and its gradient (written here so model tests need no loss module)."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    N = len(y)
    loss = -logp[np.arange(N), y].mean()
    d = np.exp(logp)
    d[np.arange(N), y] -= 1.0
    return loss, d / N


def _adam_fit(model, x, y, steps: int = 150, lr: float = 1e-2):
    """Train ``model`` on one batch with ``normlab.optim.Adam``; return eval-mode accuracy."""
    opt = Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        _, dlogits = softmax_cross_entropy(model(x), y)
        model.backward(dlogits.astype(x.dtype))
        opt.step()
    model.eval()
    return float((model(x).argmax(axis=1) == y).mean())


@pytest.fixture
def overfit():
    return _adam_fit


def _spot_gradcheck(model, x, rng, per_param: int = 4, h: float = 1e-5) -> dict:
    """Relative errors of analytic vs centred-difference gradients at random entries.

    For models too large for ``check_module`` (which differentiates every entry): checks
    ``per_param`` random entries of ``dx`` and of every parameter, in float64.
    """
    model = copy.deepcopy(model).to(dtype=np.float64)
    x = x.astype(np.float64)
    work = copy.deepcopy(model)
    out = work(x)
    dout = rng.standard_normal(out.shape)
    analytic = {"dx": work.backward(dout)}
    analytic.update({name: g for name, _, g in work.named_parameters()})

    def objective(m, xin):
        return float(np.sum(copy.deepcopy(m)(xin) * dout))

    errors = {}
    for name in analytic:
        a, n = [], []
        for _ in range(per_param):
            if name == "dx":
                idx = tuple(rng.integers(s) for s in x.shape)
                xp, xm = x.copy(), x.copy()
                xp[idx] += h
                xm[idx] -= h
                num = (objective(model, xp) - objective(model, xm)) / (2 * h)
            else:
                mp, mm = copy.deepcopy(model), copy.deepcopy(model)
                owner, key = name.rpartition(".")[0], name.rpartition(".")[2]
                pp = dict(mp.named_modules())[owner].params
                pm = dict(mm.named_modules())[owner].params
                idx = tuple(rng.integers(s) for s in pp[key].shape)
                pp[key] = pp[key].copy()
                pm[key] = pm[key].copy()
                pp[key][idx] += h
                pm[key][idx] -= h
                num = (objective(mp, x) - objective(mm, x)) / (2 * h)
            a.append(analytic[name][idx])
            n.append(num)
        errors[name] = rel_error(np.array(a), np.array(n))
    return errors


@pytest.fixture
def spot_gradcheck():
    return _spot_gradcheck


def _gradcheck(model, x, rng, *, tol=1e-7, zero=(), h=1e-5):
    """``check_module`` on ``model``; the gradients named in ``zero`` must be exactly zero.

    A bias right before a training-mode BatchNorm has gradient 0 (the batch mean removes
    it), so its numerical gradient is pure round-off and its relative error meaningless;
    instead its analytic gradient is required to vanish to round-off. ``h = 1e-5`` keeps
    round-off in the centred differences (~1e-16 |f| / h) below the truncation error.
    """
    report = check_module(model, x, rng, tol=tol, h=h)
    rest = {k: v for k, v in report.errors.items() if k not in zero}
    assert set(zero) <= set(report.errors), sorted(report.errors)
    assert max(rest.values()) < tol, rest
    if zero:
        work = copy.deepcopy(model).to(dtype=np.float64)
        out = work(x.astype(np.float64))
        work.backward(np.random.default_rng(0).standard_normal(out.shape))
        grads = {n: g for n, _, g in work.named_parameters()}
        for name in zero:
            assert np.max(np.abs(grads[name])) < 1e-12, (name, grads[name])
    return report


@pytest.fixture
def gradcheck():
    return _gradcheck
