"""Trainer: the training loop, validation, checkpoints and bit-identical resume.

One step: ``model.train()``; ``logits = model(xb)``; ``loss = loss_fn(logits, yb)``;
``model.backward(loss_fn.backward())``; optional global-norm clipping;
``optimizer.step()``; per-step scheduler. The whole step runs under silenced overflow
warnings and is followed by explicit finiteness checks of the loss, the gradients and
the parameters, which raise :class:`DivergenceError` (see ``numerics.py``).

Resume. A checkpoint holds the model (params, buffers, generators), optimizer,
scheduler, callbacks, the trainer's counters and generator, the validation loader's
generator and, for the training loader, the state its ``rng`` had when the epoch in
progress began plus the number of batches already used. A resumed run restores that
state, replays the epoch's first batches (drawing exactly the same random numbers as
the original run, whatever the loader draws and when) and continues bit for bit.
This needs only a loader whose randomness comes from its ``rng`` attribute (a
``np.random.Generator``), as ``normlab.data.DataLoader`` does, and generators that are
not shared between the loaders and the model.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from normlab._io import make_dirs
from normlab import backend
from normlab._random import as_generator
from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.nn.module import Module
from normlab.train.callbacks import Callback
from normlab.train._evaluate import EvaluationMixin
from normlab.train._resume import ResumableTrainerMixin, loader_rng
from normlab.train.history import History, append_jsonl
from normlab.optim.clip import clip_grad_norm
from normlab.train.numerics import (DivergenceError, check_finite_batch, first_nonfinite,
                                    quiet_overflow)
from normlab.train.progress import ProgressBar, progress_enabled

__all__ = ["Trainer"]

_END = object()
_METRICS = ("loss", "accuracy")


def _is_plateau(scheduler) -> bool:
    return any(c.__name__ == "ReduceLROnPlateau" for c in type(scheduler).__mro__)


def _positive_int(value, name: str, owner: str = "Trainer"):
    if value is not None and (not isinstance(value, (int, np.integer))
                              or isinstance(value, bool) or value <= 0):
        raise NormlabValueError(f"{owner}: expected {name} to be a positive int, got {value!r}.")
    return None if value is None else int(value)


class Trainer(EvaluationMixin, ResumableTrainerMixin):
    """Train a normlab model with an optimizer; validate, log, checkpoint, resume.

    Parameters
    ----------
    model : normlab.nn.Module
    optimizer : normlab.optim.Optimizer
        Anything with ``step()``; ``param_groups[0]["lr"]`` is logged as ``lr``.
    loss_fn : Module, default ``nn.CrossEntropyLoss()``
        ``loss = loss_fn(logits, y)`` (0-d array), ``dlogits = loss_fn.backward()``.
    scheduler : optional
        Stepped once per epoch (``scheduler_interval="epoch"``, PyTorch's convention for
        StepLR & co.) or after every optimizer step (``"step"``, for warmup/one-cycle).
        ``ReduceLROnPlateau`` always steps per epoch on the validation loss.
    callbacks : sequence of Callback
    progress : bool or None
        tqdm bar on stderr; ``None`` = only when stderr is a terminal.
    checkpoint_dir : str or os.PathLike, optional
        Checkpoint folder (see ``normlab.train.checkpoint``), also receives
        ``history.jsonl`` (one record appended per step).
    checkpoint_every : int, optional
        Save every that many steps; by default at each epoch end. Always at the end of fit.
    metrics : tuple, default ("loss", "accuracy")
        Drop "accuracy" for non-classification losses.
    rng : Generator or int, optional
        ``trainer.rng``, for callbacks (e.g. augmentation); saved in checkpoints.
    grad_clip : float, optional
        Max global gradient norm (PyTorch's ``clip_grad_norm_`` rule).
    scheduler_interval : {"epoch", "step"}

    Raises
    ------
    TypeError, ValueError
        For arguments of the wrong type or value.
    """

    def __init__(self, model, optimizer, loss_fn=None, scheduler=None, callbacks=(),
                 progress=None, checkpoint_dir=None, checkpoint_every=None,
                 metrics=("loss", "accuracy"), rng=None, grad_clip=None,
                 scheduler_interval: str = "epoch"):
        if not isinstance(model, Module):
            raise NormlabTypeError(f"Trainer: expected model to be a normlab.nn.Module, got "
                            f"{type(model).__name__}.")
        if not callable(getattr(optimizer, "step", None)):
            raise NormlabTypeError(f"Trainer: expected an optimizer with a step() method, got "
                            f"{type(optimizer).__name__}. Use e.g. normlab.optim.SGD.")
        if loss_fn is None:
            from normlab.nn import CrossEntropyLoss  # noqa: PLC0415 (built lazily)
            loss_fn = CrossEntropyLoss()
        if not (callable(loss_fn) and callable(getattr(loss_fn, "backward", None))):
            raise NormlabTypeError(f"Trainer: expected loss_fn to be a loss Module with backward(), "
                            f"got {type(loss_fn).__name__}. Use e.g. nn.CrossEntropyLoss().")
        callbacks = tuple(callbacks)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise NormlabTypeError(f"Trainer: expected callbacks to be Callback instances, got "
                                f"{type(cb).__name__}. Subclass normlab.train.Callback.")
        metrics = tuple(metrics)
        if "loss" not in metrics or any(m not in _METRICS for m in metrics):
            raise NormlabValueError(f"Trainer: expected metrics among {_METRICS} including 'loss', "
                             f"got {metrics!r}.")
        if scheduler_interval not in ("epoch", "step"):
            raise NormlabValueError(f"Trainer: expected scheduler_interval 'epoch' or 'step', got "
                             f"{scheduler_interval!r}.")
        if scheduler is not None and _is_plateau(scheduler) and scheduler_interval == "step":
            raise NormlabValueError("Trainer: expected scheduler_interval='epoch' with "
                             "ReduceLROnPlateau, got 'step'. It steps on the validation loss.")
        if grad_clip is not None and not (isinstance(grad_clip, (int, float))
                                          and not isinstance(grad_clip, bool) and grad_clip > 0):
            raise NormlabValueError(f"Trainer: expected grad_clip to be a positive float or None, got "
                             f"{grad_clip!r}.")
        self.checkpoint_every = _positive_int(checkpoint_every, "checkpoint_every")
        if checkpoint_every is not None and checkpoint_dir is None:
            raise NormlabValueError("Trainer: expected a checkpoint_dir with checkpoint_every, got "
                             "checkpoint_dir=None. Pass checkpoint_dir='runs/x'.")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.callbacks = callbacks
        self.progress = progress_enabled(progress)
        self.checkpoint_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)
        self.metrics = metrics
        self.rng = as_generator(rng)
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.scheduler_interval = scheduler_interval
        self.history = History()
        self.step = 0                # completed optimizer steps
        self.epoch = 0               # completed epochs
        self.stop_training = False
        self._batch_in_epoch = 0     # batches of the epoch in progress already used
        self._epoch_start_rng = None  # train loader rng state when that epoch began
        self._epoch_sums = [0.0, 0.0, 0]  # loss * n, correct, n over the epoch so far
        self._elapsed = 0.0
        self._pending = None         # loader states from load(), applied by fit()
        self._loaders = (None, None)
        self._last_saved_step = None

    # ------------------------------------------------------------------ helpers
    def current_lr(self):
        """Learning rate of the first param group (``None`` if the optimizer has none)."""
        groups = getattr(self.optimizer, "param_groups", None)
        if groups:
            return float(groups[0]["lr"])
        lr = getattr(self.optimizer, "lr", None)
        return None if lr is None else float(lr)

    def _diverged(self, what: str, got: str, where: str = "at") -> DivergenceError:
        """The error for the step in progress (``at``) or the last one done (``after``)."""
        done = where == "after"
        step = self.step if done else self.step + 1
        epoch = max(self.epoch, 1) if done and self._batch_in_epoch == 0 else self.epoch + 1
        lr = self.current_lr()
        return DivergenceError(
            f"Trainer: expected {what}, got {got} {where} step {step} (epoch {epoch}, "
            f"lr={lr}). Lower the learning rate, clip gradients (grad_clip=) or add "
            "normalization.", step=step, epoch=epoch, lr=lr, history=self.history)

    # ------------------------------------------------------------------ one step
    def _on_model_device(self, batch):
        """``(xb, yb)`` moved to the model's device (NumPy batches for a CuPy model)."""
        xb, yb = batch
        device = self.model.device
        if backend.device_of(xb) != device:
            xb, yb = backend.to_device(xb, device), backend.to_device(yb, device)
        return xb, yb

    def _train_step(self, batch) -> dict:
        xb, yb = self._on_model_device(batch)
        lr = self.current_lr()
        self.model.train()
        with quiet_overflow():
            try:
                loss, correct, n = self._forward_backward(xb, yb)
                self._update()
            except DivergenceError:  # bad data is not divergence: say which it is
                check_finite_batch("Trainer", xb, f"of step {self.step + 1}")
                raise
        return self._finish_step(loss, correct, n, lr)

    def _forward_backward(self, xb, yb):
        """Forward, loss and backward of one batch: ``(loss, correct or None, n)``."""
        logits = self.model(xb)
        loss = float(backend.to_numpy(self.loss_fn(logits, yb)))
        if not math.isfinite(loss):
            raise self._diverged("a finite loss", f"{loss}")
        # nothing uses the input gradient: let the first layer skip it
        keep = self.model.requires_dx
        self.model.set_requires_dx(False)
        try:
            self.model.backward(self.loss_fn.backward())
        finally:
            self.model.set_requires_dx(keep)
        correct = self._correct(logits, yb) if "accuracy" in self.metrics else None
        return loss, correct, int(len(yb))

    def _update(self) -> None:
        """Check the gradients, clip, step the optimizer, check the parameters."""
        model = self.model
        bad = first_nonfinite((n, g) for n, _, g in model.named_parameters())
        if bad is not None:
            raise self._diverged("finite gradients", f"a non-finite gradient for {bad!r}")
        if self.grad_clip is not None:
            clip_grad_norm(model.parameters(), self.grad_clip)
        self.optimizer.step()
        bad = first_nonfinite((n, p) for n, p, _ in model.named_parameters())
        if bad is not None:
            raise self._diverged("finite parameters after the optimizer step",
                                 f"a non-finite {bad!r}")

    def _finish_step(self, loss: float, correct, n: int, lr) -> dict:
        """Epoch sums, per-step scheduler, counters; the step's history record."""
        acc = None
        if correct is not None:
            acc = correct / n
            self._epoch_sums[1] += correct
        self._epoch_sums[0] += loss * n
        self._epoch_sums[2] += n
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        self.step += 1
        self._batch_in_epoch += 1
        return {"step": self.step, "epoch": self.epoch + 1, "train_loss": loss,
                "train_acc": acc, "val_loss": None, "val_acc": None, "lr": lr,
                "time": None, "epoch_end": False, "epoch_train_loss": None,
                "epoch_train_acc": None}

    # ------------------------------------------------------------------ data-parallel seams
    @property
    def is_main(self) -> bool:
        """True where this process logs and writes files (always, in one process)."""
        return True

    @property
    def world_size(self) -> int:
        """Processes training together (1 here; see ``DataParallelTrainer``)."""
        return 1

    def _shard(self, loader, evaluation: bool = False):
        """This process's part of ``loader`` (all of it, in one process)."""
        return loader

    def _sum_over_ranks(self, loss_sum: float, correct: int, count: int):
        """Evaluation sums over every process (these, in one process)."""
        return loss_sum, correct, count

    # ------------------------------------------------------------------ fit
    def fit(self, train_loader, val_loader=None, *, epochs=None, steps=None, val_every=None,
            resume_from=None) -> History:
        """Train for ``epochs`` epochs or ``steps`` optimizer steps (totals of the run).

        Validation runs in eval mode at every epoch end and, if ``val_every`` is given,
        every ``val_every`` steps. After ``resume_from`` (a checkpoint folder) the counts
        include the steps done before: ``fit(steps=2k, resume_from=ckpt_at_k)`` runs k more.

        Returns
        -------
        History
            ``self.history``: one record per step of the whole run.

        Raises
        ------
        ValueError
            Unless exactly one of epochs/steps is a positive int; without a val_loader
            for ReduceLROnPlateau; for an empty train loader.
        DivergenceError
            On a non-finite loss, gradient or parameter (``err.history`` holds the
            steps done).
        """
        if (epochs is None) == (steps is None):
            raise NormlabValueError(f"Trainer.fit: expected exactly one of epochs= or steps=, got "
                             f"epochs={epochs!r} and steps={steps!r}.")
        epochs = _positive_int(epochs, "epochs", "Trainer.fit")
        steps = _positive_int(steps, "steps", "Trainer.fit")
        val_every = _positive_int(val_every, "val_every", "Trainer.fit")
        if self.scheduler is not None and _is_plateau(self.scheduler) and val_loader is None:
            raise NormlabValueError("Trainer.fit: expected a val_loader for ReduceLROnPlateau, got "
                             "None. It steps on the validation loss.")
        if resume_from is not None:
            self.load(resume_from)
        train_loader = self._shard(train_loader)
        val_loader = None if val_loader is None else self._shard(val_loader)
        self._apply_pending(train_loader, val_loader)
        self._loaders = (train_loader, val_loader)
        if self.checkpoint_dir is not None and self.is_main:
            make_dirs(self.checkpoint_dir, "Trainer")
            self.history.to_jsonl(os.path.join(self.checkpoint_dir, "history.jsonl"))

        def done() -> bool:
            return (self.stop_training or (steps is not None and self.step >= steps)
                    or (epochs is not None and self.epoch >= epochs))

        total = steps
        if epochs is not None and hasattr(train_loader, "__len__"):
            total = epochs * len(train_loader)
        bar = ProgressBar(self.progress, total, initial=self.step)
        t0 = time.perf_counter() - self._elapsed
        self.stop_training = False
        for cb in self.callbacks:
            cb.on_train_begin(self, {"step": self.step, "epoch": self.epoch})
        try:
            while not done():
                self._run_epoch(train_loader, val_loader, val_every, bar, t0, done)
        finally:
            bar.close()
        if self.checkpoint_dir is not None and self._last_saved_step != self.step:
            self.save()
        last = self.history.records[-1] if self.history.records else {}
        for cb in self.callbacks:
            cb.on_train_end(self, last)
        return self.history

    def _run_epoch(self, loader, val_loader, val_every, bar, t0, done) -> None:
        rng = loader_rng(loader)
        if self._batch_in_epoch == 0:
            self._epoch_start_rng = None if rng is None else rng.bit_generator.state
            self._epoch_sums = [0.0, 0.0, 0]
        it = iter(loader)
        for i in range(self._batch_in_epoch):  # replay the part used before the resume
            if next(it, _END) is _END:
                raise NormlabValueError(f"Trainer.fit: expected the train loader to yield the "
                                 f"{self._batch_in_epoch} batches used before the checkpoint, "
                                 f"got {i}. Resume with the same data and batch size.")
        batch = next(it, _END)
        if batch is _END:
            raise NormlabValueError("Trainer.fit: expected the train loader to yield at least one "
                             "batch, got an empty epoch. Check the data and drop_last.")
        while batch is not _END:
            upcoming = next(it, _END)  # look ahead to know whether this step ends the epoch
            record = self._train_step(batch)
            epoch_end = upcoming is _END
            if epoch_end:
                loss_sum, correct, n = self._epoch_sums
                record["epoch_end"] = True
                record["epoch_train_loss"] = loss_sum / n
                if "accuracy" in self.metrics:
                    record["epoch_train_acc"] = correct / n
                self.epoch += 1
                self._batch_in_epoch = 0
            if val_loader is not None and (epoch_end or (val_every and
                                                         self.step % val_every == 0)):
                val = self.evaluate(val_loader)
                record["val_loss"] = val["loss"]
                record["val_acc"] = val.get("accuracy")
            if epoch_end:  # after validation, in case it draws from the same generator
                self._epoch_start_rng = None if rng is None else rng.bit_generator.state
            if epoch_end and self.scheduler is not None and self.scheduler_interval == "epoch":
                if _is_plateau(self.scheduler):
                    self.scheduler.step(record["val_loss"])
                else:
                    self.scheduler.step()
            self._elapsed = time.perf_counter() - t0
            record["time"] = self._elapsed
            self._log(record, bar)
            if epoch_end:
                for cb in self.callbacks:
                    cb.on_epoch_end(self, record)
            if self.checkpoint_dir is not None and (
                    (self.checkpoint_every and self.step % self.checkpoint_every == 0)
                    or (self.checkpoint_every is None and epoch_end)):
                self.save()
            if done():
                return
            batch = upcoming

    def _log(self, record: dict, bar) -> None:
        self.history.append(record)
        if self.checkpoint_dir is not None and self.is_main:
            append_jsonl(os.path.join(self.checkpoint_dir, "history.jsonl"), record)
        bar.update(record)
        for cb in self.callbacks:
            cb.on_step_end(self, record)
