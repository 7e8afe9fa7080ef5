"""Loss modules: ``loss = crit(input, target)`` (0-d array); ``crit.backward(dout=1.0)``."""

from __future__ import annotations

import numbers

import numpy as np

from normlab import backend
from normlab import functional as F
from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.functional.loss import check_reduction
from normlab.nn.module import Module

__all__ = ["CrossEntropyLoss", "MultiMarginLoss", "MSELoss"]


class _Loss(Module):
    """Shared state and backward of the losses: ``reduction`` and the saved input gradient."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(type(self).__name__, reduction)

    def backward(self, dout=1.0):
        """``d(dout * loss) / d input``; ``dout`` is a Python float or a 0-d array.

        Raises
        ------
        ValueError
            If ``dout`` is not a scalar.
        RuntimeError
            If called before ``forward``.
        """
        dinput = self._require_cache()
        if np.ndim(dout) != 0:
            raise NormlabValueError(
                f"{type(self).__name__}: expected a scalar dout (float or 0-d array), got "
                f"shape {tuple(np.shape(dout))}. The loss is a scalar."
            )
        if isinstance(dout, numbers.Real):
            return dinput * float(dout)  # a Python float keeps the gradient's dtype
        # a 0-d float64 array would upcast a float32 gradient (NEP 50): cast it first
        xp = backend.namespace(dinput)
        dout = xp.asarray(backend.to_device(dout, backend.device_of(dinput)), dtype=dinput.dtype)
        return dinput * dout

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy over class logits: ``mean_n(logsumexp(z_n) - z_n[y_n])``.

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"

    Shape
    -----
    input (N, C) floating, target (N,) integer in [0, C) -> output () of the input's dtype.

    Raises
    ------
    ValueError
        For an unsupported ``reduction`` (here) and bad shapes or labels (in ``forward``).
    TypeError
        For non-floating input or non-integer targets.
    """

    def forward(self, input, target):
        loss, self._cache = F.softmax_cross_entropy(input, target, reduction=self.reduction)
        return loss


class MultiMarginLoss(_Loss):
    """Multi-class hinge loss (``torch.nn.MultiMarginLoss``, no class weights).

    ``loss_n = sum_{i != y_n} max(0, margin - x[n, y_n] + x[n, i])^p / C``, mean over N.

    Parameters
    ----------
    p : {1, 2}, default 1
    margin : float, default 1.0
    weight : None
        Class weights are not supported; only ``None`` is accepted.
    reduction : {"mean", "sum"}, default "mean"

    Shape
    -----
    input (N, C) floating, target (N,) integer in [0, C) -> output ().

    Raises
    ------
    ValueError
        For ``p`` not 1 or 2, a non-None ``weight`` or an unsupported ``reduction``.
    TypeError
        For a non-numeric ``margin``.
    """

    def __init__(self, p: int = 1, margin: float = 1.0, weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        if isinstance(p, bool) or p not in (1, 2):
            raise NormlabValueError(f"MultiMarginLoss: expected p to be 1 or 2, got {p!r}.")
        if isinstance(margin, bool) or not isinstance(margin, numbers.Real):
            raise NormlabTypeError(f"MultiMarginLoss: expected margin to be a float, got "
                            f"{type(margin).__name__} {margin!r}.")
        if weight is not None:
            raise NormlabValueError("MultiMarginLoss: expected weight=None, got a weight array. "
                             "Per-class weights are not supported.")
        self.p = int(p)
        self.margin = float(margin)

    def forward(self, input, target):
        loss, self._cache = F.multi_margin_loss(input, target, self.margin, p=self.p,
                                                reduction=self.reduction)
        return loss

    def extra_repr(self) -> str:
        return f"p={self.p}, margin={self.margin}, reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error ``mean((input - target)^2)`` over every element.

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"

    Shape
    -----
    input (*) floating, target same shape (cast to the input's dtype) -> output ().

    Raises
    ------
    ValueError
        For an unsupported ``reduction`` or mismatched shapes.
    """

    def forward(self, input, target):
        loss, self._cache = F.mse_loss(input, target, reduction=self.reduction)
        return loss
