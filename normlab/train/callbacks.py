"""Callbacks: hooks the Trainer calls during ``fit``; EarlyStopping and BestModel.

Hooks receive the trainer and a ``logs`` dict (the History record of the step, see
:data:`normlab.train.history.RECORD_KEYS`). Set ``trainer.stop_training = True`` to end
the run after the current step. Callbacks that keep state across a run implement
``state_dict()`` / ``load_state_dict()``: the Trainer saves it in its checkpoints, so a
resumed run continues with the same patience counter or best weights.
"""

from __future__ import annotations

import math

from normlab.errors import NormlabTypeError, NormlabValueError

__all__ = ["Callback", "EarlyStopping", "BestModel"]


class Callback:
    """Base class: every hook is a no-op."""

    def on_train_begin(self, trainer, logs: dict) -> None: ...

    def on_step_end(self, trainer, logs: dict) -> None: ...

    def on_epoch_end(self, trainer, logs: dict) -> None: ...

    def on_train_end(self, trainer, logs: dict) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


def _mode_for(monitor: str, mode: str, owner: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise NormlabValueError(f"{owner}: expected mode 'auto', 'min' or 'max', got {mode!r}.")
    if mode == "auto":
        return "max" if monitor.endswith("acc") or "accuracy" in monitor else "min"
    return mode


class _Monitor(Callback):
    """Tracks the best value of ``logs[monitor]`` at epoch ends."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        owner = type(self).__name__
        if not isinstance(monitor, str):
            raise NormlabTypeError(f"{owner}: expected monitor to be a record key such as "
                            f"'val_loss', got {type(monitor).__name__}.")
        if not (isinstance(min_delta, (int, float)) and min_delta >= 0):
            raise NormlabValueError(f"{owner}: expected min_delta >= 0, got {min_delta!r}.")
        self.monitor = monitor
        self.mode = _mode_for(monitor, mode, owner)
        self.min_delta = float(min_delta)
        self.best = None
        self.best_step = None

    def _value(self, logs: dict) -> float:
        v = logs.get(self.monitor)
        if v is None:
            raise NormlabValueError(
                f"{type(self).__name__}: expected {self.monitor!r} in the epoch-end logs, got "
                f"{v!r} (keys with values: {sorted(k for k, x in logs.items() if x is not None)}"
                "). Pass a val_loader to fit() or monitor a train metric such as "
                "'epoch_train_loss'.")
        return float(v)

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return math.isfinite(value)
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str, default "val_loss"
        Record key checked at each epoch end.
    patience : int, default 5
        Epochs without improvement (by more than ``min_delta``) before stopping.
    mode : {"auto", "min", "max"}
        ``auto``: ``max`` for accuracies, ``min`` otherwise.
    min_delta : float, default 0.0

    Raises
    ------
    ValueError
        For a negative patience or min_delta, an unknown mode, or (during fit) a monitored
        key that has no value at an epoch end.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, mode: str = "auto",
                 min_delta: float = 0.0):
        super().__init__(monitor, mode, min_delta)
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 0:
            raise NormlabValueError(f"EarlyStopping: expected patience to be an int >= 0, got "
                             f"{patience!r}.")
        self.patience = patience
        self.wait = 0
        self.stopped_step = None

    def on_train_begin(self, trainer, logs):
        self.stopped_step = None

    def on_epoch_end(self, trainer, logs):
        value = self._value(logs)
        if self._improved(value):
            self.best, self.best_step, self.wait = value, logs["step"], 0
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_step = logs["step"]
            trainer.stop_training = True

    def state_dict(self):
        return {"best": self.best, "best_step": self.best_step, "wait": self.wait}

    def load_state_dict(self, state):
        self.best, self.best_step, self.wait = state["best"], state["best_step"], state["wait"]


class BestModel(_Monitor):
    """Keep a copy of the model at its best ``monitor`` value; optionally restore it.

    The copy is the full ``model.state_dict()``: parameters **and buffers**, so a
    BatchNorm model gets back the running statistics that went with its best weights
    (restoring weights alone would pair them with later, mismatched statistics).

    Parameters
    ----------
    monitor : str, default "val_acc"
    mode : {"auto", "min", "max"}
    min_delta : float, default 0.0
    restore : bool, default True
        Load the best state into the model at the end of ``fit``.

    Attributes
    ----------
    best_state : dict or None
        Copies of the arrays of the best model.
    best, best_step : value and step of the best epoch end.
    """

    def __init__(self, monitor: str = "val_acc", mode: str = "auto", min_delta: float = 0.0,
                 restore: bool = True):
        super().__init__(monitor, mode, min_delta)
        self.restore = bool(restore)
        self.best_state = None

    def on_epoch_end(self, trainer, logs):
        value = self._value(logs)
        if self._improved(value):
            self.best, self.best_step = value, logs["step"]
            self.best_state = trainer.model.state_dict()

    def on_train_end(self, trainer, logs):
        if self.restore and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)

    def state_dict(self):
        return {"best": self.best, "best_step": self.best_step, "best_state": self.best_state}

    def load_state_dict(self, state):
        self.best, self.best_step = state["best"], state["best_step"]
        self.best_state = state["best_state"]
