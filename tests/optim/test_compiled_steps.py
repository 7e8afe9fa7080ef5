"""The optimizers' compiled one-pass steps (``functional/compiled/numba_optim.py``: SGD,
Adam, AdamW, RMSprop, Adagrad): the reference's bits in every configuration, and the reference
path wherever the kernel would not give them."""

from __future__ import annotations

import numpy as np
import pytest

import normlab
import normlab.optim as O
from normlab import nn
from normlab.optim import adam as adam_module
from normlab.optim import rmsprop as rmsprop_module
from normlab.optim import sgd as sgd_module

CONFIGS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.01, momentum=0.9, weight_decay=5e-4)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.99))),  # 1 - beta1 >= 0.5: lerp's other branch
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.5)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True)),  # 1 - alpha >= 0.5
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, eps=1e-3, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2,
                     eps=1e-6, maximize=True)),
]


@pytest.fixture
def spy(monkeypatch):
    """Counts the steps that took a compiled kernel (``ran``) and those that did not."""
    counts = {"ran": 0, "reference": 0}
    for module in (sgd_module, adam_module, rmsprop_module):  # rmsprop: Adagrad's too
        real = module._kernel

        def counting(*args, _real=real, **kwargs):
            impl = _real(*args, **kwargs)
            counts["ran" if impl is not None else "reference"] += 1
            return impl

        monkeypatch.setattr(module, "_kernel", counting)
    return counts


def _steps(setting, dtype, hp, grad=lambda g: g, steps=4, name="SGD"):
    """Parameters after ``steps`` SGD steps on a Linear layer, gradients spanning six
    decades (float32 rounding then differs between orders of operations)."""
    with normlab.kernels(setting):
        layer = nn.Linear(37, 23, dtype=dtype, rng=0)
        opt = getattr(O, name)(layer.parameters(), **hp)
        rng = np.random.default_rng(1)
        for _ in range(steps):
            for k, v in layer.params.items():
                g = rng.standard_normal(v.shape) * 10.0 ** rng.integers(-3, 3, v.shape)
                layer.grads[k] = grad(g.astype(dtype))
            opt.step()
        return {k: v.copy() for k, v in layer.params.items()}, opt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, hp", CONFIGS,
                         ids=[f"{n}-" + ",".join(f"{k}={v}" for k, v in hp.items())
                              for n, hp in CONFIGS])
def test_compiled_step_gives_the_reference_bits(name, hp, dtype, spy):
    got, opt = _steps("compiled", dtype, hp, name=name)
    assert spy == {"ran": 8, "reference": 0}  # 2 parameters, 4 steps
    want, ref_opt = _steps("reference", dtype, hp, name=name)
    for k in got:
        assert got[k].dtype == dtype
        np.testing.assert_array_equal(got[k].view(np.uint8), want[k].view(np.uint8))
    for i, state in ref_opt.state.items():  # the moment estimates and buffers too
        assert opt.state[i].keys() == state.keys()
        for key, val in state.items():
            np.testing.assert_array_equal(opt.state[i][key], val)


@pytest.mark.parametrize("case", ["numpy-scalar-lr", "strided-grad", "grad-of-other-dtype"])
def test_the_reference_path_runs_where_the_kernel_would_change_the_bits(case, spy):
    # a NumPy float64 lr makes NumPy compute g * lr in float64 (a Python float would be
    # cast to float32 first); strided or float64 gradients are not the kernel's arrays
    hp = dict(lr=np.float64(0.05) if case == "numpy-scalar-lr" else 0.05, momentum=0.9,
              weight_decay=0.01)
    grad = {"numpy-scalar-lr": lambda g: g,
            "strided-grad": lambda g: np.repeat(g, 2, axis=-1)[..., ::2],
            "grad-of-other-dtype": lambda g: g.astype(np.float64)}[case]
    got, _ = _steps("compiled", np.float32, hp, grad)
    assert spy == {"ran": 0, "reference": 8}
    want, _ = _steps("reference", np.float32, hp, grad)
    for k in got:
        np.testing.assert_array_equal(got[k], want[k])


@pytest.mark.parametrize("name, hp", [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9)),
], ids=["SGD", "Adam", "RMSprop"])
def test_the_step_split_over_two_threads_gives_the_reference_bits(name, hp, spy, threads,
                                                                  monkeypatch):
    # from _parallel_min() elements each kernel runs on contiguous parts on normlab's pool
    # (lowered here so that the 37x23 weight is split; unused state goes in as None)
    from normlab.functional import _parallel

    threads(2)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 64)
    got, _ = _steps("compiled", np.float32, hp, name=name)
    assert spy == {"ran": 8, "reference": 0}
    want, _ = _steps("reference", np.float32, hp, name=name)
    for k in got:
        np.testing.assert_array_equal(got[k].view(np.uint8), want[k].view(np.uint8))
