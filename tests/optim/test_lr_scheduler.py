"""LR schedules: sequences equal PyTorch's step for step, state dicts, errors."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch

import normlab.optim as O
from normlab.optim import lr_scheduler as S

from _optim_harness import make_model, torch_params

LRS = (0.1, 0.05)


def _pair(opt_name="SGD", **kw):
    """A normlab and a torch optimizer with two param groups of different lr."""
    m = make_model()
    refs, tp = m.parameters(), torch_params(m)
    groups = [{"params": refs[:2], "lr": LRS[0]}, {"params": refs[2:], "lr": LRS[1]}]
    tgroups = [{"params": tp[:2], "lr": LRS[0]}, {"params": tp[2:], "lr": LRS[1]}]
    return getattr(O, opt_name)(groups, **kw), getattr(torch.optim, opt_name)(tgroups, **kw)


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


SCHEDULES = [
    ("StepLR", dict(step_size=7, gamma=0.5), "SGD"),
    ("MultiStepLR", dict(milestones=[3, 10, 10, 25], gamma=0.3), "SGD"),
    ("ExponentialLR", dict(gamma=0.9), "Adam"),
    ("CosineAnnealingLR", dict(T_max=12, eta_min=0.001), "SGD"),  # 40 steps: past T_max
    ("OneCycleLR", dict(max_lr=[0.5, 0.2], total_steps=41), "SGD"),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=41, anneal_strategy="linear",
                        three_phase=True, pct_start=0.25), "Adam"),
    ("OneCycleLR", dict(max_lr=0.3, epochs=4, steps_per_epoch=10, base_momentum=0.8,
                        max_momentum=[0.9, 0.99]), "RMSprop"),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=40, cycle_momentum=False), "Adagrad"),
]


@pytest.mark.parametrize("name,kw,opt_name", SCHEDULES)
def test_schedule_matches_torch_for_40_steps(name, kw, opt_name):
    opt, topt = _pair(opt_name)
    sched = getattr(S, name)(opt, **kw)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    assert sched.get_last_lr() == tsched.get_last_lr()
    for _ in range(40 if name != "OneCycleLR" or kw.get("total_steps") != 40 else 39):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        assert sched.get_last_lr() == tsched.get_last_lr()
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in topt.param_groups]
        assert _momenta(opt) == _momenta(topt)


def test_onecycle_cycles_momentum_inversely_to_lr():
    opt, _ = _pair("SGD")
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    lrs, moms = [sched.get_last_lr()[0]], [opt.param_groups[0]["momentum"]]
    for _ in range(19):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
        moms.append(opt.param_groups[0]["momentum"])
    peak = int(np.argmax(lrs))
    assert peak == 5 and lrs[peak] == 1.0 and moms[peak] == 0.85
    assert moms[0] == 0.95 and lrs[0] == pytest.approx(1.0 / 25, rel=1e-12)
    assert lrs[-1] == pytest.approx(1.0 / 25 / 1e4, rel=1e-12) and moms[-1] == 0.95


def test_warmup_cosine_matches_torch_lambda_lr():
    W, T = 5, 30

    def lam(t):
        if t < W:
            return (t + 1) / W
        return (1 + math.cos(math.pi * min(1.0, (t - W) / max(1, T - W)))) / 2

    opt, topt = _pair("SGD")
    sched = S.WarmupCosineLR(opt, warmup_steps=W, total_steps=T)
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, lam)
    for _ in range(35):
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-15)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


def test_warmup_cosine_closed_form_with_floor():
    opt, _ = _pair("SGD")
    sched = S.WarmupCosineLR(opt, warmup_steps=4, total_steps=12, min_lr=[0.01, 0.0])
    seq = [sched.get_last_lr()]
    for _ in range(15):
        sched.step()
        seq.append(sched.get_last_lr())
    seq = np.array(seq)
    np.testing.assert_allclose(seq[:4, 0], [0.025, 0.05, 0.075, 0.1], rtol=1e-15)
    assert seq[3, 0] == seq[4, 0] == 0.1
    np.testing.assert_allclose(seq[8, 0], 0.01 + 0.09 * 0.5, rtol=1e-15)
    assert list(seq[12:, 0]) == [0.01] * 4 and list(seq[12:, 1]) == [0.0] * 4
    assert np.all(np.diff(seq[4:, 0]) <= 0)


def test_lambda_lr_matches_torch_per_group():
    fns = [lambda t: 0.95 ** t, lambda t: 1.0 / (1 + t)]
    opt, topt = _pair("SGD")
    sched, tsched = S.LambdaLR(opt, fns), torch.optim.lr_scheduler.LambdaLR(topt, fns)
    for _ in range(30):
        assert sched.get_last_lr() == tsched.get_last_lr()
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


PLATEAU = [
    dict(patience=2),
    dict(patience=1, cooldown=2, factor=0.5, min_lr=[0.02, 0.01]),
    dict(mode="max", threshold_mode="abs", threshold=0.05, patience=0, factor=0.7),
    dict(mode="max", patience=3, min_lr=0.004, eps=1e-3),
    dict(threshold_mode="abs", threshold=0.1, patience=1),
]


@pytest.mark.parametrize("kw", PLATEAU)
def test_reduce_on_plateau_matches_torch(kw):
    rng = np.random.default_rng(3)
    metrics = list(np.r_[np.linspace(1.0, 0.5, 8), 0.5 + 0.05 * rng.standard_normal(30)])
    metrics[12] = float("nan")  # a NaN counts as "not better", as in torch
    opt, topt = _pair("Adam")
    sched = S.ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    assert sched.get_last_lr() == tsched.get_last_lr()
    changed = False
    for mval in metrics:
        sched.step(mval)
        tsched.step(mval)
        assert sched.get_last_lr() == tsched.get_last_lr()
        assert (sched.num_bad_epochs, sched.cooldown_counter) == (
            tsched.num_bad_epochs, tsched.cooldown_counter)
        changed |= sched.get_last_lr() != list(LRS)
    assert changed


@pytest.mark.parametrize("name,kw,opt_name", SCHEDULES[:6] + [
    ("WarmupCosineLR", dict(warmup_steps=3, total_steps=20), "AdamW"),
    ("ReduceLROnPlateau", dict(patience=1), "SGD"),
])
def test_state_dict_round_trip_through_json(name, kw, opt_name):
    """2k steps equal k steps, save (JSON), rebuild, load, k more steps."""
    metrics = [1.0 / (1 + t) if t < 6 else 0.2 for t in range(20)]

    def advance(opt, sched, ts):
        for t in ts:
            opt.step()
            sched.step(metrics[t]) if name == "ReduceLROnPlateau" else sched.step()

    opt, _ = _pair(opt_name)
    sched = getattr(S, name)(opt, **kw)
    advance(opt, sched, range(20))
    opt2, _ = _pair(opt_name)
    sched2 = getattr(S, name)(opt2, **kw)
    advance(opt2, sched2, range(10))
    arrays, meta = O.state_dict_to_arrays(opt2.state_dict())
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    saved_opt, saved_sched = json.dumps(meta), json.dumps(sched2.state_dict())
    opt3, _ = _pair(opt_name)
    sched3 = getattr(S, name)(opt3, **kw)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        opt3.load_state_dict(O.state_dict_from_arrays(dict(npz), json.loads(saved_opt)))
    sched3.load_state_dict(json.loads(saved_sched))
    advance(opt3, sched3, range(10, 20))
    assert sched3.get_last_lr() == sched.get_last_lr()
    assert _momenta(opt3) == _momenta(opt)


def test_scheduler_state_dict_excludes_optimizer_and_lambdas():
    opt, _ = _pair("SGD")
    sd = S.LambdaLR(opt, lambda t: 1.0).state_dict()
    assert "optimizer" not in sd and "lr_lambdas" not in sd and sd["last_epoch"] == 0
    json.dumps(sd)


def test_resume_with_last_epoch_continues_closed_form():
    opt, topt = _pair("SGD")
    for g in opt.param_groups + topt.param_groups:
        g["initial_lr"] = g["lr"]
    sched = S.CosineAnnealingLR(opt, T_max=10, last_epoch=4)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=10, last_epoch=4)
    for _ in range(8):
        assert sched.get_last_lr() == tsched.get_last_lr()
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


ERRORS = [
    (lambda o: S.StepLR(o, step_size=0), ValueError,
     r"StepLR: expected step_size to be an int >= 1, got 0"),
    (lambda o: S.MultiStepLR(o, [2, -1]), ValueError,
     r"MultiStepLR: expected every milestone to be an int >= 0, got -1"),
    (lambda o: S.CosineAnnealingLR(o, T_max=0), ValueError,
     r"CosineAnnealingLR: expected T_max to be an int >= 1, got 0"),
    (lambda o: S.WarmupCosineLR(o, 10, 5), ValueError,
     r"WarmupCosineLR: expected total_steps to be an int >= 10, got 5"),
    (lambda o: S.WarmupCosineLR(o, -1, 5), ValueError,
     r"WarmupCosineLR: expected warmup_steps to be an int >= 0, got -1"),
    (lambda o: S.WarmupCosineLR(o, 1, 5, min_lr=[0.0]), ValueError,
     r"WarmupCosineLR: expected 2 values for min_lr \(one per param group\), got 1"),
    (lambda o: S.LambdaLR(o, [lambda t: 1.0]), ValueError,
     r"LambdaLR: expected 2 values for lr_lambda"),
    (lambda o: S.StepLR(o, 3, last_epoch=5), ValueError,
     r"StepLR: expected 'initial_lr' in param_groups\[0\] when resuming with last_epoch=5"),
    (lambda o: S.StepLR(o, 3, last_epoch=-2), ValueError,
     r"StepLR: expected last_epoch to be an int >= -1, got -2"),
    (lambda o: S.StepLR(object(), 3), TypeError,
     r"StepLR: expected a normlab Optimizer, got object"),
    (lambda o: S.OneCycleLR(o, 0.1), ValueError,
     r"OneCycleLR: expected total_steps, or epochs and steps_per_epoch, got total_steps=None"),
    (lambda o: S.OneCycleLR(o, 0.1, total_steps=0), ValueError,
     r"OneCycleLR: expected total_steps to be an int >= 1, got 0"),
    (lambda o: S.OneCycleLR(o, 0.1, epochs=0, steps_per_epoch=3), ValueError,
     r"OneCycleLR: expected epochs to be an int >= 1, got 0"),
    (lambda o: S.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=1.5), ValueError,
     r"OneCycleLR: expected steps_per_epoch to be an int >= 1, got 1.5"),
    (lambda o: S.OneCycleLR(o, 0.1, 10, pct_start=1.5), ValueError,
     r"OneCycleLR: expected pct_start a float in \[0, 1\], got 1.5"),
    (lambda o: S.OneCycleLR(o, 0.1, 10, anneal_strategy="exp"), ValueError,
     r"OneCycleLR: expected anneal_strategy 'cos' or 'linear', got 'exp'"),
    (lambda o: S.OneCycleLR(o, [0.1], 10), ValueError, r"OneCycleLR: expected 2 values for max_lr"),
    (lambda o: S.OneCycleLR(object(), 0.1, 10), TypeError,
     r"OneCycleLR: expected a normlab Optimizer, got object"),
    (lambda o: S.ReduceLROnPlateau(o, factor=1.0), ValueError,
     r"ReduceLROnPlateau: expected factor < 1.0, got 1.0"),
    (lambda o: S.ReduceLROnPlateau(o, mode="up"), ValueError,
     r"ReduceLROnPlateau: expected mode 'min' or 'max', got 'up'"),
    (lambda o: S.ReduceLROnPlateau(o, threshold_mode="x"), ValueError,
     r"ReduceLROnPlateau: expected threshold_mode 'rel' or 'abs', got 'x'"),
    (lambda o: S.ReduceLROnPlateau(o, patience=-1), ValueError,
     r"ReduceLROnPlateau: expected patience to be an int >= 0, got -1"),
    (lambda o: S.ReduceLROnPlateau(o, cooldown=0.5), ValueError,
     r"ReduceLROnPlateau: expected cooldown to be an int >= 0, got 0.5"),
    (lambda o: S.ReduceLROnPlateau(o, min_lr=[0.0] * 3), ValueError,
     r"ReduceLROnPlateau: expected 2 values for min_lr"),
    (lambda o: S.ReduceLROnPlateau([]), TypeError,
     r"ReduceLROnPlateau: expected a normlab Optimizer, got list"),
    (lambda o: S.ReduceLROnPlateau(o).step("low"), TypeError,
     r"ReduceLROnPlateau.step: expected a number \(the monitored metric\), got str"),
]


@pytest.mark.parametrize("make,exc,match", ERRORS)
def test_schedule_errors(make, exc, match):
    opt, _ = _pair("SGD")
    with pytest.raises(exc, match=match):
        make(opt)


def test_onecycle_rejects_optimizer_without_momentum():
    opt, _ = _pair("Adagrad")
    with pytest.raises(ValueError, match=r"OneCycleLR: expected an optimizer with a 'momentum' "
                                         r"or 'betas' hyperparameter for cycle_momentum=True, got Adagrad"):
        S.OneCycleLR(opt, 0.1, 10)


def test_onecycle_rejects_stepping_past_total_steps():
    opt, _ = _pair("SGD")
    sched = S.OneCycleLR(opt, 0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match=r"OneCycleLR: expected at most total_steps=3 steps, got step 4"):
        sched.step()
