"""Numerical gradient checking: centred differences (fourth order) contracted with a random ``dout``.

Nothing here perturbs arrays in place behind a function's back: every evaluation gets
its own perturbed copy, so a function that copies (or casts) its input still works.
Stateful modules are checked on a fresh deep copy for every evaluation, so running
statistics, dropout generators and caches are identical across evaluations.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from normlab import backend
from normlab.validation import check_positive
from normlab._random import as_generator
from normlab.errors import NormlabValueError

__all__ = ["rel_error", "numerical_gradient", "GradcheckReport", "check_module"]


def rel_error(a, b) -> float:
    """Max relative error ``|a - b| / max(1e-8, |a| + |b|)`` (the CS231n measure)."""
    a = backend.to_numpy(a).astype(np.float64)
    b = backend.to_numpy(b).astype(np.float64)
    if a.shape != b.shape:
        raise NormlabValueError(f"rel_error: expected equal shapes, got {a.shape} and {b.shape}.")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def numerical_gradient(f: Callable, x, dout, h: float = 1e-5):
    """Numerical ``d(sum(f(x) * dout)) / dx`` by a fourth-order centred difference.

    ``g'(0) ≈ (8 (g(h) - g(-h)) - (g(2h) - g(-2h))) / (12 h)`` with ``g(t) = sum(f(x + t e_i) *
    dout)``. Its truncation error is O(h^4) instead of the O(h^2) of the two-point formula,
    so at ``h = 1e-5`` (about the cube root of float64 epsilon) what is left is roundoff,
    about ``eps * |g| / h``: strongly curved functions such as batch norm over a batch of 4
    no longer leave a truncation error of 1e-7 in the relative error.

    Parameters
    ----------
    f : callable
        Maps an array shaped like ``x`` to an output shaped like ``dout``.
    x : ndarray
        Point of evaluation; never modified (each evaluation gets its own copy).
    dout : ndarray or float
        Upstream gradient contracted with the output.
    h : float
        Step size (float64 inputs expected).

    Returns
    -------
    ndarray shaped like ``x``.
    """
    check_positive(h, "h", "numerical_gradient",
                   hint="h is the finite-difference step; 1e-5 suits float64.")
    x = backend.to_numpy(x)
    dout = backend.to_numpy(dout).astype(np.float64)
    grad = np.zeros(x.shape, dtype=np.float64)

    def f_at(idx, t):
        xt = x.copy()
        xt[idx] += t
        return backend.to_numpy(f(xt))

    for idx in np.ndindex(*x.shape):
        # difference the outputs before contracting with dout: less cancellation
        near = np.sum((f_at(idx, h) - f_at(idx, -h)) * dout)
        far = np.sum((f_at(idx, 2 * h) - f_at(idx, -2 * h)) * dout)
        grad[idx] = (8.0 * near - far) / (12.0 * h)
    return grad


@dataclass
class GradcheckReport:
    """Result of ``check_module``: max relative error per checked array."""

    module: str
    input_shape: tuple
    errors: dict[str, float] = field(default_factory=dict)
    tol: float = 1e-7

    @property
    def max_error(self) -> float:
        return max(self.errors.values()) if self.errors else 0.0

    @property
    def passed(self) -> bool:
        return bool(self.max_error < self.tol)


def _set_param(model, dotted: str, value) -> None:
    mname, _, key = dotted.rpartition(".")
    owner = dict(model.named_modules())[mname]
    owner.params[key] = value


def check_module(module, x, rng=None, *, target=None, pre=None, h: float = 1e-5,
                 tol: float = 1e-7) -> GradcheckReport:
    """Compare analytic and numerical gradients of ``module`` in float64.

    Parameters
    ----------
    module : normlab.nn.Module
        Checked in its current mode on a float64 deep copy; the original is untouched.
    x : ndarray
        Input (cast to float64).
    rng : np.random.Generator or int, optional
        Draws the random ``dout``.
    target : ndarray, optional
        For loss modules: ``module(x, target)`` gives a scalar.
    pre : Module, optional
        A layer run before ``module`` so that ``dx`` flows through a real chain;
        its parameters are checked too (names prefixed ``pre.``).
    h, tol : float
        Difference step and pass threshold for the report.

    Returns
    -------
    GradcheckReport with keys ``dx`` and each dotted parameter name.
    """
    from normlab.nn.container import Sequential  # noqa: PLC0415 (gradcheck sits below nn)

    class _PreThen(Sequential):
        """``module(pre(x), *target)``: Sequential.forward takes no target for losses."""

        def forward(self, x, *target):
            out = self[1](self[0](x), *target)
            self._cache = True
            return out

    rng = as_generator(rng)
    net = _PreThen(pre, module) if pre is not None else module
    if pre is not None:
        net.training = module.training
    snapshot = copy.deepcopy(net).to(dtype=np.float64)
    x64 = backend.to_numpy(x).astype(np.float64)

    def forward(m, xin):
        return m(xin, target) if target is not None else m(xin)

    work = copy.deepcopy(snapshot)
    out = forward(work, x64)
    dout = rng.standard_normal(np.shape(out))
    dx = work.backward(dout if np.ndim(out) else float(dout))
    analytic = {"dx": dx}
    for name, _, grad in work.named_parameters():
        analytic[name] = grad

    def eval_input(xin):
        return forward(copy.deepcopy(snapshot), xin)

    numeric = {"dx": numerical_gradient(eval_input, x64, dout, h)}
    for name, p, _ in snapshot.named_parameters():
        def eval_param(pv, name=name):
            m = copy.deepcopy(snapshot)
            _set_param(m, name, pv)
            return forward(m, x64)

        numeric[name] = numerical_gradient(eval_param, p, dout, h)

    rename = (lambda n: n) if pre is None else (
        lambda n: "pre." + n[2:] if n.startswith("0.") else n[2:] if n.startswith("1.") else n)
    report = GradcheckReport(type(module).__name__, tuple(np.shape(x)), tol=tol)
    for name, num in numeric.items():
        report.errors[rename(name)] = rel_error(analytic[name], num)
    return report
