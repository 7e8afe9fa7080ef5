"""``normlab train``: train one registered model on one data set and report.

Writes a run folder ``<out>/train/<model>-<data>-<timestamp>/`` with ``config.json``,
``env.json``, ``checkpoint/`` (crash-safe, resumable with ``--resume``, and its
``history.jsonl``) and ``summary.json`` (final train/val/test loss and accuracy).
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path

import numpy as np

from normlab import models
from normlab.data import DataLoader, load_dataset
from normlab.errors import MissingPathError
from normlab.lab._runfolder import RunLock, make_run_dir
from normlab.lab.runs import env_info, write_json
from normlab.lab.training import make_optimizer
from normlab.train import BestModel, Trainer

__all__ = ["train_model", "OPTIMIZERS"]

OPTIMIZERS = ("sgd", "momentum", "adam")


def train_model(*, model: str, data: str, norm: str | None, epochs: int, batch_size: int,
                lr: float, optimizer: str, seed: int, out: str | Path, hidden: tuple = (100, 100),
                n_train: int | None = None, resume: str | None = None,
                progress: bool | None = None) -> tuple[Path, dict]:
    """Train and evaluate; returns the run folder and the summary dict.

    Raises
    ------
    ValueError
        For a model that cannot take the data set's input shape, or bad sizes.
    """
    rng = np.random.default_rng(seed)
    ds = load_dataset(data, seed=seed)
    kw = {"num_classes": ds.num_classes, "rng": rng, "input_shape": tuple(ds.input_shape)}
    if model != "mnist1d-linear":
        kw["norm"] = norm
    if model == "mlp":
        kw["hidden_dims"] = list(hidden)
    net = models.build(model, **kw)
    X, y = ds.X_train, ds.y_train
    net.eval()  # a dry run in eval mode (buffers untouched) catches shape errors before any
    net(X[:2])  # run folder is written
    net.train()
    if n_train is not None:
        idx = rng.choice(len(X), size=min(n_train, len(X)), replace=False)
        X, y = X[idx], y[idx]
    if resume is not None:
        run_dir = Path(resume).parent
        if not (Path(resume) / "latest").exists() and not Path(resume).is_dir():
            raise MissingPathError(f"train_model: expected a checkpoint folder to resume "
                                    f"from, got {resume!r}.")
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = make_run_dir(Path(out) / "train", f"{model}-{data}-{stamp}")
    with RunLock(run_dir):
        return _train_in(run_dir, net, ds, X, y, rng, model=model, data=data, norm=norm,
                         epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                         seed=seed, hidden=hidden, resume=resume, progress=progress)


def _train_in(run_dir: Path, net, ds, X, y, rng, *, model, data, norm, epochs, batch_size, lr,
              optimizer, seed, hidden, resume, progress) -> tuple[Path, dict]:
    """Train in ``run_dir`` (locked by the caller) and write its files."""
    config = {"model": model, "data": data, "norm": norm, "epochs": epochs,
              "batch_size": batch_size, "lr": lr, "optimizer": optimizer, "seed": seed,
              "hidden": list(hidden) if model == "mlp" else None, "n_train": len(X),
              "num_parameters": net.num_parameters()}
    if resume is None or not (run_dir / "config.json").exists():
        # a resumed run keeps the config it started with (its lr is the one in the checkpoint)
        write_json(run_dir / "config.json", config)
    write_json(run_dir / "env.json", env_info())
    train_loader = DataLoader(X, y, batch_size=batch_size, shuffle=True, drop_last=len(X) > batch_size,
                              rng=rng)
    val_loader = DataLoader(ds.X_val, ds.y_val, batch_size=512, shuffle=False)
    best = BestModel(monitor="val_acc", mode="max", restore=True)
    trainer = Trainer(net, make_optimizer(optimizer, net, lr), callbacks=[best],
                      checkpoint_dir=run_dir / "checkpoint", progress=progress)
    t0 = time.perf_counter()
    trainer.fit(train_loader, val_loader, epochs=epochs, resume_from=resume and Path(resume))
    wall = time.perf_counter() - t0
    summary = {"wall_time_s": round(wall, 2), "steps": trainer.step, "best_val_acc": best.best}
    for split, (Xs, ys) in (("train", (X, y)), ("val", (ds.X_val, ds.y_val)),
                            ("test", (ds.X_test, ds.y_test))):
        if len(Xs):
            m = trainer.evaluate(DataLoader(Xs, ys, batch_size=512, shuffle=False))
            summary[f"{split}_loss"], summary[f"{split}_acc"] = m["loss"], m.get("accuracy")
    write_json(run_dir / "summary.json", summary)
    return run_dir, summary
