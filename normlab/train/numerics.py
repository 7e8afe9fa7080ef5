"""Divergence detection for the Trainer.

A diverging run produces ``inf``/``nan`` through overflow, which NumPy reports with a
``RuntimeWarning`` per operation. The Trainer computes each step under
:func:`quiet_overflow` and then checks finiteness explicitly here, so the user gets
one :class:`DivergenceError` naming step, epoch and learning rate instead of a wall
of warnings (or, worse, a silent ``nan`` loss).
"""

from __future__ import annotations

import numpy as np

from normlab import backend
from normlab.errors import DataError, NormlabRuntimeError

__all__ = ["DivergenceError", "quiet_overflow", "first_nonfinite", "check_finite_batch"]


class DivergenceError(NormlabRuntimeError):
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


def check_finite_batch(owner: str, xb, where: str) -> None:
    """Raise DataError when the *input* batch holds NaN/inf: bad data is not divergence.

    Called only once a loss or gradient came out non-finite, so a healthy run pays nothing.
    """
    if xb is not None and first_nonfinite([("input", xb)]) is not None:
        raise DataError(
            f"{owner}: expected finite input data, got NaN or inf in the input batch {where}. "
            "The data set itself holds non-finite values (this is not divergence); clean or "
            "impute them before training."
        )
