"""Wu & Johnson (2021), "Rethinking 'Batch' in BatchNorm", §3: EMA vs precise statistics.

BN evaluates with running statistics kept as an exponential moving average (EMA,
``momentum=0.1``: about the last ten batches) while the weights keep moving. When they move
fast (early in training, at a high learning rate) the EMA describes weights that no longer
exist, and the network is evaluated with the wrong normalisation. "Precise BN" re-estimates
the statistics under the current weights over many training batches
(``normlab.train.update_bn_stats``, estimators "average" and "population"). At chosen steps
of a small-batch and a large-batch run, the same weights are evaluated with both.

Setup: three hidden ReLU layers of 100 units on MNIST-1D with BN, SGD with momentum 0.9,
3,000 steps: batch 32 at lr 0.05 and batch 1024 at lr 0.2. Re-estimation uses the whole
training set in batches of the run's size (drop last).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from normlab.data import DataLoader
from normlab.lab.common import mean_std, new_figure, progress, save_figure
from normlab.lab.seeding import Seeds
from normlab.lab.setups import accuracy, bn_layers, mlp, mnist1d_full
from normlab.lab.stats import paired
from normlab.lab.training import train_run
from normlab.train import update_bn_stats

NAME = "precise-bn"
TITLE = "Wu & Johnson 2021: EMA running statistics lag; precise (re-estimated) BN statistics do not"
CLAIM = ("Early in training and at a high learning rate, evaluating with the EMA running "
         "statistics costs accuracy that re-estimated ('precise') statistics recover; the gap "
         "closes as training settles, and both estimators of precise BN agree.")

STATS = ("ema", "average", "population")
LABELS = {"ema": "EMA (running stats)", "average": "precise, average",
          "population": "precise, population"}
EARLY_STEPS = 100  # evaluations at or before this step count as "early"


@dataclass(frozen=True)
class Config:
    depth: int = 3  # hidden ReLU layers
    width: int = 100
    steps: int = 3000
    runs: tuple = ("32:0.05", "1024:0.2")  # batch size : lr (SGD, momentum 0.9)
    eval_steps: tuple = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 3000)
    seeds: int = 3

    @classmethod
    def smoke(cls) -> "Config":
        return cls(steps=200, runs=("32:0.05", "512:0.2"), eval_steps=(5, 10, 20, 50, 100, 200),
                   seeds=1)


def _early_key(run: str) -> str:
    """Label of the paired comparison "precise minus EMA, early" for run ``"bs:lr"``."""
    return f"batch {run.split(':')[0]}, steps <= {EARLY_STEPS}: accuracy, precise − EMA"


def _stat_gap(model, reestimated) -> float:
    """Largest relative difference of running mean / std between two copies, over layers."""
    out = 0.0
    for a, b in zip(bn_layers(model), bn_layers(reestimated)):
        sd = np.sqrt(b.buffers["running_var"] + b.eps)
        out = max(out, float(np.max(np.abs(a.buffers["running_mean"] - b.buffers["running_mean"])
                                    / sd)),
                  float(np.max(np.abs(np.sqrt(a.buffers["running_var"] + a.eps) / sd - 1))))
    return out


def _precise_probe(train, test, batch_size: int, eval_steps, rng):
    """At ``eval_steps``: test accuracy with EMA and with re-estimated statistics."""

    def probe(model, step):
        if step not in eval_steps:
            return None
        out = {"step": step, "ema": accuracy(model, *test)}
        for est in ("average", "population"):
            m = copy.deepcopy(model)
            update_bn_stats(m, DataLoader(*train, batch_size=batch_size, shuffle=True,
                                          drop_last=True, rng=rng), estimator=est)
            out[est] = accuracy(m, *test)
            out[f"stat_gap_{est}"] = _stat_gap(model, m)
        return out

    return probe


def run(cfg: Config, seeds: Seeds) -> dict:
    train, test = mnist1d_full()
    eval_steps = tuple(s for s in cfg.eval_steps if s <= cfg.steps)
    runs: dict[str, list] = {r: [] for r in cfg.runs}
    combos = [(s, r) for s in range(cfg.seeds) for r in cfg.runs]
    for seed, key in progress(combos, NAME, total=len(combos)):
        bs, lr = key.split(":")
        model = mlp([cfg.width] * cfg.depth, seeds, seed, norm="batch")
        r = train_run(model, train, test, lr=float(lr), batch_size=int(bs), steps=cfg.steps,
                      eval_every=cfg.steps, optimizer="momentum",
                      rng=seeds.generator(seed, "data", "batches", key),
                      probe=_precise_probe(train, test, int(bs), eval_steps,
                                           seeds.generator(seed, "data", "reestimate", key)))
        points = [p for p in r["probes"] if p is not None]
        rec = {"seed": seed, "diverged": r["diverged"], "step": [p["step"] for p in points]}
        for k in (*STATS, "stat_gap_average", "stat_gap_population"):
            rec[k] = [p[k] for p in points]
        runs[key].append(rec)
    metrics = [{"run": k, "seed": r["seed"], "step": s, **{st: r[st][i] for st in STATS}}
               for k, rs in runs.items() for r in rs for i, s in enumerate(r["step"])]
    summary, pairs = {}, {}
    for key, rs in runs.items():
        early = [i for i, s in enumerate(rs[0]["step"]) if s <= EARLY_STEPS]
        summary[key] = {f"final_{st}_acc": mean_std([r[st][-1] for r in rs]) for st in STATS}
        for est in ("average", "population"):  # per seed: precise minus EMA
            summary[key][f"early_gain_{est}"] = mean_std(
                [np.mean([r[est][i] - r["ema"][i] for i in early]) for r in rs])
            summary[key][f"final_gain_{est}"] = mean_std([r[est][-1] - r["ema"][-1] for r in rs])
        summary[key]["estimators_final_diff"] = mean_std(
            [abs(r["average"][-1] - r["population"][-1]) for r in rs])
        early_gain = [np.mean([r["population"][i] - r["ema"][i] for i in early]) for r in rs]
        pairs[_early_key(key)] = paired(early_gain, [0.0] * len(rs))
    summary["paired"] = pairs
    return {"runs": runs, "metrics": metrics, "summary": summary, "paired": pairs,
            "steps": cfg.steps}


def plot(results: dict, out_dir) -> list:
    runs = results["runs"]
    keys = list(runs)
    fig, axes = new_figure(1, len(keys) + 1, size=(4.3, 3.7))
    for ax, key in zip(axes[0], keys):
        rs = runs[key]
        bs, lr = key.split(":")
        for i, st in enumerate(STATS):
            ax.plot(rs[0]["step"], np.mean([r[st] for r in rs], 0), ("-", "--", ":")[i],
                    marker="o", ms=3, color=f"C{i}", label=LABELS[st])
        ax.set(xscale="log", xlabel="step", ylabel="test accuracy", ylim=(0, 1),
               title=f"batch {bs}, lr {lr}: same weights,\nthree sets of BN statistics")
        ax.legend(fontsize=8, loc="lower right")
    ax = axes[0][-1]
    for i, key in enumerate(keys):
        rs = runs[key]
        bs, lr = key.split(":")
        ax.plot(rs[0]["step"], np.mean([r["stat_gap_population"] for r in rs], 0), marker="o",
                ms=3, color=f"C{i + 3}", label=f"batch {bs}, lr {lr}")
    ax.set(xscale="log", yscale="log", xlabel="step",
           ylabel="max |EMA - precise| / precise std",
           title="how far the EMA statistics\nare from the precise ones")
    ax.legend(fontsize=8)
    return [save_figure(fig, out_dir, "precise_bn")]


def check(results: dict) -> dict[str, bool]:
    s = results["summary"]
    keys = list(results["runs"])
    large = max(keys, key=lambda k: int(k.split(":")[0]))
    out = {
        f"early (step <= {EARLY_STEPS}), batch {large.split(':')[0]}: precise statistics beat the "
        "EMA on average": s[large]["early_gain_population"]["mean"] > 0
        and s[large]["early_gain_average"]["mean"] > 0,
        f"early, batch {large.split(':')[0]}: precise (population) beats the EMA in every seed":
        results["paired"][_early_key(large)]["every_seed"],
    }
    for key in keys:
        g = s[key]
        out[f"batch {key.split(':')[0]}: the EMA's early deficit exceeds its final one"] = (
            g["early_gain_population"]["mean"] > g["final_gain_population"]["mean"])
        out[f"batch {key.split(':')[0]}: the two precise estimators agree within 1 point at "
            "the end"] = g["estimators_final_diff"]["mean"] <= 0.01
    return out
