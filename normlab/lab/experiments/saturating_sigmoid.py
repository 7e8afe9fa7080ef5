"""Ioffe & Szegedy (2015), §4.2.1: BN makes a deep network of saturating sigmoids trainable.

The paper trains Inception with sigmoid nonlinearities: with BN it reaches 69.8 % top-1,
without BN it never gets beyond chance. Here: ten hidden sigmoid layers of 100 units on
MNIST-1D, Xavier initialisation, SGD with momentum 0.9, batch 100, 4,000 steps, at three
learning rates. Without BN the gradient reaching the lower layers shrinks by the sigmoid's
slope (at most 1/4) per layer and the network stays at chance; with BN it trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normlab import nn
from normlab.lab.common import mean_std, new_figure, progress, save_figure
from normlab.lab.seeding import Seeds
from normlab.lab.setups import mlp, mnist1d_full
from normlab.lab.stats import paired
from normlab.lab.training import train_run

NAME = "saturating-sigmoid"
TITLE = "Ioffe & Szegedy 2015, §4.2.1: a 10-layer sigmoid MLP trains only with BN"
CLAIM = ("Without BN, ten sigmoid layers stay near chance (best test accuracy <= 20 %) at every "
         "learning rate; with BN the same network reaches >= 55 %.")

NORMS = ("none", "batch")
LABELS = {"none": "without BN", "batch": "with BN"}
FULL_STEPS = 4000  # the pass criteria are calibrated at this length


@dataclass(frozen=True)
class Config:
    depth: int = 10  # hidden sigmoid layers
    width: int = 100
    steps: int = 4000
    batch_size: int = 100
    lrs: tuple = (0.01, 0.1, 0.5)  # SGD, momentum 0.9
    eval_every: int = 200
    seeds: int = 3

    @classmethod
    def smoke(cls) -> "Config":
        return cls(steps=300, lrs=(0.5,), eval_every=100, seeds=1)


def _grad_norm_probe(steps):
    """Per hidden Linear layer, the norm of its weight gradient at the given steps."""

    def probe(model, step):
        if step not in steps:
            return None
        lin = [m for m in model.modules() if isinstance(m, nn.Linear)]
        return {"step": step, "grad_norm": [float(np.linalg.norm(m.grads["weight"])) for m in lin]}

    return probe


def run(cfg: Config, seeds: Seeds) -> dict:
    train, test = mnist1d_full()
    runs: dict[str, list] = {}
    combos = [(s, n, lr) for s in range(cfg.seeds) for n in NORMS for lr in cfg.lrs]
    for seed, norm, lr in progress(combos, NAME, total=len(combos)):
        model = mlp([cfg.width] * cfg.depth, seeds, seed, norm=None if norm == "none" else norm,
                    activation="sigmoid", init="xavier")
        r = train_run(model, train, test, lr=lr, batch_size=cfg.batch_size, steps=cfg.steps,
                      eval_every=cfg.eval_every, optimizer="momentum",
                      rng=seeds.generator(seed, "data", "batches"),
                      probe=_grad_norm_probe({1, cfg.steps}))
        acc = [a if np.isfinite(a) else 0.0 for a in r["val_acc"]]
        runs.setdefault(f"{norm}/{lr}", []).append({
            "seed": seed, "eval_step": r["eval_step"], "test_acc": acc,
            "best_test_acc": max(acc, default=0.0), "diverged": r["diverged"],
            "grad_norms": [p for p in r["probes"] if p is not None]})
    metrics = [{"run": k, "seed": r["seed"], "step": s, "test_acc": a}
               for k, rs in runs.items() for r in rs for s, a in zip(r["eval_step"], r["test_acc"])]
    summary = {k: {"best_test_acc": mean_std([r["best_test_acc"] for r in rs]),
                   "final_test_acc": mean_std([r["test_acc"][-1] if r["test_acc"] else 0.0
                                               for r in rs])}
               for k, rs in runs.items()}
    best = {}
    for norm in NORMS:  # per seed: the best over learning rates and evaluations
        best[norm] = [max(runs[f"{norm}/{lr}"][s]["best_test_acc"] for lr in cfg.lrs)
                      for s in range(cfg.seeds)]
        summary[f"{norm}/best_over_lrs"] = {"best_test_acc": mean_std(best[norm])}
    pairs = {"best test accuracy over the lrs, with BN − without BN":
             paired(best["batch"], best["none"])}
    summary["paired"] = pairs
    return {"runs": runs, "metrics": metrics, "summary": summary, "paired": pairs,
            "lrs": list(cfg.lrs),
            "steps": cfg.steps, "depth": cfg.depth}


def plot(results: dict, out_dir) -> list:
    lrs = results["lrs"]
    fig, axes = new_figure(1, 2, size=(5.2, 3.8))
    ax = axes[0][0]
    for j, lr in enumerate(lrs):
        for norm, ls in (("none", ":"), ("batch", "-")):
            rs = results["runs"][f"{norm}/{lr}"]
            acc = np.mean([r["test_acc"] for r in rs], 0)
            ax.plot(rs[0]["eval_step"], acc, ls, color=f"C{j}", label=f"{LABELS[norm]}, lr {lr}")
    ax.axhline(0.1, color="gray", lw=0.8)
    ax.set(xlabel="step", ylabel="test accuracy", ylim=(0, 1),
           title=f"{results['depth']} sigmoid layers (mean of seeds; gray: chance)")
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    ax = axes[0][1]
    lr = lrs[-1]
    for norm, color in (("none", "C3"), ("batch", "C0")):
        probes = results["runs"][f"{norm}/{lr}"][0]["grad_norms"]
        for p, ls in zip(probes, ("-", "--")):
            g = np.maximum(np.asarray(p["grad_norm"]), 1e-30)
            ax.plot(np.arange(1, len(g) + 1), g, ls, marker="o", ms=3, color=color,
                    label=f"{LABELS[norm]}, step {p['step']}")
    ax.set(yscale="log", xlabel="Linear layer (1 = input, last = output)", ylabel="||dL/dW||",
           title=f"weight-gradient norm per layer (lr {lr}, seed 0)")
    ax.legend(fontsize=7)
    return [save_figure(fig, out_dir, "saturating_sigmoid")]


def check(results: dict) -> dict[str, bool]:
    s = results["summary"]
    none = s["none/best_over_lrs"]["best_test_acc"]["mean"]
    bn = s["batch/best_over_lrs"]["best_test_acc"]["mean"]
    out = {"with BN the best test accuracy beats the best without BN by >= 20 points":
           bn >= none + 0.20,
           "with BN better than without in every seed (paired by seed)":
           results["paired"]["best test accuracy over the lrs, with BN − without BN"]["every_seed"]}
    if results["steps"] >= FULL_STEPS:  # the bands need the full 4,000 steps
        out["without BN: best test accuracy over the learning rates <= 20 %"] = none <= 0.20
        out["with BN: best test accuracy over the learning rates >= 55 %"] = bn >= 0.55
    return out
