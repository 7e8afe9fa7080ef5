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
from normlab.lab.common import mean_std, new_figure, progress, save_figure
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
    seeds: int = 2

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


def run(cfg: Config, rng: np.random.Generator) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    runs: dict[str, list] = {}
    combos = [(m, n, s) for m in cfg.models for n in ("none", "batch") for s in range(cfg.seeds)]
    for kind, norm, seed in progress(combos, NAME, total=len(combos)):
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None, rng)
        model = build(kind, None if norm == "none" else norm, cfg, data, rng)
        res = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=cfg.lr, batch_size=cfg.batch_size,
                        epochs=cfg.epochs, rng=rng)
        runs.setdefault(f"{kind}/{norm}", []).append(res)
    metrics, summary = [], {}
    for key, rs in runs.items():
        for seed, r in enumerate(rs):
            for e, (s, va, ta) in enumerate(zip(r["eval_step"], r["val_acc"], r["train_acc"]), 1):
                metrics.append({"run": key, "seed": seed, "epoch": e, "step": s,
                                "val_acc": va, "train_acc": ta})
        per_epoch = len(rs[0]["step"]) // max(1, cfg.epochs)
        summary[key] = {
            "final_val_acc": mean_std([r["val_acc"][-1] for r in rs]),
            "last_epoch_train_loss": mean_std([np.mean(r["train_loss"][-per_epoch:]) for r in rs]),
            "val_acc_after_epoch_2": mean_std([r["val_acc"][min(1, len(r["val_acc"]) - 1)]
                                               for r in rs]),
        }
    return {"runs": runs, "metrics": metrics, "summary": summary, "models": list(cfg.models)}


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
            x = np.arange(losses.shape[1])
            axes[row][0].plot(x, losses.mean(0), color=color, label=label)
            axes[row][0].fill_between(x, losses.min(0), losses.max(0), color=color, alpha=0.2)
            acc = np.array([r["val_acc"] for r in rs])
            ep = np.arange(1, acc.shape[1] + 1)
            axes[row][1].errorbar(ep, acc.mean(0), yerr=acc.std(0), color=color, marker="o",
                                  ms=3, capsize=2, label=label)
        axes[row][0].set(title=f"{kind}: training loss (moving average)", xlabel="step",
                         ylabel="cross-entropy")
        axes[row][1].set(title=f"{kind}: validation accuracy", xlabel="epoch",
                         ylabel="accuracy", ylim=(0, 1))
        axes[row][0].legend()
        axes[row][1].legend(loc="lower right")
    return [save_figure(fig, out_dir, "bn_vs_none_curves")]


def check(results: dict) -> dict[str, bool]:
    s = results["summary"]
    out = {}
    for kind in results["models"]:
        bn, no = s[f"{kind}/batch"], s[f"{kind}/none"]
        out[f"{kind}: last-epoch training loss lower with BN"] = (
            bn["last_epoch_train_loss"]["mean"] < no["last_epoch_train_loss"]["mean"])
        out[f"{kind}: final validation accuracy higher with BN (same budget)"] = (
            bn["final_val_acc"]["mean"] > no["final_val_acc"]["mean"])
    return out
