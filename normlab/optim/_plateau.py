"""ReduceLROnPlateau: cut the lr when a monitored metric stops improving."""

from __future__ import annotations

import math

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.optim._scheduler_base import LRScheduler, _check_int, _format_param
from normlab.optim.optimizer import Optimizer

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(LRScheduler):
    r"""Multiply the lr by ``factor`` after ``patience`` steps without improvement.

    ``step(metric)``: the metric improves if ``metric < best * (1 - threshold)`` (mode
    ``min``, ``rel``), ``< best - threshold`` (``abs``), or the mirrored tests for
    ``max``. After more than ``patience`` bad steps each group's lr becomes
    ``max(lr * factor, min_lr)`` (skipped if the change is ``<= eps``), then
    ``cooldown`` steps are ignored. Unlike the other schedules the constructor does not
    step. ``state_dict()["best"]`` starts at ``inf``/``-inf`` (Python's ``json`` writes
    it as ``Infinity``).

    Parameters
    ----------
    optimizer : Optimizer
    mode : {'min', 'max'}, default 'min'
    factor : float, default 0.1
        ``< 1``.
    patience : int, default 10
    threshold : float, default 1e-4
    threshold_mode : {'rel', 'abs'}, default 'rel'
    cooldown : int, default 0
    min_lr : float or list of float, default 0
    eps : float, default 1e-8

    Raises
    ------
    ValueError
        On ``factor >= 1``, an unknown mode or threshold mode, negative ``patience`` or
        ``cooldown``, or a ``min_lr`` list of the wrong length.
    TypeError
        If ``optimizer`` is not a normlab Optimizer, or ``step`` gets a non-number.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | list[float] = 0, eps: float = 1e-8):
        owner = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise NormlabTypeError(
                f"{owner}: expected a normlab Optimizer, got {type(optimizer).__name__}."
            )
        if not factor < 1.0:
            raise NormlabValueError(f"{owner}: expected factor < 1.0, got {factor!r}.")
        if mode not in ("min", "max"):
            raise NormlabValueError(f"{owner}: expected mode 'min' or 'max', got {mode!r}.")
        if threshold_mode not in ("rel", "abs"):
            raise NormlabValueError(
                f"{owner}: expected threshold_mode 'rel' or 'abs', got {threshold_mode!r}."
            )
        _check_int(owner, "patience", patience, 0)
        _check_int(owner, "cooldown", cooldown, 0)
        self.optimizer = optimizer
        self.factor = factor
        self.min_lrs = _format_param(owner, "min_lr", optimizer, min_lr)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics) -> None:  # type: ignore[override]
        """Record one value of the monitored metric and maybe cut the lr."""
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise NormlabTypeError(
                f"ReduceLROnPlateau.step: expected a number (the monitored metric), got "
                f"{type(metrics).__name__}."
            ) from None
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad steps during cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, lo in zip(self.optimizer.param_groups, self.min_lrs):
                old = float(group["lr"])
                new = max(old * self.factor, lo)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
