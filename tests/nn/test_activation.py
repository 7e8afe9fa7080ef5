"""Activation modules: PyTorch parity through the module API, constructor validation."""

import numpy as np
import pytest
import torch

from normlab import nn
from normlab.gradcheck import check_module

MODULES = {
    "ReLU": (lambda: nn.ReLU(), lambda: torch.nn.ReLU()),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.3), lambda: torch.nn.LeakyReLU(0.3)),
    "LeakyReLU(default)": (lambda: nn.LeakyReLU(), lambda: torch.nn.LeakyReLU()),
    "Tanh": (lambda: nn.Tanh(), lambda: torch.nn.Tanh()),
    "Sigmoid": (lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid()),
}


@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_torch_parity(rng, name, mode):
    make, make_ref = MODULES[name]
    m, ref = getattr(make(), mode)(), getattr(make_ref(), mode)()
    x = rng.standard_normal((2, 3, 4)) * 2.0
    dout = rng.standard_normal((2, 3, 4))
    out = m(x)
    dx = m.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    yt.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-7, atol=0)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=0)


@pytest.mark.parametrize("name", list(MODULES))
def test_gradcheck_after_linear(rng, name):
    pre = nn.Linear(4, 4, rng=rng)
    report = check_module(MODULES[name][0](), rng.standard_normal((3, 4)), rng, pre=pre)
    assert report.passed, report.errors


def test_no_params_and_empty_state_dict():
    for make, _ in MODULES.values():
        m = make()
        assert m.params == {} and m.state_dict() == {}


@pytest.mark.parametrize("cls,args", [(nn.ReLU, ()), (nn.LeakyReLU, (0.01,))])
def test_inplace_true_is_rejected(cls, args):
    cls(*args, inplace=False)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: expected inplace=False, got "
                                         r"inplace=True\. normlab never mutates its inputs"):
        cls(*args, inplace=True)


def test_leaky_relu_slope_type():
    with pytest.raises(TypeError, match=r"LeakyReLU: expected negative_slope to be a float, "
                                        r"got str '0\.1'"):
        nn.LeakyReLU("0.1")
    with pytest.raises(TypeError, match=r"got bool True"):
        nn.LeakyReLU(True)
    assert nn.LeakyReLU(1).negative_slope == 1.0


def test_repr():
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Sigmoid()) == "Sigmoid()"
