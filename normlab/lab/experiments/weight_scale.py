"""Sensitivity to the weight-initialisation scale, with and without BN (CS231n assignment 2).

An 8-layer MLP has every weight drawn from N(0, s²) for 20 log-spaced scales s in
[1e-4, 1]. Without BN only a narrow band of scales trains at all (tiny weights kill the
signal, large ones blow it up); with BN the network trains over almost the whole range.

Within a replicate every scale and both arms share the data, the batch order and the
standard-normal draw ``z`` of each Linear weight (``weight = s * z``): the arms differ only
by the scale and the norm layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.common import errorbar, new_figure, note_interval, progress, save_figure
from normlab.lab.seeding import Seeds, seed_model
from normlab.lab.stats import mean_ci, paired
from normlab.lab.training import subset, train_run

NAME = "weight-scale"
TITLE = "Sensitivity to the weight-initialisation scale, BN vs none"
CLAIM = "BN is far less sensitive to the scale of the initial weights."


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    layers: int = 8  # linear layers (7 hidden)
    width: int = 50
    n_scales: int = 20
    min_exp: float = -4.0  # scales 10**min_exp .. 10**max_exp
    max_exp: float = 0.0
    epochs: int = 8
    batch_size: int = 50
    lr: float = 1e-3  # Adam, as in the course notebook
    n_train: int = 1000
    seeds: int = 3  # replicates (a 95 % t-interval needs >= 2; with 2, t = 12.7)
    good_acc: float = 0.8  # a scale "trains" when its best validation accuracy reaches this

    @classmethod
    def smoke(cls) -> "Config":
        return cls(n_scales=5, epochs=4, n_train=400, seeds=1, good_acc=0.5)


def run(cfg: Config, seeds: Seeds) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    scales = np.logspace(cfg.min_exp, cfg.max_exp, cfg.n_scales)
    res: dict[str, dict[str, list]] = {}
    combos = [(s, n, k) for n in ("none", "batch") for s in scales for k in range(cfg.seeds)]
    for scale, norm, rep in progress(combos, NAME, total=len(combos)):
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None,
                                        seeds.generator(rep, "data", "subset"))
        model = models.FullyConnectedNet([cfg.width] * (cfg.layers - 1),
                                         int(np.prod(data.input_shape)), data.num_classes,
                                         norm=None if norm == "none" else norm,
                                         rng=seeds.generator(rep, "build"))
        seed_model(model, seeds, rep, kind="scale", scale=float(scale))
        r = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=cfg.lr, batch_size=cfg.batch_size,
                      epochs=cfg.epochs, optimizer="adam",
                      rng=seeds.generator(rep, "data", "batches"))
        d = res.setdefault(norm, {"best_train_acc": [], "best_val_acc": [], "final_loss": []})
        d["best_train_acc"].append(max(r["train_acc"]) if r["train_acc"] else 0.0)
        d["best_val_acc"].append(max(r["val_acc"]) if r["val_acc"] else 0.0)
        d["final_loss"].append(float(np.mean(r["train_loss"][-10:])) if not r["diverged"]
                               else float("nan"))
    per_scale = {}  # norm -> measure -> (n_scales, seeds)
    for norm, d in res.items():
        per_scale[norm] = {k: np.asarray(v).reshape(cfg.n_scales, cfg.seeds) for k, v in d.items()}
    metrics = [{"scale": float(s), "norm": norm, "seed": k,
                **{m: float(v[i, k]) for m, v in per_scale[norm].items()}}
               for norm in per_scale for i, s in enumerate(scales) for k in range(cfg.seeds)]
    summary, per_seed = {}, {}
    for norm, d in per_scale.items():
        best = d["best_val_acc"]  # (n_scales, seeds)
        per_seed[norm] = {"n_scales": (best >= cfg.good_acc).sum(0).astype(float),
                          "mean_best": best.mean(0)}
        summary[norm] = {
            "scales_reaching_good_val_acc": mean_ci(per_seed[norm]["n_scales"]),
            "mean_best_val_acc_over_scales": mean_ci(per_seed[norm]["mean_best"]),
            "best_val_acc_at_best_scale": mean_ci(best[best.mean(1).argmax()])}
    bn, no = per_seed["batch"], per_seed["none"]
    pairs = {
        f"number of scales reaching {cfg.good_acc:.0%} validation accuracy, with BN − no BN":
            paired(bn["n_scales"], no["n_scales"]),
        "mean best validation accuracy over scales, with BN − no BN":
            paired(bn["mean_best"], no["mean_best"]),
    }
    summary["paired"] = pairs
    return {"scales": scales.tolist(), "metrics": metrics, "summary": summary, "paired": pairs,
            "good_acc": cfg.good_acc,
            "curves": {n: {k: v.tolist() for k, v in d.items()} for n, d in per_scale.items()}}


def plot(results: dict, out_dir) -> list:
    scales = np.asarray(results["scales"])
    fig, axes = new_figure(1, 3, size=(4.4, 3.8))
    panels = (("best_train_acc", "best training accuracy"),
              ("best_val_acc", f"best validation accuracy\n(dotted: {results['good_acc']:.0%})"),
              ("final_loss", "final training loss"))
    for ax, (key, title) in zip(axes[0], panels):
        for norm, color, label in (("none", "C3", "no BN"), ("batch", "C0", "with BN")):
            v = np.asarray(results["curves"][norm][key], dtype=float)  # (n_scales, seeds)
            errorbar(ax, scales, v.T, label, color=color)
        ax.set(xscale="log", xlabel="weight initialisation scale", title=title)
        if key == "final_loss":
            ax.set_yscale("log")
        else:  # accuracy: the t-interval of a bounded measure can pass 1; the axis stops there
            ax.axhline(results["good_acc"], color="grey", ls=":", lw=1)
            ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)
    note_interval(fig, np.asarray(results["curves"]["none"]["best_val_acc"]).shape[1],
                  "points and bars")
    return [save_figure(fig, out_dir, "weight_scale")]


def check(results: dict) -> dict[str, bool]:
    p = results["paired"]
    good = results["good_acc"]
    return {
        f"with BN more scales reach {good:.0%} validation accuracy, in every seed (paired by "
        "seed)": p[f"number of scales reaching {good:.0%} validation accuracy, with BN − no BN"][
            "every_seed"],
        "with BN the mean best validation accuracy over scales is higher, in every seed "
        "(paired by seed)": p["mean best validation accuracy over scales, with BN − no BN"][
            "every_seed"],
    }
