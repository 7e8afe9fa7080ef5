"""OneCycleLR: the 1cycle policy (Smith & Topin, 2018) with PyTorch 2.13's numbers."""

from __future__ import annotations

import math

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.optim._scheduler_base import LRScheduler, _check_int, _format_param
from normlab.optim.optimizer import Optimizer

__all__ = ["OneCycleLR"]


def _anneal(strategy: str, start: float, end: float, pct: float) -> float:
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    r"""One learning-rate cycle: warm up to ``max_lr``, then anneal far below the start.

    ``initial_lr = max_lr / div_factor``, ``min_lr = initial_lr / final_div_factor``.
    Two phases (default): ``initial_lr -> max_lr`` over steps ``0 .. pct_start*T - 1``,
    then ``max_lr -> min_lr`` until step ``T - 1``; ``three_phase`` goes back to
    ``initial_lr`` symmetrically before the final anneal. Each phase interpolates with
    ``anneal_strategy`` (``cos``: ``end + (start - end) (1 + cos(pi pct)) / 2``, or
    ``linear``). With ``cycle_momentum`` the momentum (SGD/RMSprop ``momentum``,
    Adam/AdamW ``betas[0]``) moves inversely between ``max_momentum`` and
    ``base_momentum``.

    Parameters
    ----------
    optimizer : Optimizer
    max_lr : float or list of float
    total_steps : int, optional
        Or give ``epochs`` and ``steps_per_epoch``.
    pct_start : float, default 0.3
    anneal_strategy : {'cos', 'linear'}, default 'cos'
    cycle_momentum : bool, default True
    base_momentum, max_momentum : float or list, default 0.85, 0.95
    div_factor : float, default 25.0
    final_div_factor : float, default 1e4
    three_phase : bool, default False

    Raises
    ------
    ValueError
        On a bad ``total_steps`` / ``epochs`` / ``steps_per_epoch``, ``pct_start``
        outside [0, 1], an unknown ``anneal_strategy``, per-group lists of the wrong
        length, an optimizer without momentum or betas while ``cycle_momentum``, or
        when stepped more than ``total_steps`` times.
    """

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        owner = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise NormlabTypeError(
                f"{owner}: expected a normlab Optimizer, got {type(optimizer).__name__}."
            )
        if total_steps is not None:
            _check_int(owner, "total_steps", total_steps, 1)
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            _check_int(owner, "epochs", epochs, 1)
            _check_int(owner, "steps_per_epoch", steps_per_epoch, 1)
            self.total_steps = epochs * steps_per_epoch
        else:
            raise NormlabValueError(
                f"{owner}: expected total_steps, or epochs and steps_per_epoch, got "
                f"total_steps={total_steps!r}, epochs={epochs!r}, "
                f"steps_per_epoch={steps_per_epoch!r}."
            )
        if isinstance(pct_start, bool) or not isinstance(pct_start, float) \
                or not 0.0 <= pct_start <= 1.0:
            raise NormlabValueError(f"{owner}: expected pct_start a float in [0, 1], got {pct_start!r}.")
        if anneal_strategy not in ("cos", "linear"):
            raise NormlabValueError(
                f"{owner}: expected anneal_strategy 'cos' or 'linear', got {anneal_strategy!r}."
            )
        T = self.total_steps
        up_end = float(pct_start * T) - 1
        if three_phase:
            self._schedule_phases = [
                [up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [float(2 * pct_start * T) - 2, "max_lr", "initial_lr", "base_momentum",
                 "max_momentum"],
                [T - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"],
            ]
        else:
            self._schedule_phases = [
                [up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [T - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"],
            ]
        self.anneal_strategy = anneal_strategy
        max_lrs = _format_param(owner, "max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for lr, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise NormlabValueError(
                    f"{owner}: expected an optimizer with a 'momentum' or 'betas' "
                    f"hyperparameter for cycle_momentum=True, got {type(optimizer).__name__}. "
                    "Pass cycle_momentum=False."
                )
            self.use_beta1 = "betas" in optimizer.defaults
            maxs = _format_param(owner, "max_momentum", optimizer, max_momentum)
            bases = _format_param(owner, "base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for hi, lo, group in zip(maxs, bases, optimizer.param_groups):
                    self._set_momentum(group, hi)
                    group["max_momentum"] = hi
                    group["base_momentum"] = lo
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        if t > self.total_steps:
            raise NormlabValueError(
                f"OneCycleLR: expected at most total_steps={self.total_steps} steps, got "
                f"step {t}. Raise total_steps (or epochs) to cover the whole run."
            )
        lrs = []
        last = len(self._schedule_phases) - 1
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr0, lr1, m0, m1) in enumerate(self._schedule_phases):
                if t <= end_step or i == last:
                    pct = (t - start_step) / (end_step - start_step)
                    lrs.append(_anneal(self.anneal_strategy, group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        self._set_momentum(
                            group, _anneal(self.anneal_strategy, group[m0], group[m1], pct))
                    break
                start_step = end_step
        return lrs
