"""Divergence detection and gradient clipping for the Trainer.

A diverging run produces ``inf``/``nan`` through overflow, which NumPy reports with a
``RuntimeWarning`` per operation. The Trainer computes each step under
:func:`quiet_overflow` and then checks finiteness explicitly here, so the user gets
one :class:`DivergenceError` naming step, epoch and learning rate instead of a wall
of warnings (or, worse, a silent ``nan`` loss).
"""

from __future__ import annotations

import math

import numpy as np

from normlab import backend

__all__ = ["DivergenceError", "quiet_overflow", "first_nonfinite", "global_grad_norm",
           "clip_grads_"]


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss, gradient or parameter.

    Attributes
    ----------
    step, epoch : int
        1-based step and epoch at which it happened.
    lr : float or None
        Learning rate of the first param group at that time.
    history : normlab.train.History
        Records of the steps completed before the failure.
    """

    def __init__(self, message: str, *, step: int, epoch: int, lr, history=None):
        super().__init__(message)
        self.step = step
        self.epoch = epoch
        self.lr = lr
        self.history = history


def quiet_overflow():
    """``np.errstate`` that silences overflow/invalid/divide: callers check finiteness."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def first_nonfinite(named_arrays) -> str | None:
    """Name of the first array holding ``inf`` or ``nan``, or ``None`` if all are finite."""
    for name, a in named_arrays:
        if a is None:
            continue
        xp = backend.namespace(a)
        if not bool(xp.isfinite(a).all()):
            return name
    return None


def global_grad_norm(model) -> float:
    """``sqrt(sum_p ||grad_p||^2)`` over every parameter's gradient, accumulated in float64.

    float64 because squaring a large finite float32 gradient would overflow to ``inf``.
    """
    total = 0.0
    for _, _, g in model.named_parameters():
        if g is None:
            continue
        xp = backend.namespace(g)
        g64 = g.astype(xp.float64)
        total += float(xp.sum(g64 * g64))
    return math.sqrt(total)


def clip_grads_(model, max_norm: float) -> float:
    """Rescale all gradients in place so that their global norm is at most ``max_norm``.

    PyTorch's rule (``clip_grad_norm_``): ``coef = max_norm / (total_norm + 1e-6)``,
    applied only when ``coef < 1``. Returns the norm before clipping.
    """
    total = global_grad_norm(model)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for m in model.modules():
            for key, g in list(m.grads.items()):
                if g is not None:
                    m.grads[key] = g * g.dtype.type(coef)
    return total
