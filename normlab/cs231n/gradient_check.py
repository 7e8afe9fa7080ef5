"""The course's numerical gradient helpers (centred differences, step ``h``).

Unlike :mod:`normlab.gradcheck`, these perturb ``x`` IN PLACE and restore it after each
evaluation. The course's notebooks depend on that: they pass a parameter array such as
``model.params['W1']`` together with ``f = lambda _: model.loss(X, y)[0]``, a function that
ignores its argument and reads the perturbed array through the model. A function that
copies or casts its input therefore still sees the perturbation only through such a
closure; use :func:`normlab.gradcheck.numerical_gradient` for pure functions.
"""

from __future__ import annotations

from random import randrange

import numpy as np

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.gradcheck import rel_error as _rel_error
from normlab.validation import check_positive

__all__ = [
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "rel_error",
]


def rel_error(x, y):
    """Max relative error ``max |x - y| / max(1e-8, |x| + |y|)`` (the course's measure,
    which is ``normlab.gradcheck.rel_error``)."""
    return _rel_error(x, y)


def _check_writable(x, owner):
    if not isinstance(x, np.ndarray):
        raise NormlabTypeError(
            f"{owner}: expected x to be a NumPy array (it is perturbed in place), got "
            f"{type(x).__name__}. Convert it with np.asarray(x, dtype=np.float64)."
        )
    if not x.flags.writeable:
        raise NormlabValueError(
            f"{owner}: expected a writeable array (x is perturbed in place), got a "
            "read-only one. Pass x.copy()."
        )


def _plus_minus(f, x, ix, h, read):
    """``(read(f(x + h e_ix)), read(f(x - h e_ix)))``, perturbing ``x[ix]`` in place.

    ``read`` must take what it needs before the next perturbation (a float or a copy):
    ``f`` may return a view of ``x``. ``x[ix]`` is restored exactly afterwards.
    """
    old = x[ix]
    x[ix] = old + h
    plus = read(f(x))
    x[ix] = old - h
    minus = read(f(x))
    x[ix] = old
    return plus, minus


def _copy(value):
    return np.array(value, copy=True)


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """Numerical gradient of a scalar function ``f`` at ``x``.

    ``grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2 h)``, ``x`` perturbed in place and restored.

    Parameters
    ----------
    f : callable
        Takes one argument (usually ignored by the course's closures), returns a scalar.
    x : ndarray
        Float array, modified during the call and restored exactly at the end.
    verbose : bool
        Print every index and its gradient, as the course does.
    h : float

    Returns
    -------
    ndarray shaped like ``x``.

    Raises
    ------
    TypeError, ValueError
        If ``x`` is not a writeable NumPy array.
    """
    check_positive(h, "h", "eval_numerical_gradient", hint="h is the finite-difference step; 1e-5 suits float64.")
    _check_writable(x, "eval_numerical_gradient")
    grad = np.zeros_like(x)
    for ix in np.ndindex(*x.shape):
        f_plus, f_minus = _plus_minus(f, x, ix, h, float)
        grad[ix] = (f_plus - f_minus) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numerical ``d(sum(f(x) * df)) / dx`` for an array-valued ``f``; ``x`` perturbed in place.

    Returns
    -------
    ndarray shaped like ``x``.
    """
    check_positive(h, "h", "eval_numerical_gradient_array", hint="h is the finite-difference step; 1e-5 suits float64.")
    _check_writable(x, "eval_numerical_gradient_array")
    grad = np.zeros_like(x)
    for ix in np.ndindex(*x.shape):
        pos, neg = _plus_minus(f, x, ix, h, _copy)
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5):
    """Compare ``analytic_grad`` with centred differences at ``num_checks`` random entries.

    Entries are drawn with Python's ``random.randrange`` (the course's choice); each line
    printed is ``numerical: ... analytic: ..., relative error: ...``.

    Returns
    -------
    list of float
        The relative errors (the course returns nothing; the list is an addition).
    """
    check_positive(h, "h", "grad_check_sparse", hint="h is the finite-difference step; 1e-5 suits float64.")
    _check_writable(x, "grad_check_sparse")
    errors = []
    for _ in range(num_checks):
        ix = tuple(randrange(m) for m in x.shape)
        f_plus, f_minus = _plus_minus(f, x, ix, h, float)
        num = (f_plus - f_minus) / (2 * h)
        ana = float(analytic_grad[ix])
        # both zero: report 0 instead of the course's 0/0
        err = abs(num - ana) / max(abs(num) + abs(ana), 1e-300)
        errors.append(err)
        print(f"numerical: {num:f} analytic: {ana:f}, relative error: {err:e}")
    return errors
