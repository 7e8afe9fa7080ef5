"""Santurkar et al. (2018), Fig. 4: BN makes the loss landscape smoother.

Every ``probe_every`` steps, from the current weights, take steps of several sizes ``eta``
along the negative gradient of a fixed probe batch and measure (a) the range of the loss
over those points and (b) how far the gradient there is from the gradient at the start
(``max_eta ||g(w - eta g) - g(w)||``). With BN both are far smaller: the gradient is more
predictive, so larger steps are safe. The probe runs in training mode (the loss the
optimizer sees) and restores weights, gradients and BN running statistics afterwards, so it
does not change the run.

Setup: six hidden ReLU layers of 100 units on MNIST-1D, He initialisation, plain SGD at
lr 0.1, batch 100, 2,000 steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normlab import nn
from normlab.lab.common import mean_std, new_figure, progress, save_figure
from normlab.lab.seeding import Seeds
from normlab.lab.setups import bn_layers, mlp, mnist1d_full
from normlab.lab.stats import paired
from normlab.lab.training import train_run

NAME = "loss-landscape"
TITLE = "Santurkar et al. 2018, Fig. 4: BN smooths the loss landscape"
CLAIM = ("Along the gradient direction, the loss varies less (median range <= 0.5x) and the "
         "gradient changes less (median <= 0.6x) with BN than without.")

ARMS = ("none", "batch")
LABELS = {"none": "no BN", "batch": "BN"}


@dataclass(frozen=True)
class Config:
    depth: int = 6  # hidden ReLU layers
    width: int = 100
    steps: int = 2000
    batch_size: int = 100
    lr: float = 0.1  # plain SGD
    etas: tuple = (0.05, 0.1, 0.2, 0.4)  # step sizes along the gradient
    probe_every: int = 100
    seeds: int = 3

    @classmethod
    def smoke(cls) -> "Config":
        return cls(steps=400, seeds=1)


def loss_and_grads(model, crit, X, y):
    """Training-mode loss on ``(X, y)`` and a copy of every gradient, flattened."""
    model.train()
    loss = float(crit(model(X), y))
    model.backward(crit.backward())
    return loss, np.concatenate([g.ravel() for _, _, g in model.named_parameters()]).astype(np.float64)


def _landscape_probe(X, y, etas, every):
    crit = nn.CrossEntropyLoss()

    def probe(model, step):
        if step % every:
            return None
        mods = [(m, k) for m in model.modules() for k in m.params]
        w0 = [m.params[k].copy() for m, k in mods]
        g_saved = [m.grads[k].copy() for m, k in mods]
        buffers = [(m, {k: v.copy() for k, v in m.buffers.items()}) for m in bn_layers(model)]
        try:
            loss0, g0 = loss_and_grads(model, crit, X, y)
            grads0 = [m.grads[k].copy() for m, k in mods]
            losses, changes = [], []
            for eta in etas:
                for (m, k), w, g in zip(mods, w0, grads0):
                    m.params[k] = (w - eta * g).astype(w.dtype)
                loss, g = loss_and_grads(model, crit, X, y)
                losses.append(loss)
                changes.append(float(np.linalg.norm(g - g0)))
        finally:
            for (m, k), w, g in zip(mods, w0, g_saved):
                m.params[k], m.grads[k] = w, g
            for m, buf in buffers:
                m.buffers.update(buf)
        finite = np.all(np.isfinite(losses)) and np.all(np.isfinite(changes))
        return {"step": step, "loss0": loss0, "losses": losses, "grad_changes": changes,
                "grad_norm": float(np.linalg.norm(g0)),
                "loss_range": float(np.ptp(losses)) if finite else None,
                "grad_change": float(max(changes)) if finite else None}

    return probe


def run(cfg: Config, seeds: Seeds) -> dict:
    train, test = mnist1d_full()
    runs: dict[str, list] = {a: [] for a in ARMS}
    combos = [(s, a) for s in range(cfg.seeds) for a in ARMS]
    for seed, arm in progress(combos, NAME, total=len(combos)):
        idx = seeds.generator(seed, "data", "probe").choice(len(train[0]), cfg.batch_size,
                                                            replace=False)
        model = mlp([cfg.width] * cfg.depth, seeds, seed, norm=None if arm == "none" else arm,
                    init="he")
        r = train_run(model, train, test, lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.steps,
                      eval_every=cfg.probe_every, optimizer="sgd",
                      rng=seeds.generator(seed, "data", "batches"),
                      probe=_landscape_probe(train[0][idx], train[1][idx], cfg.etas,
                                             cfg.probe_every))
        probes = [p for p in r["probes"] if p is not None]
        ranges = [p["loss_range"] for p in probes if p["loss_range"] is not None]
        changes = [p["grad_change"] for p in probes if p["grad_change"] is not None]
        runs[arm].append({"seed": seed, "eval_step": r["eval_step"], "test_acc": r["val_acc"],
                          "diverged": r["diverged"], "probes": probes,
                          "median_loss_range": float(np.median(ranges)) if ranges else None,
                          "median_grad_change": float(np.median(changes)) if changes else None})
    metrics = [{"arm": a, "seed": r["seed"], "step": p["step"], "loss_range": p["loss_range"],
                "grad_change": p["grad_change"]} for a, rs in runs.items() for r in rs
               for p in r["probes"]]
    summary = {a: {k: mean_std([r[k] for r in rs])
                   for k in ("median_loss_range", "median_grad_change")} for a, rs in runs.items()}
    for a, rs in runs.items():
        summary[a]["final_test_acc"] = mean_std([r["test_acc"][-1] for r in rs])
    pairs = {}
    for k, limit in (("median_loss_range", 0.5), ("median_grad_change", 0.6)):
        ratios = [b[k] / n[k] for b, n in zip(runs["batch"], runs["none"])]  # per seed
        summary[f"ratio_{k}"] = mean_std(ratios)
        pairs[f"{k.replace('_', ' ')}: {limit} − (BN / no BN)"] = paired(
            [limit] * len(ratios), ratios)
    summary["paired"] = pairs
    return {"runs": runs, "metrics": metrics, "summary": summary, "paired": pairs,
            "etas": list(cfg.etas),
            "lr": cfg.lr}


def plot(results: dict, out_dir) -> list:
    fig, axes = new_figure(1, 3, size=(4.5, 3.6))
    for arm, color in (("none", "C3"), ("batch", "C0")):
        rs = results["runs"][arm]
        steps = [p["step"] for p in rs[0]["probes"]]
        lo = np.mean([[min(p["losses"]) for p in r["probes"]] for r in rs], 0)
        hi = np.mean([[max(p["losses"]) for p in r["probes"]] for r in rs], 0)
        axes[0][0].fill_between(steps, lo, hi, color=color, alpha=0.35, label=LABELS[arm])
        axes[0][0].plot(steps, [p["loss0"] for p in rs[0]["probes"]], color=color, lw=0.8)
        ch = np.mean([[p["grad_change"] for p in r["probes"]] for r in rs], 0)
        axes[0][1].plot(steps, ch, color=color, marker="o", ms=3, label=LABELS[arm])
        acc = np.mean([r["test_acc"] for r in rs], 0)
        axes[0][2].plot(rs[0]["eval_step"], acc, color=color, label=LABELS[arm])
    etas = ", ".join(str(e) for e in results["etas"])
    axes[0][0].set(xlabel="step", ylabel="loss on the probe batch", yscale="log",
                   title=f"(a) loss range along the gradient\n(eta in {{{etas}}}; line: eta = 0)")
    axes[0][1].set(xlabel="step", ylabel="max over eta of ||g(w - eta g) - g(w)||", yscale="log",
                   title="(b) gradient change along the gradient")
    axes[0][2].set(xlabel="step", ylabel="test accuracy", ylim=(0, 1),
                   title=f"(c) test accuracy (plain SGD, lr {results['lr']})")
    for ax in axes[0]:
        ax.legend(fontsize=8)
    return [save_figure(fig, out_dir, "loss_landscape")]


def check(results: dict) -> dict[str, bool]:
    s = results["summary"]
    return {
        "median loss range along the gradient with BN <= 0.5 x without":
            s["batch"]["median_loss_range"]["mean"] <= 0.5 * s["none"]["median_loss_range"]["mean"],
        "median gradient change along the gradient with BN <= 0.6 x without":
            s["batch"]["median_grad_change"]["mean"] <= 0.6 * s["none"]["median_grad_change"]["mean"],
    }
