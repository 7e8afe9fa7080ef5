"""One contract suite over every registered module (normlab.nn.catalog.CASES)."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest

import normlab
from normlab.gradcheck import check_module
from normlab.nn import _owned
from normlab.nn.catalog import CASES

IDS = [c.name for c in CASES]


def _call(case, m, x, rng_target):
    if case.target is not None:
        return m(x, case.target(rng_target))
    return m(x)


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    return request.param


@pytest.fixture(autouse=True)
def kernels(kernel_setting):
    """Every contract check runs under ``normlab.kernels("compiled")`` and ``("reference")``."""
    return kernel_setting


def _build(case, seed=0):
    return case.make(np.random.default_rng(seed))


def test_output_shape(case):
    m = _build(case)
    out = _call(case, m, case.input(np.random.default_rng(1)), np.random.default_rng(2))
    assert tuple(np.shape(out)) == case.output_shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept(case, dtype):
    m = _build(case).to(dtype=dtype)
    x = case.input(np.random.default_rng(1), dtype)
    out = _call(case, m, x, np.random.default_rng(2))
    assert np.asarray(out).dtype == dtype
    dx = m.backward(np.ones(np.shape(out), dtype=dtype) if np.ndim(out) else 1.0)
    assert dx.dtype == dtype
    for name, p, g in m.named_parameters():
        assert p.dtype == dtype and g.dtype == dtype, name


def test_input_not_mutated(case):
    m = _build(case)
    x = case.input(np.random.default_rng(1))
    before = x.copy()
    out = _call(case, m, x, np.random.default_rng(2))
    m.backward(np.ones(np.shape(out), dtype=x.dtype) if np.ndim(out) else 1.0)
    np.testing.assert_array_equal(x, before)


def test_deterministic_under_a_seed(case):
    x = case.input(np.random.default_rng(1))
    a = _call(case, _build(case, 7), x, np.random.default_rng(2))
    b = _call(case, _build(case, 7), x, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)


def test_state_dict_round_trip(case):
    src = _build(case, 0)
    x = case.input(np.random.default_rng(1))
    _call(case, src, x, np.random.default_rng(2))  # one training step moves BN buffers
    dst = _build(case, 123)
    dst.load_state_dict(src.state_dict())
    for k, v in src.state_dict().items():
        np.testing.assert_array_equal(dst.state_dict()[k], v)
    src.eval(), dst.eval()
    np.testing.assert_array_equal(_call(case, src, x, np.random.default_rng(2)),
                                  _call(case, dst, x, np.random.default_rng(2)))


def test_backward_before_forward_raises(case):
    m = _build(case)
    with pytest.raises(RuntimeError, match="expected forward\\(\\) before backward\\(\\)"):
        m.backward(np.ones(case.output_shape, dtype=np.float32) if case.output_shape else 1.0)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_gradcheck(case, mode):
    rng = np.random.default_rng(3)
    m = _build(case)
    getattr(m, mode)()
    pre = case.pre(rng) if case.pre else None
    target = case.target(rng) if case.target else None
    report = check_module(copy.deepcopy(m), case.input(rng, np.float64), rng,
                          target=target, pre=pre, tol=case.tol, h=case.h)
    assert report.passed, report.errors


def test_compiled_and_reference_kernels_agree(case):
    """Same outputs and gradients (float64, to round-off) under both kernel settings."""
    results = []
    for setting in ("compiled", "reference"):
        with normlab.kernels(setting):
            m = _build(case).to(dtype=np.float64)
            x = case.input(np.random.default_rng(1), np.float64)
            out = _call(case, m, x, np.random.default_rng(2))
            dout = np.random.default_rng(4).standard_normal(np.shape(out)) if np.ndim(out) \
                else 1.0
            dx = m.backward(dout)
            results.append([out, dx] + [g for _, _, g in m.named_parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)



def _declares(name):
    """The cases whose module's class declares ``name`` (``nn._owned``), as pytest params."""
    rng = np.random.default_rng(0)
    chosen = [c for c in CASES if _owned._declared(c.make(rng), name)]
    return pytest.mark.parametrize("case", chosen, ids=[c.name for c in chosen])


def _run(case, mode, **kwargs):
    """A fresh module run forward in ``mode`` on the case's input, then ``backward(dout,
    **kwargs)``: ``(module, x, out, dout, dx)``."""
    m = getattr(_build(case), mode)()
    x = case.input(np.random.default_rng(1))
    out = _call(case, m, x, np.random.default_rng(2))
    dout = np.random.default_rng(4).standard_normal(np.shape(out)).astype(np.float32)
    return m, x, out, dout, m.backward(dout, **kwargs)


ARRAY_OUT = [c for c in CASES if c.output_shape != ()]  # losses take a Python float


@pytest.mark.parametrize("case", ARRAY_OUT, ids=[c.name for c in ARRAY_OUT])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_dout_not_mutated(case, mode):
    """Without ``overwrite_dout`` no backward writes into the gradient it is given."""
    m = getattr(_build(case), mode)()
    out = _call(case, m, case.input(np.random.default_rng(1)), np.random.default_rng(2))
    dout = np.random.default_rng(4).standard_normal(np.shape(out)).astype(np.float32)
    before = dout.copy()
    m.backward(dout)
    np.testing.assert_array_equal(dout, before)


@_declares("_dx_fresh")
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_fresh_dx_is_held_by_nothing_else(case, mode):
    """Where a module's class declares its dx fresh (``nn._owned``), containers let the
    next module write over it: so it must share no memory with dout, the input, the
    output, the parameters, gradients or buffers, and the module keeps no reference."""
    m, x, out, dout, dx = _run(case, mode)
    assert sys.getrefcount(dx) == 2  # dx here and getrefcount's argument
    held = [dout, x, out] + [a for _, p, g in m.named_parameters() for a in (p, g)]
    held += [b for sub in m.modules() for b in sub.buffers.values()]
    for a in held:
        assert not np.shares_memory(dx, a)


@_declares("_takes_dout")
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_overwrite_dout_gives_the_same_bits(case, mode):
    """A module that takes ``overwrite_dout`` returns what it returns without it."""
    m, _, _, _, want = _run(case, mode)
    m2, _, _, _, got = _run(case, mode, overwrite_dout=True)
    np.testing.assert_array_equal(got, want)
    for (_, _, g), (_, _, g2) in zip(m.named_parameters(), m2.named_parameters()):
        np.testing.assert_array_equal(g2, g)
    with pytest.raises(TypeError, match="overwrite_dout to be a bool"):
        _run(case, mode, overwrite_dout="yes")
