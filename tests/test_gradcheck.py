import numpy as np
import pytest

from normlab import nn
from normlab.gradcheck import check_module, numerical_gradient, rel_error


def test_numerical_gradient_of_known_function(rng):
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    g = numerical_gradient(lambda a: np.sin(a), x, dout)
    assert rel_error(g, np.cos(x) * dout) < 1e-8


def test_numerical_gradient_does_not_modify_input(rng):
    x = rng.standard_normal((2, 3))
    before = x.copy()
    numerical_gradient(lambda a: a ** 2, x, np.ones((2, 3)))
    np.testing.assert_array_equal(x, before)


def test_works_with_a_function_that_copies_its_input(rng):
    """No in-place perturbation trick: f sees only the array it is given."""
    x = rng.standard_normal(5)
    g = numerical_gradient(lambda a: np.array(a, copy=True) * 3.0, x, np.ones(5))
    np.testing.assert_allclose(g, 3.0, rtol=1e-8)


def test_rel_error_shape_mismatch():
    with pytest.raises(ValueError, match="expected equal shapes"):
        rel_error(np.zeros(2), np.zeros(3))


def test_check_module_detects_a_wrong_backward(rng):
    class Broken(nn.Linear):
        def backward(self, dout):
            return 2.0 * super().backward(dout)

    report = check_module(Broken(3, 2, rng=rng), rng.standard_normal((4, 3)), rng)
    assert not report.passed and report.errors["dx"] > 0.1


def test_check_module_leaves_module_untouched(rng):
    m = nn.Linear(3, 2, rng=rng)
    before = m.state_dict()
    check_module(m, rng.standard_normal((4, 3)), rng)
    for k, v in m.state_dict().items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, before[k])
