"""The course's ``Solver``: minibatch training of a model with ``params`` and ``loss(X, y)``.

Behaviour follows the course: minibatches are sampled WITH replacement from the global
``np.random`` stream, accuracies are checked after the first iteration, at the end of every
epoch and after the last iteration, the learning rate is multiplied by ``lr_decay`` after
each epoch, and ``train()`` ends by swapping the best-validation parameters into the model.

One difference: with ``checkpoint_name``, checkpoints are written as
``{name}_epoch_{e}.npz`` (the parameters) plus ``{name}_epoch_{e}.json`` (the settings and
histories) instead of a pickle of the whole model; they load with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json

import numpy as np

from normlab import backend
from normlab._io import atomic_write_bytes
from normlab.cs231n import optim
from normlab.errors import NormlabValueError

__all__ = ["Solver"]

_DEFAULTS = {
    "update_rule": "sgd",
    "optim_config": None,
    "lr_decay": 1.0,
    "batch_size": 100,
    "num_epochs": 10,
    "num_train_samples": 1000,
    "num_val_samples": None,
    "checkpoint_name": None,
    "print_every": 10,
    "verbose": True,
}


class Solver:
    """Train ``model`` on ``data`` with an update rule from :mod:`normlab.cs231n.optim`.

    Parameters
    ----------
    model : object
        Has ``params`` (dict name -> array) and ``loss(X, y=None)`` returning scores, or
        ``(loss, grads)`` with grads keyed like params.
    data : dict
        ``X_train``, ``y_train``, ``X_val``, ``y_val``.
    **kwargs
        ``update_rule`` ('sgd'), ``optim_config`` ({}), ``lr_decay`` (1.0),
        ``batch_size`` (100), ``num_epochs`` (10), ``num_train_samples`` (1000),
        ``num_val_samples`` (None: all), ``checkpoint_name`` (None), ``print_every`` (10),
        ``verbose`` (True).

    Raises
    ------
    ValueError
        For an unknown keyword or update rule, or missing data keys.
    """

    def __init__(self, model, data, **kwargs):
        unknown = sorted(set(kwargs) - set(_DEFAULTS))
        if unknown:
            raise NormlabValueError(
                f"Solver: expected keyword arguments among {sorted(_DEFAULTS)}, got "
                f"unrecognized {', '.join(repr(k) for k in unknown)}."
            )
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise NormlabValueError(f"Solver: expected data with keys {missing}, got {sorted(data)}.")
        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        opts = {**_DEFAULTS, **kwargs}
        rule = opts["update_rule"]
        if rule not in optim.__all__:
            raise NormlabValueError(
                f"Solver: expected update_rule among {optim.__all__}, got {rule!r}."
            )
        self.update_rule = getattr(optim, rule)
        self.optim_config = dict(opts["optim_config"] or {})
        for name in ("lr_decay", "batch_size", "num_epochs", "num_train_samples",
                     "num_val_samples", "checkpoint_name", "print_every", "verbose"):
            setattr(self, name, opts[name])
        self._reset()

    def _reset(self):
        """Clear the bookkeeping; one optim config per parameter, copied from optim_config."""
        self.epoch = 0
        self.best_val_acc = 0
        self.best_params = {}
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}

    def _step(self):
        """One update on a minibatch drawn with replacement (the course's sampling)."""
        num_train = self.X_train.shape[0]
        batch_mask = np.random.choice(num_train, self.batch_size)
        loss, grads = self.model.loss(self.X_train[batch_mask], self.y_train[batch_mask])
        self.loss_history.append(loss)
        for p, w in self.model.params.items():
            next_w, next_config = self.update_rule(w, grads[p], self.optim_configs[p])
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config

    def _save_checkpoint(self):
        """Write ``{name}_epoch_{e}.npz`` (params) and ``.json`` (settings, histories)."""
        if self.checkpoint_name is None:
            return
        stem = f"{self.checkpoint_name}_epoch_{self.epoch}"
        arrays = {k: backend.to_numpy(v) for k, v in self.model.params.items()}
        meta = {
            "update_rule": self.update_rule.__name__,
            "lr_decay": self.lr_decay,
            "optim_config": {k: v for k, v in self.optim_config.items()
                             if isinstance(v, (int, float, str, bool))},
            "batch_size": self.batch_size,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": self.epoch,
            "loss_history": [float(x) for x in self.loss_history],
            "train_acc_history": [float(x) for x in self.train_acc_history],
            "val_acc_history": [float(x) for x in self.val_acc_history],
        }
        # temporary file, fsync, rename: a crash never leaves a half-written checkpoint
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(stem + ".npz", buf.getvalue())
        atomic_write_bytes(stem + ".json", json.dumps(meta, indent=1).encode("utf-8"))
        if self.verbose:
            print(f'Saving checkpoint to "{stem}.npz" and "{stem}.json"')

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Fraction of ``X`` classified as ``y``, optionally on ``num_samples`` rows drawn
        with replacement, evaluated ``batch_size`` rows at a time."""
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = np.random.choice(N, num_samples)
            N, X, y = num_samples, X[mask], y[mask]
        preds = []
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start:start + batch_size])
            preds.append(backend.to_numpy(scores).argmax(axis=1))
        y_pred = np.hstack(preds) if preds else np.zeros(0, dtype=np.int64)
        return float(np.mean(y_pred == backend.to_numpy(y)))

    def train(self):
        """Run ``num_epochs`` epochs of ``max(N // batch_size, 1)`` iterations each."""
        num_train = self.X_train.shape[0]
        iters_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iters_per_epoch
        for t in range(num_iterations):
            self._step()
            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {num_iterations}) loss: {self.loss_history[-1]:f}")
            epoch_end = (t + 1) % iters_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                for config in self.optim_configs.values():
                    config["learning_rate"] *= self.lr_decay
            if t == 0 or t == num_iterations - 1 or epoch_end:
                train_acc = self.check_accuracy(self.X_train, self.y_train,
                                                num_samples=self.num_train_samples)
                val_acc = self.check_accuracy(self.X_val, self.y_val,
                                              num_samples=self.num_val_samples)
                self.train_acc_history.append(train_acc)
                self.val_acc_history.append(val_acc)
                self._save_checkpoint()
                if self.verbose:
                    print(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; "
                          f"val_acc: {val_acc:f}")
                if val_acc > self.best_val_acc:
                    self.best_val_acc = val_acc
                    self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        if self.best_params:  # the course would install {} if val accuracy stayed at 0
            self.model.params = self.best_params
