"""Largest learning rate that trains, with and without BN.

A deep ReLU MLP (He initialisation, so the plain net trains well at small learning rates)
is trained with plain SGD for a fixed budget of steps at log-spaced learning rates. Two
separate outcomes are recorded for every run:

- it **trains** when its validation accuracy at the end of the budget reaches
  ``good_acc``: a learning rate too small to get there in the budget does not train
  either, so this is "largest learning rate that trains *within this budget*", not a
  stability limit on its own;
- it **diverged** when the loss, a gradient or a weight became non-finite, or the final
  training loss is above ``3 ln C`` (worse than guessing by far: exploding).

Per seed, the largest learning rate that trains is the largest grid point whose run
trains. BN makes the loss invariant to the scale of each layer's weights, so much larger
steps still train (Santurkar et al. 2018; Bjorck et al. 2018). BN and plain arms of a
replicate share the data, batch order and Linear weights, so the ratio is paired by seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.common import new_figure, progress, save_figure
from normlab.lab.seeding import Seeds, seed_model
from normlab.lab.stats import mean_ci, paired
from normlab.lab.training import subset, train_run

NAME = "learning-rate"
TITLE = "Largest learning rate that trains, BN vs none"
CLAIM = ("Within the same budget, the largest learning rate that trains the network is more "
         "than 3x larger with BN than without, in every seed.")

EXPLODE = 3.0  # a final training loss above EXPLODE * ln C counts as diverged


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    depth: int = 6  # hidden layers
    width: int = 100
    n_lrs: int = 13
    min_exp: float = -3.0  # learning rates 10**min_exp .. 10**max_exp
    max_exp: float = 1.5
    steps: int = 200  # the budget
    batch_size: int = 64
    n_train: int = 1200
    seeds: int = 3  # replicates (a 95 % t-interval needs >= 2; with 2, t = 12.7)
    good_acc: float = 0.8  # validation accuracy a run must reach by the end of the budget

    @classmethod
    def smoke(cls) -> "Config":
        return cls(n_lrs=7, steps=80, n_train=600, seeds=1, good_acc=0.6)


def _largest(rows, key: str, lrs, pick):
    vals = [float(lr) for lr in lrs if any(r["lr"] == float(lr) and r[key] for r in rows)]
    return pick(vals) if vals else None


def run(cfg: Config, seeds: Seeds) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    lrs = np.logspace(cfg.min_exp, cfg.max_exp, cfg.n_lrs)
    chance_loss = math.log(data.num_classes)
    table: dict[str, list] = {"none": [], "batch": []}
    metrics = []
    combos = [(lr, n, s) for lr in lrs for n in ("none", "batch") for s in range(cfg.seeds)]
    for lr, norm, rep in progress(combos, NAME, total=len(combos)):
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None,
                                        seeds.generator(rep, "data", "subset"))
        model = models.FullyConnectedNet([cfg.width] * cfg.depth, int(np.prod(data.input_shape)),
                                         data.num_classes, norm=None if norm == "none" else norm,
                                         rng=seeds.generator(rep, "build"))
        seed_model(model, seeds, rep, kind="he")
        r = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=float(lr), batch_size=cfg.batch_size,
                      steps=cfg.steps, eval_every=cfg.steps,
                      rng=seeds.generator(rep, "data", "batches"))
        final = float(np.mean(r["train_loss"][-10:])) if not r["diverged"] else None
        diverged = r["diverged"] or final is None or final > EXPLODE * chance_loss
        val_acc = r["val_acc"][-1] if r["val_acc"] and not r["diverged"] else None
        table[norm].append({"lr": float(lr), "seed": rep, "val_acc": val_acc,
                            "trains": bool(val_acc is not None and val_acc >= cfg.good_acc),
                            "diverged": bool(diverged), "final_loss": final,
                            "diverged_step": r["diverged_step"]})
        metrics.append({"norm": norm, **table[norm][-1]})
    per_seed: dict[str, dict[str, list]] = {}
    summary: dict = {}
    for norm, rows in table.items():
        by_seed = [[r for r in rows if r["seed"] == s] for s in range(cfg.seeds)]
        largest = [_largest(rs, "trains", lrs, max) for rs in by_seed]
        first_div = [_largest(rs, "diverged", lrs, min) for rs in by_seed]
        per_seed[norm] = {"largest_lr_that_trains": largest,
                          "smallest_lr_that_diverges": first_div}
        logs = [math.log10(v) if v else float("nan") for v in largest]
        summary[norm] = {
            "largest_lr_that_trains_per_seed": largest,
            "log10_largest_lr_that_trains": mean_ci(logs),
            "smallest_lr_that_diverges_per_seed": first_div,
            "n_lrs_that_train_in_every_seed": int(sum(
                all(r["trains"] for r in rows if r["lr"] == float(lr)) for lr in lrs)),
        }
    log_bn = [math.log10(v) if v else float("nan")
              for v in per_seed["batch"]["largest_lr_that_trains"]]
    log_no = [math.log10(v) if v else float("nan")
              for v in per_seed["none"]["largest_lr_that_trains"]]
    # the claim is "at least 3x": the log-ratio must exceed log10(3) in every seed
    pairs = {"log10 largest learning rate that trains, with BN − no BN":
             paired(log_bn, log_no, threshold=math.log10(3.0))}
    p = pairs["log10 largest learning rate that trains, with BN − no BN"]
    summary["ratio_bn_to_none_per_seed"] = [10 ** d if np.isfinite(d) else None
                                            for d in p["diffs"]]
    summary["ratio_bn_to_none"] = {k: (10 ** p[k] if p[k] is not None else None)
                                   for k in ("mean", "low", "high")}
    summary["ratio_bn_to_none"]["n"] = p["n"]
    summary["ratio_bn_to_none"]["note"] = "geometric mean over seeds, 95 % t-interval of log10"
    summary["paired"] = pairs
    return {"lrs": lrs.tolist(), "table": table, "metrics": metrics, "summary": summary,
            "paired": pairs, "chance_loss": chance_loss, "good_acc": cfg.good_acc,
            "steps": cfg.steps, "seeds": cfg.seeds}


def plot(results: dict, out_dir) -> list:
    fig, axes = new_figure(1, 2, size=(5.4, 4.4))
    lrs = np.asarray(results["lrs"])
    n = results["seeds"]
    ax_acc, ax_frac = axes[0]
    for norm, color, label in (("none", "C3", "no BN"), ("batch", "C0", "with BN")):
        rows = results["table"][norm]
        for s in range(n):
            mine = [r for r in rows if r["seed"] == s]
            acc = [r["val_acc"] if r["val_acc"] is not None else np.nan for r in mine]
            ax_acc.plot([r["lr"] for r in mine], acc, "-o", color=color, ms=3, alpha=0.8,
                        label=label if s == 0 else None)
            div = [r["lr"] for r in mine if r["diverged"]]
            ax_acc.plot(div, [0.02] * len(div), "x", color=color, ms=7, mew=2,
                        label=f"{label}: diverged" if s == 0 else None)
        frac = [np.mean([r["trains"] for r in rows if r["lr"] == lr]) for lr in lrs]
        fdiv = [np.mean([r["diverged"] for r in rows if r["lr"] == lr]) for lr in lrs]
        ax_frac.plot(lrs, frac, "-o", color=color, ms=4, label=f"{label}: trains")
        ax_frac.plot(lrs, fdiv, "--x", color=color, ms=5, label=f"{label}: diverged")
        for v in results["summary"][norm]["largest_lr_that_trains_per_seed"]:
            if v:
                ax_frac.axvline(v, color=color, ls=":", lw=1)
    ax_acc.axhline(results["good_acc"], color="grey", ls="--", lw=1,
                   label=f"threshold {results['good_acc']:.0%}")
    ax_acc.set(xscale="log", xlabel="learning rate", ylabel="validation accuracy",
               ylim=(0, 1), title=f"after {results['steps']} steps, one line per seed "
               f"({n} seed{'s' if n > 1 else ''})")
    ax_frac.set(xscale="log", xlabel="learning rate", ylabel="fraction of seeds",
                ylim=(-0.05, 1.05),
                title="trains (≥ threshold) / diverged\n"
                      "dotted: largest lr that trains, per seed")
    for ax in (ax_acc, ax_frac):  # below the axes: the curves fill the plot area
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=3)
    ratio = results["summary"]["ratio_bn_to_none"]
    text = f"{ratio['mean']:.3g}x" if ratio["mean"] else "undefined"
    if ratio["low"] is not None:
        text += (f", 95 % t-interval [{ratio['low']:.3g}, {ratio['high']:.3g}]x "
                 f"(geometric mean over {n} seeds)")
    elif n == 1:
        text += " (one seed: no interval)"
    fig.suptitle(f"largest learning rate that trains, with BN / without: {text}", fontsize=9)
    return [save_figure(fig, out_dir, "learning_rate")]


def check(results: dict) -> dict[str, bool]:
    p = results["paired"]["log10 largest learning rate that trains, with BN − no BN"]
    return {"largest learning rate that trains is > 3x larger with BN in every seed "
            "(paired by seed)": p["every_seed"]}
