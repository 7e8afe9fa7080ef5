"""Batch Renorm's warm-up (Ioffe 2017, §4): batch norm first, then the corrections open up.

The paper trains with ``r_max = 1, d_max = 0`` (plain batch norm) for the first 5,000
steps, then relaxes the bounds gradually so that ``d_max`` reaches 5 at 25,000 steps and
``r_max`` reaches 3 at 40,000 (the paper does not give the ramp's shape; here it is
linear). :class:`RenormWarmup` drives every ``BatchRenorm1d/2d`` of a model through such a
schedule during ``Trainer.fit``; :func:`renorm_bounds` is the schedule itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from normlab import nn
from normlab.errors import NormlabValueError
from normlab.train import Callback

__all__ = ["RenormSchedule", "RenormWarmup", "renorm_bounds"]


@dataclass(frozen=True)
class RenormSchedule:
    """Plain BN for ``warmup`` steps, then linear ramps to the final bounds.

    ``d_max`` rises from 0 to ``d_max`` between step ``warmup`` and ``d_full``; ``r_max``
    from 1 to ``r_max`` between ``warmup`` and ``r_full``. ``warmup = d_full = r_full = 0``
    means no warm-up (the final bounds from the first step).
    """

    warmup: int = 0
    d_full: int = 0
    r_full: int = 0
    r_max: float = 3.0
    d_max: float = 5.0

    def __post_init__(self):
        if not 0 <= self.warmup <= min(self.d_full, self.r_full):
            raise NormlabValueError(
                f"RenormSchedule: expected 0 <= warmup <= d_full and warmup <= r_full, got "
                f"warmup={self.warmup}, d_full={self.d_full}, r_full={self.r_full}.")


def renorm_bounds(schedule: RenormSchedule, step: int) -> tuple[float, float]:
    """``(r_max, d_max)`` for the training step ``step`` (0 is the first step)."""
    def ramp(full: int) -> float:
        if step >= full:
            return 1.0
        if step < schedule.warmup:
            return 0.0
        return (step - schedule.warmup) / (full - schedule.warmup)

    return (1.0 + (schedule.r_max - 1.0) * ramp(schedule.r_full),
            schedule.d_max * ramp(schedule.d_full))


class RenormWarmup(Callback):
    """Sets ``r_max``/``d_max`` of every Batch Renorm layer of ``model`` before each step.

    ``Trainer`` counts steps from 1 in ``on_step_end``; after step ``k`` the bounds for
    step ``k`` (0-based: the next one) are set, and ``on_train_begin`` sets those of the first step.
    """

    def __init__(self, model, schedule: RenormSchedule):
        self.layers = [m for m in model.modules()
                       if isinstance(m, (nn.BatchRenorm1d, nn.BatchRenorm2d))]
        self.schedule = schedule

    def _set(self, step: int) -> None:
        r_max, d_max = renorm_bounds(self.schedule, step)
        for m in self.layers:
            m.r_max, m.d_max = r_max, d_max

    def on_train_begin(self, trainer, logs):
        self._set(int(logs["step"]))  # 0, or where a resumed run stands

    def on_step_end(self, trainer, logs):
        self._set(int(logs["step"]))
