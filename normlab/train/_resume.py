"""The Trainer's checkpoint half: what it saves, how a resumed run finds its place.

Kept apart from the loop in ``trainer.py``; :class:`normlab.train.Trainer` mixes it in.
See the module docstring of ``trainer.py`` for the resume design (replay of the epoch's
first batches from the training loader's generator state at the start of that epoch).
"""

from __future__ import annotations

import json
import os

import numpy as np

from normlab.errors import NormlabValueError, StateError
from normlab.validation import check_mapping_keys
from normlab.train.checkpoint import _resolve, load_checkpoint, save_checkpoint
from normlab.train.history import History

__all__ = ["loader_rng", "ResumableTrainerMixin"]


def loader_rng(loader):
    """The loader's ``rng`` attribute if it is a ``np.random.Generator``, else ``None``."""
    rng = getattr(loader, "rng", None)
    return rng if isinstance(rng, np.random.Generator) else None


def _saved_world_size(path) -> int:
    """Processes that trained the checkpoint at ``path`` (1 for older checkpoints).

    Unreadable checkpoints count as 1; ``load_checkpoint`` then names the real problem.
    """
    try:
        with open(_resolve(path)) as f:
            state = json.load(f).get("trainer_state") or {}
    except (OSError, ValueError, AttributeError):
        return 1
    size = state.get("world_size", 1) if isinstance(state, dict) else 1
    return size if isinstance(size, int) and size > 0 else 1


_TRAINER_KEYS = ("callback_classes", "callbacks", "step", "epoch", "batch_in_epoch",
                 "epoch_start_rng", "epoch_sums", "elapsed")


class ResumableTrainerMixin:
    """``state_dict`` / ``save`` / ``load`` of the Trainer."""

    def state_dict(self) -> dict:
        """Counters, epoch position, callback states (arrays allowed): the trainer's part."""
        return {
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self._batch_in_epoch,
            "epoch_start_rng": self._epoch_start_rng, "epoch_sums": list(self._epoch_sums),
            "elapsed": self._elapsed, "history_len": len(self.history),
            "callback_classes": [type(cb).__name__ for cb in self.callbacks],
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "world_size": self.world_size,
        }

    def save(self, path=None) -> str:
        """Checkpoint everything needed to resume into ``path`` (default ``checkpoint_dir``).

        Raises
        ------
        ValueError
            If neither ``path`` nor ``checkpoint_dir`` is given.
        """
        path = self.checkpoint_dir if path is None else os.fspath(path)
        if path is None:
            raise NormlabValueError("Trainer.save: expected a path or a Trainer checkpoint_dir, got "
                             "neither.")
        rngs = {"trainer": self.rng}
        val_rng = loader_rng(self._loaders[1])
        if val_rng is not None and val_rng is not loader_rng(self._loaders[0]):
            rngs["val_loader"] = val_rng
        out = save_checkpoint(path, model=self.model, optimizer=self.optimizer,
                              scheduler=self.scheduler, trainer_state=self.state_dict(),
                              rngs=rngs)
        self._last_saved_step = self.step
        return out

    def load(self, path) -> dict:
        """Restore a checkpoint saved by :meth:`save`; loader states apply at the next fit.

        The history is read back from ``history.jsonl`` in the checkpoint folder, when
        there, cut at the checkpoint's step.

        Raises
        ------
        FileNotFoundError, ValueError
            See :func:`load_checkpoint`; ValueError also if the callbacks differ.
        """
        saved_size = _saved_world_size(path)
        if saved_size != self.world_size:  # checked before anything is loaded
            raise NormlabValueError(
                f"{type(self).__name__}.load: expected a checkpoint saved by {self.world_size} "
                f"process(es), got one saved by {saved_size}. Resume with the same number of "
                f"processes (--nproc {saved_size}).")
        meta = load_checkpoint(path, model=self.model, optimizer=self.optimizer,
                               scheduler=self.scheduler, rngs={"trainer": self.rng})
        ts = check_mapping_keys(meta["trainer_state"], _TRAINER_KEYS, "Trainer.load",
                                "the checkpoint's trainer_state")
        names = [type(cb).__name__ for cb in self.callbacks]
        if names != ts["callback_classes"]:
            raise NormlabValueError(f"Trainer.load: expected callbacks {ts['callback_classes']} (as "
                             f"saved), got {names}. Pass the same callbacks in the same order.")
        for cb, state in zip(self.callbacks, ts["callbacks"]):
            cb.load_state_dict(state)
        self.step, self.epoch = ts["step"], ts["epoch"]
        self._batch_in_epoch = ts["batch_in_epoch"]
        self._epoch_start_rng = ts["epoch_start_rng"]
        self._epoch_sums = list(ts["epoch_sums"])
        self._elapsed = ts["elapsed"]
        self._pending = {"train": ts["epoch_start_rng"], "val": meta["rngs"].get("val_loader")}
        jsonl = os.path.join(os.path.dirname(meta["path"]), "history.jsonl")
        records = History.from_jsonl(jsonl).records if os.path.isfile(jsonl) else []
        bad = [i for i, r in enumerate(records, 1)
               if isinstance(r.get("step"), bool) or not isinstance(r.get("step"), int)]
        if bad:
            raise StateError(f"Trainer.load: expected an int 'step' in every record of {jsonl!r}, "
                             f"got records without one at lines {bad[:5]}. The history is "
                             "corrupt.")
        self.history = History([r for r in records if r["step"] <= self.step])
        self._last_saved_step = self.step
        return meta

    def _apply_pending(self, train_loader, val_loader) -> None:
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        rng = loader_rng(train_loader)
        if pending["train"] is not None:
            if rng is None:
                raise NormlabValueError("Trainer.fit: expected a train loader with an rng Generator "
                                 "(the checkpoint saved one), got none. Resume with the same "
                                 "kind of loader.")
            rng.bit_generator.state = pending["train"]
        val_rng = loader_rng(val_loader)
        if pending["val"] is not None and val_rng is not None:
            val_rng.bit_generator.state = pending["val"]
