"""Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_)."""

from __future__ import annotations

import math

import numpy as np

from normlab import backend
from normlab.errors import NormlabRuntimeError, NormlabTypeError, NormlabValueError
from normlab.nn.module import Module, ParamRef
from normlab.validation import check_real

__all__ = ["clip_grad_norm"]


def _norm(xp, a, p: float):
    if p == math.inf:
        return xp.max(xp.abs(a))
    if p == 2.0:
        return xp.sqrt(xp.sum(a * a))
    return xp.sum(xp.abs(a) ** p) ** (1.0 / p)


def clip_grad_norm(params, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False) -> float:
    r"""Scale all gradients in place so that their global norm is at most ``max_norm``.

    ``total = || (||g_1||_p, ..., ||g_k||_p) ||_p`` over the parameters that have a
    gradient; every gradient is multiplied by ``min(1, max_norm / (total + 1e-6))``
    (PyTorch multiplies even when the factor is 1, which leaves the values unchanged).

    Parameters
    ----------
    params : Module, ParamRef, or iterable of ParamRef
    max_norm : float
    norm_type : float, default 2.0
        ``p`` of the norm, ``> 0`` or ``math.inf``.
    error_if_nonfinite : bool, default False
        PyTorch's default: a NaN/inf total norm then makes every gradient NaN/inf (the
        returned norm shows it). Pass True to raise instead.

    Returns
    -------
    float
        The total norm before clipping (0.0 if no parameter has a gradient), computed
        in the gradients' dtype.

    Raises
    ------
    TypeError
        If ``params`` holds something other than ParamRefs.
    ValueError
        If ``norm_type`` is not positive or ``max_norm`` is negative or not finite.
    RuntimeError
        If ``error_if_nonfinite`` and the total norm is NaN or infinite.
    """
    if isinstance(params, Module):
        params = params.parameters()
    elif isinstance(params, ParamRef):
        params = [params]
    params = list(params)
    for ref in params:
        if not isinstance(ref, ParamRef):
            raise NormlabTypeError(
                f"clip_grad_norm: expected ParamRefs (model.parameters()), got "
                f"{type(ref).__name__}."
            )
    max_norm = check_real(max_norm, "max_norm", "clip_grad_norm", low=0.0,
                          hint="Gradients are scaled to a norm of at most max_norm.")
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise NormlabValueError(
            f"clip_grad_norm: expected norm_type > 0 or math.inf, got {norm_type!r}."
        )
    grads = [ref.grad for ref in params if ref.grad is not None]
    if not grads:
        return 0.0
    xp = backend.namespace(*grads)
    norms = xp.stack([_norm(xp, g, norm_type) for g in grads])
    total = _norm(xp, norms, norm_type)
    total_f = float(total)
    if error_if_nonfinite and not math.isfinite(total_f):
        raise NormlabRuntimeError(
            f"clip_grad_norm: expected a finite total gradient norm, got {total_f} "
            f"(norm_type={norm_type}). Some gradients are NaN or inf; lower the learning "
            "rate or check the loss, or pass error_if_nonfinite=False."
        )
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    # A non-finite total gives coef 0 or NaN and inf * 0 = NaN, as in PyTorch; the
    # returned norm reports it, so NumPy's "invalid value" warning would only be noise.
    with np.errstate(invalid="ignore", over="ignore"):
        for g in grads:
            g *= coef.astype(g.dtype)
    return total_f
