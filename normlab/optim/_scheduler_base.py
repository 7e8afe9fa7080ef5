"""LRScheduler base class (PyTorch 2.13 semantics: the constructor takes the first step)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from normlab.errors import NormlabTypeError, NormlabValueError, StateError
from normlab.optim.optimizer import Optimizer
from normlab.validation import check_real

__all__ = ["LRScheduler"]


def _format_param(owner: str, name: str, optimizer: Optimizer, value) -> list:
    """One value per param group: a list of the right length, or a scalar repeated."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise NormlabValueError(
                f"{owner}: expected {n} values for {name} (one per param group), got "
                f"{len(value)}."
            )
        return list(value)
    return [value] * n


def _check_gamma(owner: str, gamma) -> None:
    """A decay factor must be a finite real > 0 (0 or less can never be a meaningful lr factor)."""
    check_real(gamma, "gamma", owner, low=0.0, low_open=True,
               hint="The learning rate is multiplied by gamma; use 0 < gamma <= 1 to decay it.")


def _check_int(owner: str, name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise NormlabValueError(f"{owner}: expected {name} to be an int >= {minimum}, got {value!r}.")


class LRScheduler:
    """Base class of the epoch/step schedules.

    Like PyTorch, the constructor records ``initial_lr`` in every param group (if not
    there yet), stores ``base_lrs`` and takes the initial step (``last_epoch`` becomes 0
    and ``get_last_lr()`` holds the first learning rates). Call ``step()`` after
    ``optimizer.step()``.

    Parameters
    ----------
    optimizer : normlab.optim.Optimizer
    last_epoch : int, default -1
        Index of the last step taken; ``-1`` starts fresh. Resuming with ``>= 0`` needs
        ``initial_lr`` in every group (load the optimizer's state dict first).

    Raises
    ------
    TypeError
        If ``optimizer`` is not a normlab Optimizer.
    ValueError
        If ``last_epoch >= 0`` and a param group lacks ``initial_lr``.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        owner = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise NormlabTypeError(
                f"{owner}: expected a normlab Optimizer, got {type(optimizer).__name__}."
            )
        _check_int(owner, "last_epoch", last_epoch, -1)
        self._check(owner)
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise NormlabValueError(
                    f"{owner}: expected 'initial_lr' in param_groups[{i}] when resuming with "
                    f"last_epoch={last_epoch}, got keys "
                    f"{sorted(k for k in group if k != 'params')}. "
                    "Load the optimizer's state dict first, or use last_epoch=-1."
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self) -> None:
        """Advance one step and write the new learning rates into the param groups."""
        self._step_count += 1
        self.last_epoch += 1
        values = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """Learning rates of the param groups after the latest step (a copy)."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer, as plain (JSON-able) values."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def _check(self, owner: str) -> None:
        """Validate the schedule's own hyperparameters (by ``__init__`` and ``load_state_dict``)."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes saved by :meth:`state_dict`.

        Raises
        ------
        StateError
            If ``state_dict`` is not this schedule's: missing or unexpected keys.
        ValueError, TypeError
            If a restored hyperparameter is invalid (``step_size=-3``, ``gamma < 0``,
            a negative learning rate); the schedule is left unchanged.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise StateError(f"{owner}: expected a dict from state_dict(), got "
                             f"{type(state_dict).__name__}.")
        mine = self.state_dict()
        missing = sorted(set(mine) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(mine))
        if missing or unexpected:
            raise StateError(f"{owner}: expected keys {sorted(mine)}, got missing {missing} and "
                             f"unexpected {unexpected}. Was it saved by another schedule?")
        old = dict(self.__dict__)
        self.__dict__.update(copy.deepcopy(dict(state_dict)))
        try:
            _check_int(owner, "last_epoch", self.last_epoch, -1)
            for name in ("base_lrs", "_last_lr"):
                if name not in mine:
                    continue
                vals = getattr(self, name)
                if not isinstance(vals, list) or len(vals) != len(self.optimizer.param_groups):
                    raise StateError(f"{owner}: expected {name} to be a list of "
                                     f"{len(self.optimizer.param_groups)} learning rates, got "
                                     f"{vals!r}.")
                for v in vals:
                    check_real(v, name, owner, low=0.0)
            self._check(owner)
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(old)
            raise
