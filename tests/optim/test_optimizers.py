"""Optimizers: PyTorch parity step by step, in-place updates, dtypes, state dicts, errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

import normlab.optim as O
from normlab import nn
from normlab.optim import lr_scheduler as S

from _optim_harness import make_model, quadratic, set_grads, set_torch_grads, torch_params

CONFIGS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.5)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, eps=1e-3, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2,
                     eps=1e-6)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.5, 0.99), maximize=True)),
]

SCHEDS = {
    "none": None,
    "step": ("StepLR", dict(step_size=4, gamma=0.5)),
    "cosine": ("CosineAnnealingLR", dict(T_max=8, eta_min=1e-3)),
    "onecycle": ("OneCycleLR", dict(max_lr=0.05, total_steps=21)),
}


def _build(name, kw, groups):
    """normlab and torch optimizers on the same model; ``groups`` splits into 2 groups."""
    m = make_model()
    refs, tp = m.parameters(), torch_params(m)
    if groups:
        extra = {"lr": kw.get("lr", 0.01) / 2, "weight_decay": 0.2}
        params = [{"params": refs[:2]}, {"params": refs[2:], **extra}]
        tparams = [{"params": tp[:2]}, {"params": tp[2:], **extra}]
    else:
        params, tparams = refs, tp
    opt = getattr(O, name)(params, **kw)
    topt = getattr(torch.optim, name)(tparams, foreach=False, **kw)
    return m, tp, opt, topt


# Adagrad has no momentum for OneCycleLR to cycle (tested with cycle_momentum=False in
# test_lr_scheduler), so that pairing is left out rather than skipped.
PARITY = [(n, kw, s) for n, kw in CONFIGS for s in SCHEDS if not (n == "Adagrad" and s == "onecycle")]


@pytest.mark.parametrize("name,kw,sched", PARITY,
                         ids=[f"{n}-{CONFIGS.index((n, kw))}-{s}" for n, kw, s in PARITY])
def test_matches_torch_for_20_steps(name, kw, sched):
    m, tp, opt, topt = _build(name, kw, groups=sched in ("none", "cosine"))
    quad = quadratic(m)
    s = ts = None
    if SCHEDS[sched] is not None:
        sname, skw = SCHEDS[sched]
        s = getattr(S, sname)(opt, **skw)
        ts = getattr(torch.optim.lr_scheduler, sname)(topt, **skw)
    for _ in range(20):
        set_grads(m, quad)
        set_torch_grads(tp, quad)
        opt.step()
        topt.step()
        if s is not None:
            s.step()
            ts.step()
            assert s.get_last_lr() == ts.get_last_lr()
        for (pname, p, _), t in zip(m.named_parameters(), tp):
            np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-10, atol=0, err_msg=pname)


def test_adam_adds_eps_after_bias_correction():
    """One Adam step from zero state: ``p -= lr * g / (|g| + eps)`` with bias-corrected moments."""
    m = nn.Linear(1, 1, bias=False, dtype=np.float64)
    m.params["weight"][...] = 0.0
    m.grads["weight"] = np.array([[1e-7]])
    O.Adam(m.parameters(), lr=1.0, eps=1e-7).step()
    # sqrt(v_hat) = 1e-7 exactly, so the step is 1e-7 / (1e-7 + 1e-7) = 0.5, not ~1e-7/(~3e-9).
    np.testing.assert_allclose(m.params["weight"], [[-0.5]], rtol=1e-12)


@pytest.mark.parametrize("name,kw", CONFIGS[::3])
def test_updates_in_place_and_keeps_float32(name, kw):
    m = make_model(dtype=np.float32)
    quad = quadratic(m)
    held = m[0].params["weight"]
    before = held.copy()
    opt = getattr(O, name)(m.parameters(), **kw)
    for _ in range(3):
        set_grads(m, [(A.astype(np.float32), b.astype(np.float32)) for A, b in quad])
        opt.step()
    assert m[0].params["weight"] is held and not np.array_equal(held, before)
    for _, p, _ in m.named_parameters():
        assert p.dtype == np.float32
    for s in opt.state.values():
        for v in s.values():
            if hasattr(v, "dtype"):
                assert v.dtype == np.float32


def test_params_without_grad_are_skipped():
    m = make_model()
    opt = O.Adam(m.parameters(), lr=0.1)
    opt.zero_grad(set_to_none=True)
    assert all(ref.grad is None for ref in m.parameters())
    before = m.state_dict()
    m[1].grads["bias"] = np.ones(2)
    opt.step()
    after = m.state_dict()
    assert list(opt.state) == [3]
    for k in before:
        assert np.array_equal(before[k], after[k]) == (k != "1.bias")


def test_zero_grad_writes_zeros():
    m = make_model()
    set_grads(m, quadratic(m))
    O.SGD(m.parameters()).zero_grad()
    for ref in m.parameters():
        assert ref.grad.shape == ref.value.shape and not ref.grad.any()


def test_hyperparameters_stored_verbatim_with_torch_names():
    m = make_model()
    opt = O.AdamW([{"params": m[0].parameters()}, {"params": m[1].parameters(), "lr": 0.5}],
                  betas=[0.8, 0.9])
    topt = torch.optim.AdamW(torch_params(m))
    assert opt.param_groups[0]["lr"] == 1e-3 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[0]["betas"] == (0.8, 0.9)
    assert opt.param_groups[0]["weight_decay"] == 1e-2
    assert set(opt.param_groups[0]) - {"params"} <= set(topt.param_groups[0])
    assert O.SGD(m.parameters()).defaults["lr"] == 1e-3
    assert "Parameter Group 1" in repr(opt)


def test_state_dict_layout_matches_torch():
    m, tp, opt, topt = _build("Adam", dict(lr=0.01, amsgrad=True), groups=True)
    quad = quadratic(m)
    set_grads(m, quad)
    set_torch_grads(tp, quad)
    opt.step()
    topt.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert list(sd["state"]) == list(tsd["state"]) == [0, 1, 2, 3]
    assert set(sd["state"][0]) == set(tsd["state"][0])
    assert sd["state"][0]["step"] == int(tsd["state"][0]["step"]) == 1
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in tsd["param_groups"]]
    np.testing.assert_allclose(sd["state"][2]["exp_avg_sq"], tsd["state"][2]["exp_avg_sq"].numpy(),
                               rtol=1e-12)
    sd["state"][0]["exp_avg"][...] = 99.0  # a copy: the optimizer is unaffected
    assert not (opt.state[0]["exp_avg"] == 99.0).any()


def test_adagrad_creates_state_in_constructor_like_torch():
    m = make_model()
    opt = O.Adagrad(m.parameters(), initial_accumulator_value=0.5)
    topt = torch.optim.Adagrad(torch_params(m), initial_accumulator_value=0.5)
    assert list(opt.state_dict()["state"]) == list(topt.state_dict()["state"]) == [0, 1, 2, 3]
    assert np.all(opt.state[1]["sum"] == 0.5) and opt.state[1]["step"] == 0


def _run(opt, m, quad, n):
    for _ in range(n):
        set_grads(m, quad)
        opt.step()


@pytest.mark.parametrize("name,kw", CONFIGS[2::2], ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS[2::2])])
def test_state_dict_round_trip_is_bit_identical(name, kw):
    """2k steps == k steps, save to .npz + JSON, load into a fresh optimizer, k more."""
    k = 5
    m1 = make_model()
    quad = quadratic(m1)
    _run(getattr(O, name)(m1.parameters(), **kw), m1, quad, 2 * k)

    m2 = make_model()
    opt2 = getattr(O, name)(m2.parameters(), **kw)
    _run(opt2, m2, quad, k)
    arrays, meta = O.state_dict_to_arrays(opt2.state_dict())
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    text = json.dumps(meta)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        loaded = O.state_dict_from_arrays(dict(npz), json.loads(text))
    opt3 = getattr(O, name)(m2.parameters(), **{**kw, "lr": 123.0})  # lr restored by load
    opt3.load_state_dict(loaded)
    assert opt3.param_groups[0]["lr"] == kw["lr"]
    _run(opt3, m2, quad, k)
    for (n1, p1, _), (_, p2, _) in zip(m1.named_parameters(), m2.named_parameters()):
        assert np.array_equal(p1, p2), n1


def test_state_follows_the_parameters_dtype():
    m = make_model()
    quad = quadratic(m)
    opt = O.RMSprop(m.parameters(), momentum=0.9, centered=True)
    _run(opt, m, quad, 2)
    m.to(dtype=np.float32)
    _run(opt, m, [(A.astype(np.float32), b.astype(np.float32)) for A, b in quad], 1)
    assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values()
               if hasattr(v, "dtype"))
    assert opt.state[0]["step"] == 3


def test_load_state_dict_casts_to_param_dtype():
    m = make_model()
    quad = quadratic(m)
    opt = O.Adam(m.parameters())
    _run(opt, m, quad, 1)
    m32 = make_model(dtype=np.float32)
    opt32 = O.Adam(m32.parameters())
    opt32.load_state_dict(opt.state_dict())
    assert opt32.state[0]["exp_avg"].dtype == np.float32


# ----------------------------------------------------------------------------- errors
def _adam_sd(model):
    opt = O.Adam(model.parameters())
    _run(opt, model, quadratic(model), 1)
    return opt.state_dict()


def test_load_state_dict_errors():
    m = make_model()
    sd = _adam_sd(m)
    two = O.Adam([{"params": m[0].parameters()}, {"params": m[1].parameters()}])
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: expected 2 param groups, got 1"):
        two.load_state_dict(sd)
    few = O.Adam(m[0].parameters())
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: expected 2 params in param "
                                         r"group 0, got 4"):
        few.load_state_dict(sd)
    bad = {"state": {7: {}}, "param_groups": sd["param_groups"]}
    with pytest.raises(ValueError, match=r"expected state indices in 0..3, got 7"):
        O.Adam(m.parameters()).load_state_dict(bad)
    bad = {"state": {0: {**sd["state"][0], "exp_avg": np.zeros(5)}},
           "param_groups": sd["param_groups"]}
    with pytest.raises(ValueError, match=r"expected state\[0\]\['exp_avg'\] of shape \(3, 4\) "
                                         r"\(param '0.weight'\), got \(5,\)"):
        O.Adam(m.parameters()).load_state_dict(bad)
    sgd_sd = O.SGD(m.parameters(), momentum=0.9)
    _run(sgd_sd, m, quadratic(m), 1)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: expected state\[0\] to hold "
                                         r"\['exp_avg', 'exp_avg_sq', 'step'\], got keys \['momentum_buffer'\]"):
        O.Adam(m.parameters()).load_state_dict(
            {"state": sgd_sd.state_dict()["state"], "param_groups": sd["param_groups"]})
    with pytest.raises(ValueError, match=r"expected a dict with keys 'state' and 'param_groups', "
                                         r"got \['state'\]"):
        O.Adam(m.parameters()).load_state_dict({"state": {}})
    with pytest.raises(ValueError, match=r"state_dict_from_arrays: expected array keys "
                                         r"'state.\{index\}.\{name\}', got 'exp_avg'"):
        O.state_dict_from_arrays({"exp_avg": np.zeros(1)}, {"state": {}, "param_groups": []})


def test_constructor_errors():
    m = make_model()
    with pytest.raises(ValueError, match=r"SGD: expected a non-empty parameter list, got an empty one"):
        O.SGD([])
    with pytest.raises(TypeError, match=r"SGD: expected params to be normlab ParamRefs, got ndarray"):
        O.SGD([np.zeros(3)])
    with pytest.raises(TypeError, match=r"SGD: expected params to be a list of ParamRef or of "
                                        r"param-group dicts, got int"):
        O.SGD(3)
    with pytest.raises(ValueError, match=r"Adam: expected each parameter in one group only, got "
                                         r"'weight' twice"):
        O.Adam([{"params": m.parameters()}, {"params": m[0].parameters()}])
    with pytest.raises(ValueError, match=r"SGD: expected a 'params' key in every param group, "
                                         r"got keys \['lr'\]"):
        O.SGD([{"lr": 0.1}])
    with pytest.raises(TypeError, match=r"SGD: expected every param group to be a dict, got ParamRef"):
        O.SGD([{"params": m[0].parameters()}, m[1].parameters()[0]])


HYPER_ERRORS = [
    (O.SGD, dict(lr=-0.1), ValueError, r"SGD: expected lr >= 0, got -0.1"),
    (O.SGD, dict(momentum=-0.5), ValueError, r"SGD: expected momentum >= 0, got -0.5"),
    (O.SGD, dict(weight_decay=-1.0), ValueError, r"SGD: expected weight_decay >= 0, got -1.0"),
    (O.SGD, dict(nesterov=True), ValueError,
     r"SGD: expected momentum > 0 and dampening == 0 for nesterov=True, got momentum=0.0, "
     r"dampening=0.0"),
    (O.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError,
     r"expected momentum > 0 and dampening == 0 for nesterov=True, got momentum=0.9, dampening=0.1"),
    (O.SGD, dict(lr="0.1"), TypeError, r"SGD: expected lr to be a float, got str \('0.1'\)"),
    (O.SGD, dict(dampening=None), TypeError, r"SGD: expected dampening to be a float, got NoneType"),
    (O.Adam, dict(lr=-1e-3), ValueError, r"Adam: expected lr >= 0, got -0.001"),
    (O.Adam, dict(eps=-1e-8), ValueError, r"Adam: expected eps >= 0, got -1e-08"),
    (O.Adam, dict(betas=(1.0, 0.999)), ValueError, r"Adam: expected betas\[0\] in \[0, 1\), got 1.0"),
    (O.AdamW, dict(betas=(0.9, -0.1)), ValueError, r"AdamW: expected betas\[1\] in \[0, 1\), got -0.1"),
    (O.AdamW, dict(betas=0.9), TypeError, r"AdamW: expected betas to be a pair of floats, got 0.9"),
    (O.AdamW, dict(weight_decay=-0.01), ValueError, r"AdamW: expected weight_decay >= 0, got -0.01"),
    (O.RMSprop, dict(alpha=-0.9), ValueError, r"RMSprop: expected alpha >= 0, got -0.9"),
    (O.RMSprop, dict(momentum=-0.9), ValueError, r"RMSprop: expected momentum >= 0, got -0.9"),
    (O.RMSprop, dict(eps=-1.0), ValueError, r"RMSprop: expected eps >= 0, got -1.0"),
    (O.Adagrad, dict(lr_decay=-0.1), ValueError, r"Adagrad: expected lr_decay >= 0, got -0.1"),
    (O.Adagrad, dict(initial_accumulator_value=-1.0), ValueError,
     r"Adagrad: expected initial_accumulator_value >= 0, got -1.0"),
    (O.Adagrad, dict(eps=-1e-10), ValueError, r"Adagrad: expected eps >= 0, got -1e-10"),
]


@pytest.mark.parametrize("cls,kw,exc,match", HYPER_ERRORS)
def test_hyperparameter_errors(cls, kw, exc, match):
    with pytest.raises(exc, match=match):
        cls(make_model().parameters(), **kw)


def test_group_hyperparameters_are_validated_too():
    m = make_model()
    with pytest.raises(ValueError, match=r"SGD: expected lr >= 0, got -1.0"):
        O.SGD([{"params": m.parameters(), "lr": -1.0}])


@pytest.mark.gpu
@pytest.mark.parametrize("name,kw", [CONFIGS[4], CONFIGS[9], CONFIGS[11], CONFIGS[18]])
def test_cuda_state_lives_on_the_device_and_matches_cpu(name, kw):
    from normlab import backend

    m_cpu, m_gpu = make_model(), make_model().to("cuda")
    quad = quadratic(m_cpu)
    o_cpu = getattr(O, name)(m_cpu.parameters(), **kw)
    o_gpu = getattr(O, name)(m_gpu.parameters(), **kw)
    for _ in range(5):
        set_grads(m_cpu, quad)
        o_cpu.step()
        for ref, (A, b) in zip(m_gpu.parameters(), quad):
            g = A @ backend.to_numpy(ref.value).ravel() + b
            ref.module.grads[ref.key] = backend.to_device(g.reshape(ref.value.shape), "cuda")
        o_gpu.step()
    for s in o_gpu.state.values():
        for v in s.values():
            if hasattr(v, "shape"):
                assert backend.device_of(v) == "cuda"
    for (n, p, _), (_, q, _) in zip(m_cpu.named_parameters(), m_gpu.named_parameters()):
        np.testing.assert_allclose(backend.to_numpy(q), p, rtol=1e-10, err_msg=n)
