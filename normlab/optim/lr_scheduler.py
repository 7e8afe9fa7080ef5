"""Learning-rate schedules with PyTorch 2.13's sequences (``get_last_lr()`` after each step).

``StepLR``, ``MultiStepLR``, ``ExponentialLR`` and ``CosineAnnealingLR`` use PyTorch's
recursive (chainable) formulas, so the numbers agree to the last bit. ``OneCycleLR`` and
``ReduceLROnPlateau`` live in private files and are re-exported here.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable

from normlab.optim._onecycle import OneCycleLR
from normlab.optim._plateau import ReduceLROnPlateau
from normlab.optim._scheduler_base import LRScheduler, _check_gamma, _check_int, _format_param
from normlab.validation import check_real
from normlab.optim.optimizer import Optimizer

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR",
           "CosineAnnealingLR", "WarmupCosineLR", "OneCycleLR", "ReduceLROnPlateau"]


def _lrs(optimizer: Optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(step)``, one callable or one per param group.

    The callables are not part of ``state_dict()`` (rebuild the scheduler with them).

    Raises
    ------
    ValueError
        If a list of callables does not have one per param group.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list,
                 last_epoch: int = -1):
        if isinstance(lr_lambda, (list, tuple)):
            self.lr_lambdas = _format_param("LambdaLR", "lr_lambda", optimizer, lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self) -> dict[str, Any]:
        lambdas = self.__dict__.pop("lr_lambdas")
        try:
            return super().state_dict()
        finally:
            self.lr_lambdas = lambdas


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` steps: ``base * gamma**(t // step_size)``.

    Raises
    ------
    ValueError
        If ``step_size`` is not a positive int.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _check(self, owner: str) -> None:
        _check_int(owner, "step_size", self.step_size, 1)
        _check_gamma(owner, self.gamma)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _lrs(self.optimizer)
        return [lr * self.gamma for lr in _lrs(self.optimizer)]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each milestone: ``base * gamma**(#milestones <= t)``.

    Raises
    ------
    ValueError
        If a milestone is not a non-negative int.
    """

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1,
                 last_epoch: int = -1):
        milestones = list(milestones)
        for m in milestones:
            _check_int("MultiStepLR", "every milestone", m, 0)
        self.milestones = sorted(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _check(self, owner: str) -> None:
        for m in self.milestones:
            _check_int(owner, "every milestone", m, 0)
        _check_gamma(owner, self.gamma)

    def get_lr(self) -> list[float]:
        # A repeated milestone multiplies by gamma once per repetition, as in PyTorch.
        count = Counter(self.milestones)[self.last_epoch]
        if count == 0:
            return _lrs(self.optimizer)
        return [lr * self.gamma ** count for lr in _lrs(self.optimizer)]


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every step: ``base * gamma**t``."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _check(self, owner: str) -> None:
        _check_gamma(owner, self.gamma)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return _lrs(self.optimizer)
        return [lr * self.gamma for lr in _lrs(self.optimizer)]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing without restarts.

    Closed form ``eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2``, computed
    with PyTorch's recursive update (so it also keeps oscillating past ``T_max`` like
    PyTorch's and picks up external changes of the lr).

    Raises
    ------
    ValueError
        If ``T_max`` is not a positive int.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1):
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _check(self, owner: str) -> None:
        _check_int(owner, "T_max", self.T_max, 1)
        check_real(self.eta_min, "eta_min", owner, low=0.0)

    def get_lr(self) -> list[float]:
        t, T, lo = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return _lrs(self.optimizer)
        if self._step_count == 1 and t > 0:
            return [lo + (base - lo) * (1 + math.cos(t * math.pi / T)) / 2
                    for base in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [lr + (base - lo) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, _lrs(self.optimizer))]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - lo) + lo for lr in _lrs(self.optimizer)]


class WarmupCosineLR(LRScheduler):
    r"""Linear warmup, then cosine decay to ``min_lr``; constant ``min_lr`` after.

    With ``W = warmup_steps``, ``T = total_steps`` and ``t`` the step index (0 after the
    constructor)::

        t <  W:  lr = base * (t + 1) / W
        t >= W:  lr = min_lr + (base - min_lr) * (1 + cos(pi * min(1, (t - W) / max(1, T - W)))) / 2

    The warmup reaches ``base`` at ``t = W - 1`` (no step is wasted at lr 0); the cosine
    phase starts from ``base`` at ``t = W`` and reaches ``min_lr`` at ``t = T``.

    Parameters
    ----------
    optimizer : Optimizer
    warmup_steps : int
        ``>= 0``; 0 gives plain cosine annealing to ``min_lr`` over ``total_steps``.
    total_steps : int
        ``>= warmup_steps`` and ``>= 1``.
    min_lr : float or list of float, default 0.0
        Absolute floor, one per param group or shared.

    Raises
    ------
    ValueError
        On negative ``warmup_steps``, ``total_steps < max(1, warmup_steps)``, or a
        ``min_lr`` list of the wrong length.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int,
                 min_lr: float | list[float] = 0.0, last_epoch: int = -1):
        _check_int("WarmupCosineLR", "warmup_steps", warmup_steps, 0)
        _check_int("WarmupCosineLR", "total_steps", total_steps, max(1, warmup_steps))
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lrs = _format_param("WarmupCosineLR", "min_lr", optimizer, min_lr)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, W, T = self.last_epoch, self.warmup_steps, self.total_steps
        if t < W:
            return [base * (t + 1) / W for base in self.base_lrs]
        progress = min(1.0, (t - W) / max(1, T - W))
        cos = (1 + math.cos(math.pi * progress)) / 2
        return [lo + (base - lo) * cos for base, lo in zip(self.base_lrs, self.min_lrs)]
