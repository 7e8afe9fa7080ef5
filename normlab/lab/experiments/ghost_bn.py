"""Hoffer et al. (2017), "Train longer, generalize better": Ghost Batch Normalization.

Large batches generalise worse. Part of BN's regularising noise comes from the small batch
its statistics are computed on; at batch 1024 that noise is gone. Ghost BN computes the
statistics over virtual batches of 32 inside the large batch, which brings the noise (and
test accuracy) back without giving up the large batch.

Setup: three hidden ReLU layers of 100 units on MNIST-1D, SGD with momentum 0.9, 6,000
steps: BN at batch 32 (lr 0.05), BN at batch 1024 (lr 0.2), and Ghost BN with virtual
batches of 32 at batch 1024 (lr 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from normlab import nn
from normlab.lab.common import mean_std, new_figure, progress, save_figure
from normlab.lab.seeding import Seeds
from normlab.lab.setups import mlp, mnist1d_full
from normlab.lab.stats import paired
from normlab.lab.training import train_run

NAME = "ghost-bn"
TITLE = "Hoffer et al. 2017: Ghost BN (virtual batch 32) recovers large-batch generalisation"
CLAIM = ("At batch 1024, Ghost BN over virtual batches of 32 reaches >= 2 points more test "
         "accuracy than plain BN.")

ARMS = ("bn_small", "bn_large", "ghost_large")
FULL_STEPS = 6000  # the band is calibrated at this length


@dataclass(frozen=True)
class Config:
    depth: int = 3  # hidden ReLU layers
    width: int = 100
    steps: int = 6000
    small_batch: int = 32
    small_lr: float = 0.05  # SGD, momentum 0.9
    large_batch: int = 1024
    large_lr: float = 0.2
    virtual_batch: int = 32
    eval_every: int = 500
    seeds: int = 3

    @classmethod
    def smoke(cls) -> "Config":
        return cls(steps=300, large_batch=512, eval_every=100, seeds=1)


def _label(arm: str, cfg_or_res) -> str:
    g = cfg_or_res.get if isinstance(cfg_or_res, dict) else partial(getattr, cfg_or_res)
    return {"bn_small": f"BN, batch {g('small_batch')}",
            "bn_large": f"BN, batch {g('large_batch')}",
            "ghost_large": f"Ghost BN ({g('virtual_batch')}), batch {g('large_batch')}"}[arm]


def run(cfg: Config, seeds: Seeds) -> dict:
    train, test = mnist1d_full()
    runs: dict[str, list] = {a: [] for a in ARMS}
    combos = [(s, a) for s in range(cfg.seeds) for a in ARMS]
    for seed, arm in progress(combos, NAME, total=len(combos)):
        norm = (partial(nn.GhostBatchNorm1d, virtual_batch_size=cfg.virtual_batch)
                if arm == "ghost_large" else "batch")
        bs, lr = ((cfg.small_batch, cfg.small_lr) if arm == "bn_small"
                  else (cfg.large_batch, cfg.large_lr))
        model = mlp([cfg.width] * cfg.depth, seeds, seed, norm=norm)
        r = train_run(model, train, test, lr=lr, batch_size=bs, steps=cfg.steps,
                      eval_every=cfg.eval_every, optimizer="momentum",
                      rng=seeds.generator(seed, "data", "batches", bs))
        final = 0.1 if r["diverged"] or not r["val_acc"] else r["val_acc"][-1]  # diverged: chance
        runs[arm].append({"seed": seed, "eval_step": r["eval_step"], "test_acc": r["val_acc"],
                          "train_acc": r["train_acc"], "final_test_acc": final,
                          "final_train_acc": r["train_acc"][-1] if r["train_acc"] else None,
                          "diverged": r["diverged"]})
    metrics = [{"arm": a, "seed": r["seed"], "step": s, "test_acc": acc, "train_acc": tr}
               for a, rs in runs.items() for r in rs
               for s, acc, tr in zip(r["eval_step"], r["test_acc"], r["train_acc"])]
    summary = {a: {"final_test_acc": mean_std([r["final_test_acc"] for r in rs]),
                   "final_train_acc": mean_std([r["final_train_acc"] or 0.0 for r in rs]),
                   "diverged_runs": sum(r["diverged"] for r in rs)} for a, rs in runs.items()}
    final = {a: [r["final_test_acc"] for r in rs] for a, rs in runs.items()}
    pairs = {f"final test accuracy at batch {cfg.large_batch}, Ghost BN − BN":
             paired(final["ghost_large"], final["bn_large"])}
    summary["paired"] = pairs
    return {"runs": runs, "metrics": metrics, "summary": summary, "paired": pairs,
            "steps": cfg.steps,
            "small_batch": cfg.small_batch, "large_batch": cfg.large_batch,
            "virtual_batch": cfg.virtual_batch}


def plot(results: dict, out_dir) -> list:
    runs = results["runs"]
    fig, axes = new_figure(1, 2, size=(5.2, 3.8))
    ax = axes[0][0]
    for i, a in enumerate(ARMS):
        rs = runs[a]
        ax.plot(rs[0]["eval_step"], np.mean([r["test_acc"] for r in rs], 0), color=f"C{i}",
                label=_label(a, results))
        ax.plot(rs[0]["eval_step"], np.mean([r["train_acc"] for r in rs], 0), ":", color=f"C{i}")
    ax.set(xlabel="step", ylabel="accuracy (eval mode)", ylim=(0, 1),
           title="(a) test (solid) and train (dotted) accuracy")
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[0][1]
    v = [[r["final_test_acc"] for r in runs[a]] for a in ARMS]
    ax.bar(range(len(ARMS)), [np.mean(x) for x in v], yerr=[np.std(x) for x in v], capsize=3,
           color=[f"C{i}" for i in range(len(ARMS))])
    ax.set_xticks(range(len(ARMS)), [_label(a, results).replace(", ", "\n") for a in ARMS],
                  fontsize=8)
    lo = min(min(x) for x in v)
    ax.set(ylabel="final test accuracy", ylim=(max(0.0, lo - 0.15), 1.0),
           title="(b) final test accuracy, mean ± std over seeds")
    return [save_figure(fig, out_dir, "ghost_bn")]


def check(results: dict) -> dict[str, bool]:
    s = results["summary"]
    ghost, large = s["ghost_large"]["final_test_acc"]["mean"], s["bn_large"]["final_test_acc"]["mean"]
    gap = s["bn_large"]["final_train_acc"]["mean"] - large
    out = {"every arm learns (final test accuracy > 30 %)":
           all(s[a]["final_test_acc"]["mean"] > 0.30 for a in ARMS),
           f"BN at batch {results['large_batch']} generalises worse than it fits (train - test "
           ">= 10 points)": gap >= 0.10}
    # Ghost BN's advantage appears only once large-batch BN has trained long enough to
    # overfit: after a few hundred steps the two are within a point of each other.
    if results["steps"] >= FULL_STEPS:
        out["Ghost BN beats plain BN at the large batch in every seed"] = results["paired"][
            f"final test accuracy at batch {results['large_batch']}, Ghost BN − BN"]["every_seed"]
        out[f"Ghost BN (batch {results['large_batch']}) >= BN (batch {results['large_batch']}) "
            "+ 2 points"] = ghost >= large + 0.02
    return out
