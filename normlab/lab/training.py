"""The one training routine the experiments share: a Trainer run that records curves.

Experiments never write their own loops: they build a model and call ``train_run``, which
uses ``normlab.train.Trainer`` and returns plain lists (JSON-ready) of per-step losses and
periodic evaluations. A divergence (non-finite loss) ends the run early and is reported
in the result rather than raised, because "this setting diverges" is itself a finding.
"""

from __future__ import annotations

import numpy as np

from normlab import optim
from normlab.data import DataLoader
from normlab.errors import NormlabValueError
from normlab.train import Callback, DivergenceError, Trainer

__all__ = ["make_optimizer", "subset", "train_run"]


def make_optimizer(name: str, model, lr: float, momentum: float = 0.9):
    """``sgd`` (plain), ``momentum`` (SGD, momentum 0.9) or ``adam``."""
    if name == "sgd":
        return optim.SGD(model.parameters(), lr=lr)
    if name == "momentum":
        return optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    if name == "adam":
        return optim.Adam(model.parameters(), lr=lr)
    raise NormlabValueError(f"normlab.lab: expected optimizer 'sgd', 'momentum' or 'adam', got {name!r}.")


def subset(data, n_train: int | None, n_val: int | None, rng: np.random.Generator):
    """``(X_train, y_train, X_val, y_val)`` with at most ``n_train``/``n_val`` random samples."""
    def pick(X, y, n):
        if n is None or n >= len(X):
            return X, y
        idx = rng.choice(len(X), size=n, replace=False)
        return X[idx], y[idx]

    return (*pick(data.X_train, data.y_train, n_train), *pick(data.X_val, data.y_val, n_val))


class _StepRecorder(Callback):
    """Collects the training loss of every step (and optional per-step probes)."""

    def __init__(self, probe=None):
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.probe = probe
        self.probes: list = []

    def on_step_end(self, trainer, logs):
        self.steps.append(int(logs["step"]))
        self.losses.append(float(logs["train_loss"]))
        if self.probe is not None:
            self.probes.append(self.probe(trainer.model, int(logs["step"])))


def train_run(model, train, val, *, lr: float, batch_size: int, rng: np.random.Generator,
              epochs: int | None = None, steps: int | None = None, optimizer: str = "sgd",
              eval_every: int | None = None, probe=None, loader=None,
              callbacks=()) -> dict:
    """Train ``model`` on ``train = (X, y)``, evaluating on ``val = (X, y)``.

    Parameters
    ----------
    eval_every : int, optional
        Evaluate every this many steps (default: once per epoch).
    probe : callable(model, step) -> JSON-able, optional
        Called after every step (e.g. to record one unit's input percentiles).
    loader : iterable of (xb, yb), optional
        Training batches used instead of a shuffled ``DataLoader`` over ``train`` (e.g. a
        fixed list of non-i.i.d. batches, cycled); ``train`` still gives the train accuracy.
    callbacks : sequence of normlab.train.Callback, optional
        Extra Trainer callbacks (e.g. ``renorm_warmup.RenormWarmup``), run before the
        recorder and the evaluator of every step.

    Returns
    -------
    dict with ``step``/``train_loss`` (every step), ``eval_step``/``val_loss``/``val_acc``/
    ``train_acc`` (every evaluation), ``diverged`` and ``diverged_step``, and ``probes``.
    """
    opt = make_optimizer(optimizer, model, lr)
    # drop_last: a last batch of one sample cannot be batch-normalised (PyTorch raises too)
    if loader is None:
        loader = DataLoader(*train, batch_size=batch_size, shuffle=True, drop_last=True, rng=rng)
    val_loader = DataLoader(*val, batch_size=512, shuffle=False)
    train_eval = DataLoader(*train, batch_size=512, shuffle=False)
    rec = _StepRecorder(probe)
    evals = {"eval_step": [], "val_loss": [], "val_acc": [], "train_acc": []}

    class _Evaluator(Callback):
        def _evaluate(self, trainer, step):
            v = trainer.evaluate(val_loader)
            t = trainer.evaluate(train_eval)
            evals["eval_step"].append(int(step))
            evals["val_loss"].append(float(v["loss"]))
            evals["val_acc"].append(float(v["accuracy"]))
            evals["train_acc"].append(float(t["accuracy"]))

        def on_step_end(self, trainer, logs):
            if eval_every and logs["step"] % eval_every == 0:
                self._evaluate(trainer, logs["step"])

        def on_epoch_end(self, trainer, logs):
            if not eval_every:
                self._evaluate(trainer, logs["step"])

    trainer = Trainer(model, opt, callbacks=[*callbacks, rec, _Evaluator()], progress=False)
    diverged_step = None
    try:
        trainer.fit(loader, epochs=epochs, steps=steps)
    except DivergenceError as e:
        diverged_step = int(getattr(e, "step", len(rec.steps) + 1))
    return {"step": rec.steps, "train_loss": rec.losses, **evals, "probes": rec.probes,
            "diverged": diverged_step is not None, "diverged_step": diverged_step}
