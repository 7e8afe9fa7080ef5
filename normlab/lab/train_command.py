"""``normlab train``: train one registered model on one data set and report.

Writes a run folder ``<out>/train/<model>-<data>-<timestamp>/`` with ``config.json``,
``env.json``, ``checkpoint/`` (crash-safe, resumable with ``--resume``, and its
``history.jsonl``) and ``summary.json`` (final train/val/test loss and accuracy).

With a communicator of several processes (``mpiexec -n N python -m normlab train`` or
``--nproc N``) every rank builds the same model and loaders from the same seed, batch
norm layers become ``SyncBatchNorm`` and a ``DataParallelTrainer`` trains on the shards
of each global batch; only rank 0 creates the run folder and writes into it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from pathlib import Path

import numpy as np

from normlab import models, nn
from normlab.data import DataLoader, load_dataset
from normlab.data.transforms import parse_augment
from normlab.errors import MissingPathError
from normlab.lab._runfolder import RunLock, make_run_dir
from normlab.lab.runs import env_info, write_json
from normlab.lab.training import make_optimizer
from normlab.train import BestModel, DataParallelTrainer, Trainer

__all__ = ["train_model", "OPTIMIZERS", "resolve_augment", "make_loaders", "build_model"]

OPTIMIZERS = ("sgd", "momentum", "adam")
CIFAR_SETS = ("cifar10", "cifar100", "cifar-synthetic")


def build_model(model: str, *, norm, hidden, input_shape, num_classes: int, rng):
    """The registered ``model`` as ``normlab train`` builds it (also used by ``export``)."""
    kw = {"num_classes": int(num_classes), "rng": rng, "input_shape": tuple(input_shape)}
    if model != "mnist1d-linear":
        kw["norm"] = norm
    if model == "mlp":
        kw["hidden_dims"] = list(hidden)
    return models.build(model, **kw)


def resolve_augment(augment: str, model: str, data: str) -> str:
    """``"auto"`` becomes ``"crop,flip"`` for a ResNet on a CIFAR set, else ``"none"``."""
    if augment != "auto":
        return augment
    return "crop,flip" if model.startswith("resnet") and data in CIFAR_SETS else "none"


def make_loaders(X, y, X_val, y_val, *, batch_size: int, augment: str, input_shape, rng):
    """The training loader (shuffled, augmented per ``augment``, drawing from ``rng``) and
    the validation loader (in order, never augmented)."""
    transform = parse_augment(augment, input_shape)
    train = DataLoader(X, y, batch_size=batch_size, shuffle=True,
                       drop_last=len(X) > batch_size, rng=rng, transform=transform)
    val = DataLoader(X_val, y_val, batch_size=512, shuffle=False)
    return train, val


def train_model(*, model: str, data: str, norm: str | None, epochs: int, batch_size: int,
                lr: float, optimizer: str, seed: int, out: str | Path, hidden: tuple = (100, 100),
                n_train: int | None = None, resume: str | None = None,
                progress: bool | None = None, augment: str = "auto", download: bool = False,
                checkpoint_every: int | None = None, comm=None) -> tuple[Path, dict]:
    """Train and evaluate; returns the run folder and the summary dict.

    ``augment`` is ``"auto"`` (crop,flip for ResNets on CIFAR sets), ``"none"`` or names
    such as ``"crop,flip"`` (training loader only); ``download=True`` fetches a real data
    set first (``normlab.data.download``); ``checkpoint_every`` also checkpoints every that
    many steps (default: at epoch ends only). ``comm`` (a ``normlab.distributed``
    communicator) of more than one process trains data-parallel (see the module docstring);
    every rank returns the same summary.

    Raises
    ------
    ValueError
        For a model that cannot take the data set's input shape, or bad sizes.
    """
    rng = np.random.default_rng(seed)
    augment = resolve_augment(augment, model, data)
    ds = load_dataset(data, seed=seed, download=download)
    parse_augment(augment, ds.input_shape)  # a bad --augment fails before any folder is written
    net = build_model(model, norm=norm, hidden=hidden, input_shape=ds.input_shape,
                      num_classes=ds.num_classes, rng=rng)
    X, y = ds.X_train, ds.y_train
    net.eval()  # a dry run in eval mode (buffers untouched) catches shape errors before any
    net(X[:2])  # run folder is written
    net.train()
    distributed = comm is not None and comm.size > 1
    main = not distributed or comm.rank == 0
    if distributed:
        net = nn.convert_sync_batchnorm(net, comm)
    if n_train is not None:
        idx = rng.choice(len(X), size=min(n_train, len(X)), replace=False)
        X, y = X[idx], y[idx]
    if resume is not None:
        if not (Path(resume) / "latest").exists() and \
                (Path(resume) / "checkpoint" / "latest").exists():
            resume = str(Path(resume) / "checkpoint")  # the run folder: its checkpoint
        run_dir = Path(resume).parent
        if not (Path(resume) / "latest").exists() and not Path(resume).is_dir():
            raise MissingPathError(f"train_model: expected a checkpoint folder to resume "
                                    f"from, got {resume!r}.")
    else:
        run_dir = None
        if main:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir = make_run_dir(Path(out) / "train", f"{model}-{data}-{stamp}")
        if distributed:
            run_dir = Path(comm.broadcast(None if run_dir is None else str(run_dir)))
    # only the writing rank holds the run folder's lock (a second run there is refused)
    with RunLock(run_dir) if main else contextlib.nullcontext():
        return _train_in(run_dir, net, ds, X, y, rng, comm=comm, model=model, data=data,
                         norm=norm, epochs=epochs, batch_size=batch_size, lr=lr,
                         optimizer=optimizer, seed=seed, hidden=hidden, resume=resume,
                         progress=progress, augment=augment, checkpoint_every=checkpoint_every)


def _train_in(run_dir: Path, net, ds, X, y, rng, *, comm, model, data, norm, epochs, batch_size,
              lr, optimizer, seed, hidden, resume, progress, augment,
              checkpoint_every) -> tuple[Path, dict]:
    """Train in ``run_dir`` (locked by the caller on the writing rank) and write its files."""
    distributed = comm is not None and comm.size > 1
    main = not distributed or comm.rank == 0
    train_loader, val_loader = make_loaders(X, y, ds.X_val, ds.y_val, batch_size=batch_size,
                                            augment=augment, input_shape=ds.input_shape, rng=rng)
    best = BestModel(monitor="val_acc", mode="max", restore=True)
    kw = dict(callbacks=[best], checkpoint_dir=run_dir / "checkpoint", progress=progress,
              checkpoint_every=checkpoint_every)
    if distributed:
        trainer = DataParallelTrainer(net, make_optimizer(optimizer, net, lr), comm=comm, **kw)
    else:
        trainer = Trainer(net, make_optimizer(optimizer, net, lr), **kw)
    if resume is not None:  # before anything is written: refuses e.g. another --nproc
        trainer.load(Path(resume))
    config = {"model": model, "data": data, "norm": norm, "epochs": epochs,
              "batch_size": batch_size, "lr": lr, "optimizer": optimizer, "seed": seed,
              "hidden": list(hidden) if model == "mlp" else None, "n_train": len(X),
              "num_parameters": net.num_parameters(), "augment": augment,
              "input_shape": list(ds.input_shape), "num_classes": ds.num_classes,
              "checkpoint_every": checkpoint_every, "nproc": comm.size if distributed else 1}
    if main:
        if resume is None or not (run_dir / "config.json").exists():
            # a resumed run keeps the config it started with (its lr is the checkpoint's)
            write_json(run_dir / "config.json", config)
        write_json(run_dir / "env.json", env_info())
    t0 = time.perf_counter()
    trainer.fit(train_loader, val_loader, epochs=epochs)
    wall = time.perf_counter() - t0
    summary = {"wall_time_s": round(wall, 2), "steps": trainer.step, "best_val_acc": best.best}
    for split, (Xs, ys) in (("train", (X, y)), ("val", (ds.X_val, ds.y_val)),
                            ("test", (ds.X_test, ds.y_test))):
        if len(Xs):
            m = trainer.evaluate(DataLoader(Xs, ys, batch_size=512, shuffle=False))
            summary[f"{split}_loss"], summary[f"{split}_acc"] = m["loss"], m.get("accuracy")
    if main:
        write_json(run_dir / "summary.json", summary)
    return run_dir, summary
