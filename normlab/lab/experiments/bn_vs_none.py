"""BN vs no BN: a deep MLP and a small conv net trained with plain SGD, same everything else.

Ioffe & Szegedy (2015) and d2l (ch. 8.5): with the same learning rate and initialisation,
the network with batch normalization reaches a low training loss and a high validation
accuracy in far fewer steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.errors import NormlabValueError
from normlab.lab.common import errorbar, new_figure, note_interval, progress, save_figure
from normlab.lab.seeding import Seeds, seed_model
from normlab.lab.stats import mean_ci, mean_halfwidth, paired
from normlab.lab.training import subset, train_run

NAME = "bn-vs-none"
TITLE = "Batch normalization vs none: convergence of a deep MLP and a conv net"
CLAIM = "With the same optimiser, learning rate and initialisation, BN converges much faster."


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"  # offline 8x8 digits (scikit-learn)
    models: tuple = ("mlp", "convnet")
    depth: int = 6  # hidden layers of the MLP
    width: int = 100  # units per MLP hidden layer
    filters: int = 16  # conv net filters
    epochs: int = 15
    batch_size: int = 64
    lr: float = 0.02  # plain SGD, no momentum
    n_train: int = 1200
    seeds: int = 3  # replicates (a 95 % t-interval needs >= 2; with 2, t = 12.7)

    @classmethod
    def smoke(cls) -> "Config":
        return cls(epochs=4, n_train=400, seeds=1)


def build(kind: str, norm, cfg: Config, data, rng):
    if kind == "mlp":
        return models.FullyConnectedNet([cfg.width] * cfg.depth, int(np.prod(data.input_shape)),
                                        data.num_classes, norm=norm, rng=rng)
    if kind == "convnet":
        return models.ThreeLayerConvNet(input_dim=tuple(data.input_shape), num_filters=cfg.filters,
                                        filter_size=3, hidden_dim=cfg.width,
                                        num_classes=data.num_classes, norm=norm, rng=rng)
    raise NormlabValueError(f"bn-vs-none: expected model 'mlp' or 'convnet', got {kind!r}.")


def run(cfg: Config, seeds: Seeds) -> dict:
    """Each replicate: one training subset, one batch order and one set of Linear/Conv
    weights, shared by the BN and the plain arm (the BN arm only adds its norm layers)."""
    data = load_dataset(cfg.dataset, seed=0)
    runs: dict[str, list] = {}
    combos = [(m, n, s) for m in cfg.models for n in ("none", "batch") for s in range(cfg.seeds)]
    for kind, norm, rep in progress(combos, NAME, total=len(combos)):
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None,
                                        seeds.generator(rep, "data", "subset"))
        model = build(kind, None if norm == "none" else norm, cfg, data,
                      seeds.generator(rep, "build"))
        seed_model(model, seeds, rep, tag=kind)
        res = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=cfg.lr, batch_size=cfg.batch_size,
                        epochs=cfg.epochs, rng=seeds.generator(rep, "data", "batches"))
        runs.setdefault(f"{kind}/{norm}", []).append(res)
    metrics, summary, per_seed = [], {}, {}
    for key, rs in runs.items():
        for seed, r in enumerate(rs):
            for e, (s, va, ta) in enumerate(zip(r["eval_step"], r["val_acc"], r["train_acc"]), 1):
                metrics.append({"run": key, "seed": seed, "epoch": e, "step": s,
                                "val_acc": va, "train_acc": ta})
        per_epoch = len(rs[0]["step"]) // max(1, cfg.epochs)
        per_seed[key] = {
            "final_val_acc": [r["val_acc"][-1] for r in rs],
            "last_epoch_train_loss": [float(np.mean(r["train_loss"][-per_epoch:])) for r in rs],
            "val_acc_after_epoch_2": [r["val_acc"][min(1, len(r["val_acc"]) - 1)] for r in rs],
        }
        summary[key] = {k: mean_ci(v) for k, v in per_seed[key].items()}
    pairs = {}
    for kind in cfg.models:
        bn, no = per_seed[f"{kind}/batch"], per_seed[f"{kind}/none"]
        pairs[f"{kind}: last-epoch training loss, no BN − with BN"] = paired(
            no["last_epoch_train_loss"], bn["last_epoch_train_loss"])
        pairs[f"{kind}: final validation accuracy, with BN − no BN"] = paired(
            bn["final_val_acc"], no["final_val_acc"])
    summary["paired"] = pairs
    return {"runs": runs, "metrics": metrics, "summary": summary, "paired": pairs,
            "models": list(cfg.models)}


def _smooth(y, k: int = 10):
    y = np.asarray(y, dtype=float)
    k = max(1, min(k, len(y)))
    return np.convolve(y, np.ones(k) / k, mode="valid")


def plot(results: dict, out_dir) -> list:
    fig, axes = new_figure(len(results["models"]), 2, size=(5.2, 3.6))
    for row, kind in enumerate(results["models"]):
        for norm, color in (("none", "C3"), ("batch", "C0")):
            rs = results["runs"][f"{kind}/{norm}"]
            label = "with BN" if norm == "batch" else "no BN"
            losses = np.array([_smooth(r["train_loss"]) for r in rs])
            x = np.arange(1, losses.shape[1] + 1) + (len(rs[0]["train_loss"]) - losses.shape[1])
            mean, half = mean_halfwidth(losses)
            axes[row][0].plot(x, mean, color=color, label=label)
            if half is not None:
                axes[row][0].fill_between(x, mean - half, mean + half, color=color, alpha=0.2)
            acc = np.array([r["val_acc"] for r in rs])
            errorbar(axes[row][1], np.arange(1, acc.shape[1] + 1), acc, label, color=color)
        axes[row][0].set(title=f"{kind}: training loss (moving average of 10 steps)", xlabel="step",
                         ylabel="cross-entropy")
        axes[row][1].set(title=f"{kind}: validation accuracy", xlabel="epoch",
                         ylabel="accuracy", ylim=(0, 1))
        axes[row][0].legend(fontsize=8)
        axes[row][1].legend(loc="lower right", fontsize=8)
    note_interval(fig, len(results["runs"][f"{results['models'][0]}/none"]))
    return [save_figure(fig, out_dir, "bn_vs_none_curves")]


def check(results: dict) -> dict[str, bool]:
    p = results["paired"]
    out = {}
    for kind in results["models"]:
        out[f"{kind}: BN lowers the last-epoch training loss in every seed (paired by seed)"] = (
            p[f"{kind}: last-epoch training loss, no BN − with BN"]["every_seed"])
        out[f"{kind}: BN raises the final validation accuracy in every seed (paired, same "
            "budget)"] = p[f"{kind}: final validation accuracy, with BN − no BN"]["every_seed"]
    return out
