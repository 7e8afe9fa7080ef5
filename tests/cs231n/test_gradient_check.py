import numpy as np
import pytest

from normlab.cs231n.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)


def test_scalar_gradient_through_a_closure_sees_in_place_perturbation():
    """The course's idiom: f ignores its argument and reads the array through a closure."""
    params = {"W": np.linspace(-1.0, 1.0, 6).reshape(2, 3)}
    f = lambda _: float(np.sum(params["W"] ** 3))  # noqa: E731
    before = params["W"].copy()
    grad = eval_numerical_gradient(f, params["W"], verbose=False)
    assert rel_error(grad, 3 * before**2) < 1e-8
    np.testing.assert_array_equal(params["W"], before)  # restored exactly


def test_array_gradient():
    x = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    df = np.linspace(0.5, 1.5, 12).reshape(3, 4)
    grad = eval_numerical_gradient_array(np.sin, x, df)
    assert rel_error(grad, np.cos(x) * df) < 1e-8


def test_verbose_prints_each_index(capsys):
    eval_numerical_gradient(lambda a: float(np.sum(a)), np.zeros(2), verbose=True)
    assert capsys.readouterr().out.splitlines()[0].startswith("(0,)")


def test_grad_check_sparse_reports_small_errors(capsys):
    x = np.linspace(-1.0, 1.0, 20).reshape(4, 5)
    errs = grad_check_sparse(lambda a: float(np.sum(a**2)), x, 2 * x, num_checks=5)
    assert len(errs) == 5 and max(errs) < 1e-7
    assert "relative error" in capsys.readouterr().out


def test_rejects_read_only_and_non_numpy():
    x = np.zeros(3)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="expected a writeable array"):
        eval_numerical_gradient(np.sum, x, verbose=False)
    with pytest.raises(TypeError, match="expected x to be a NumPy array"):
        eval_numerical_gradient_array(np.sin, [1.0, 2.0], np.ones(2))
    with pytest.raises(TypeError, match="expected x to be a NumPy array"):
        grad_check_sparse(np.sum, [1.0], np.ones(1))
