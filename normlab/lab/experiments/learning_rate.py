"""Largest stable learning rate with and without BN.

A deep ReLU MLP (He initialisation, so the plain net trains well at small learning rates)
is trained with plain SGD at log-spaced learning rates. A run *trains stably* when it
never produces a non-finite loss and its final loss is below half the loss of uniform
guessing (ln C / 2): a run that blows up, or that is knocked into a dead state where the
loss sits at chance level, does not. BN makes the loss invariant to the scale of each layer's
weights, so much larger steps stay stable (Santurkar et al. 2018; Bjorck et al. 2018).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.common import new_figure, progress, reinit_linear_layers, save_figure
from normlab.lab.training import subset, train_run

NAME = "learning-rate"
TITLE = "Largest stable learning rate, BN vs none"
CLAIM = "BN tolerates learning rates at least 3x larger than the same network without BN."


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    depth: int = 6  # hidden layers
    width: int = 100
    n_lrs: int = 13
    min_exp: float = -3.0  # learning rates 10**min_exp .. 10**max_exp
    max_exp: float = 1.5
    steps: int = 200
    batch_size: int = 64
    n_train: int = 1200
    seeds: int = 2

    @classmethod
    def smoke(cls) -> "Config":
        return cls(n_lrs=7, steps=80, n_train=600, seeds=1)


def run(cfg: Config, rng: np.random.Generator) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    lrs = np.logspace(cfg.min_exp, cfg.max_exp, cfg.n_lrs)
    chance_loss = math.log(data.num_classes)
    table: dict[str, list] = {"none": [], "batch": []}
    metrics = []
    combos = [(lr, n, s) for lr in lrs for n in ("none", "batch") for s in range(cfg.seeds)]
    for lr, norm, seed in progress(combos, NAME, total=len(combos)):
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None, rng)
        model = models.FullyConnectedNet([cfg.width] * cfg.depth, int(np.prod(data.input_shape)),
                                         data.num_classes, norm=None if norm == "none" else norm,
                                         rng=rng)
        reinit_linear_layers(model, "he", rng)
        r = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=float(lr), batch_size=cfg.batch_size,
                      steps=cfg.steps, eval_every=cfg.steps, rng=rng)
        final = float(np.mean(r["train_loss"][-10:])) if not r["diverged"] else float("inf")
        stable = (not r["diverged"]) and final < 0.5 * chance_loss
        table[norm].append({"lr": float(lr), "seed": seed, "stable": stable,
                            "final_loss": final if math.isfinite(final) else None,
                            "val_acc": r["val_acc"][-1] if r["val_acc"] else None,
                            "diverged_step": r["diverged_step"]})
        metrics.append({"norm": norm, **table[norm][-1]})
    summary = {}
    for norm, rows in table.items():
        # stable at an lr = stable for every seed; the largest stable lr is the upper edge of
        # the run of stable lrs that starts at the best one (an isolated lucky seed above a
        # failing lr does not count)
        ok = [all(r["stable"] for r in rows if r["lr"] == lr) for lr in map(float, lrs)]
        mean_loss = [np.mean([r["final_loss"] if r["final_loss"] is not None else np.inf
                              for r in rows if r["lr"] == lr]) for lr in map(float, lrs)]
        best = int(np.argmin(mean_loss))
        edge = None
        for i in range(best, len(lrs)):
            if not ok[i]:
                break
            edge = float(lrs[i])
        summary[norm] = {"largest_stable_lr": edge, "best_lr": float(lrs[best]),
                         "n_stable_lrs": int(sum(ok))}
    a, b = summary["batch"]["largest_stable_lr"], summary["none"]["largest_stable_lr"]
    summary["ratio_bn_to_none"] = (a / b) if a and b else None
    return {"lrs": lrs.tolist(), "table": table, "metrics": metrics, "summary": summary,
            "chance_loss": chance_loss}


def plot(results: dict, out_dir) -> list:
    fig, axes = new_figure(1, 2, size=(5.0, 3.6))
    lrs = np.asarray(results["lrs"])
    for norm, color, label in (("none", "C3", "no BN"), ("batch", "C0", "with BN")):
        rows = results["table"][norm]
        loss = [np.mean([r["final_loss"] if r["final_loss"] is not None else np.nan
                         for r in rows if r["lr"] == lr]) for lr in lrs]
        frac = [np.mean([r["stable"] for r in rows if r["lr"] == lr]) for lr in lrs]
        axes[0][0].plot(lrs, loss, marker="o", color=color, label=label)
        axes[0][1].plot(lrs, frac, marker="o", color=color, label=label)
        best = results["summary"][norm]["largest_stable_lr"]
        if best:
            for ax in axes[0]:
                ax.axvline(best, color=color, ls=":", lw=1)
    axes[0][0].axhline(results["chance_loss"], color="grey", ls="--", lw=1, label="ln C (chance)")
    axes[0][0].axhline(0.5 * results["chance_loss"], color="grey", ls=":", lw=1,
                       label="ln C / 2 (threshold)")
    axes[0][0].set(xscale="log", yscale="log", xlabel="learning rate", ylabel="final training loss",
                   title="final loss (missing: diverged)")
    axes[0][1].set(xscale="log", xlabel="learning rate", ylabel="fraction of seeds that train (loss < ln C / 2)",
                   title="stable training (dotted: largest stable lr)", ylim=(-0.05, 1.05))
    axes[0][0].legend()
    axes[0][1].legend()
    return [save_figure(fig, out_dir, "learning_rate")]


def check(results: dict) -> dict[str, bool]:
    ratio = results["summary"]["ratio_bn_to_none"]
    return {"largest stable lr with BN >= 3x without": bool(ratio is not None and ratio >= 3.0)}
