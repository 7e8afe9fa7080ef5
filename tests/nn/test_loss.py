"""Loss modules: PyTorch parity through the module API, scalar dout, validation."""

import numpy as np
import pytest
import torch

from normlab import nn
from normlab.gradcheck import check_module


# difference step for scalar-output gradient checks (see LOSS_H in normlab/nn/cases/basics.py)
LOSS_H = 1e-5


def _labels(rng):
    return rng.integers(0, 5, size=6)


def _regression(rng):
    return rng.standard_normal((6, 5))


LOSSES = {
    "CrossEntropyLoss": (lambda: nn.CrossEntropyLoss(), lambda: torch.nn.CrossEntropyLoss(),
                         _labels),
    "CrossEntropyLoss(sum)": (lambda: nn.CrossEntropyLoss(reduction="sum"),
                              lambda: torch.nn.CrossEntropyLoss(reduction="sum"), _labels),
    "MultiMarginLoss": (lambda: nn.MultiMarginLoss(margin=0.8),
                        lambda: torch.nn.MultiMarginLoss(margin=0.8), _labels),
    "MultiMarginLoss(p=2)": (lambda: nn.MultiMarginLoss(2, 1.5),
                             lambda: torch.nn.MultiMarginLoss(2, 1.5), _labels),
    "MSELoss": (lambda: nn.MSELoss(), lambda: torch.nn.MSELoss(), _regression),
    "MSELoss(sum)": (lambda: nn.MSELoss(reduction="sum"),
                     lambda: torch.nn.MSELoss(reduction="sum"), _regression),
}


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dout", [1.0, 0.37, np.array(-2.5)])
def test_torch_parity(rng, name, dout):
    make, make_ref, make_target = LOSSES[name]
    crit = make()
    x = rng.standard_normal((6, 5)) * 1.5
    target = make_target(rng)
    loss = crit(x, target)
    dx = crit.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    ref = make_ref()(xt, torch.tensor(target))
    ref.backward(torch.tensor(float(dout), dtype=torch.float64))
    assert isinstance(loss, np.ndarray) and loss.shape == ()
    np.testing.assert_allclose(loss, ref.detach().numpy(), rtol=1e-7, atol=0)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=0)


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck_after_linear(rng, name):
    make, _, make_target = LOSSES[name]
    x = rng.standard_normal((6, 5))
    pre = nn.Linear(5, 5, bias=False, rng=rng)  # see cases/basics.py: p=1 bias grads can be 0
    report = check_module(make(), x, rng, target=make_target(rng), pre=pre, h=LOSS_H)
    assert report.passed, report.errors


@pytest.mark.parametrize("dout", [1.0, np.float64(2.0), np.array(2.0), np.array(2.0, np.float32)])
def test_float32_gradient_stays_float32_for_any_scalar_dout(rng, dout):
    crit = nn.CrossEntropyLoss()
    x = rng.standard_normal((3, 4)).astype(np.float32)
    loss = crit(x, np.array([0, 1, 3]))
    assert loss.dtype == np.float32
    assert crit.backward(dout).dtype == np.float32


def test_backward_default_dout_is_one(rng):
    crit = nn.MSELoss()
    x = rng.standard_normal(4)
    crit(x, np.zeros(4))
    np.testing.assert_allclose(crit.backward(), x / 2.0, rtol=1e-15)


def test_backward_rejects_non_scalar_dout(rng):
    crit = nn.CrossEntropyLoss()
    crit(rng.standard_normal((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: expected a scalar dout \(float or "
                                         r"0-d array\), got shape \(2,\)\. The loss is a "
                                         r"scalar"):
        crit.backward(np.ones(2))


@pytest.mark.parametrize("cls", [nn.CrossEntropyLoss, nn.MultiMarginLoss, nn.MSELoss])
def test_reduction_none_is_rejected(cls):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: expected reduction 'mean' or 'sum', "
                                         r"got 'none'\. reduction='none' is not supported"):
        cls(reduction="none")


def test_multi_margin_validation():
    with pytest.raises(ValueError, match=r"MultiMarginLoss: expected p to be 1 or 2, got 3"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(TypeError, match=r"MultiMarginLoss: expected margin to be a float, got "
                                        r"str '1'"):
        nn.MultiMarginLoss(margin="1")
    with pytest.raises(ValueError, match=r"MultiMarginLoss: expected weight=None, got a weight "
                                         r"array"):
        nn.MultiMarginLoss(weight=np.ones(3))


def test_forward_errors_name_the_functional():
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: expected labels in \[0, 2\]"):
        nn.CrossEntropyLoss()(np.zeros((1, 3)), np.array([5]))


def test_repr():
    assert repr(nn.MultiMarginLoss()) == "MultiMarginLoss(p=1, margin=1.0, reduction='mean')"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"
