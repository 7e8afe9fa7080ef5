"""Sensitivity to the weight-initialisation scale, with and without BN (CS231n assignment 2).

An 8-layer MLP has every weight drawn from N(0, s²) for 20 log-spaced scales s in
[1e-4, 1]. Without BN only a narrow band of scales trains at all (tiny weights kill the
signal, large ones blow it up); with BN the network trains over almost the whole range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.common import mean_std, new_figure, progress, reinit_linear_layers, save_figure
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
    seeds: int = 2
    good_acc: float = 0.8  # a scale "trains" when its best validation accuracy reaches this

    @classmethod
    def smoke(cls) -> "Config":
        return cls(n_scales=5, epochs=4, n_train=400, seeds=1, good_acc=0.5)


def run(cfg: Config, rng: np.random.Generator) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    scales = np.logspace(cfg.min_exp, cfg.max_exp, cfg.n_scales)
    res: dict[str, dict[str, list]] = {}
    combos = [(s, n, k) for s in scales for n in ("none", "batch") for k in range(cfg.seeds)]
    for scale, norm, _ in progress(combos, NAME, total=len(combos)):
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None, rng)
        model = models.FullyConnectedNet([cfg.width] * (cfg.layers - 1),
                                         int(np.prod(data.input_shape)), data.num_classes,
                                         norm=None if norm == "none" else norm, rng=rng)
        reinit_linear_layers(model, "scale", rng, scale=float(scale))
        r = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=cfg.lr, batch_size=cfg.batch_size,
                      epochs=cfg.epochs, optimizer="adam", rng=rng)
        d = res.setdefault(norm, {"best_train_acc": [], "best_val_acc": [], "final_loss": []})
        d["best_train_acc"].append(max(r["train_acc"]) if r["train_acc"] else 0.0)
        d["best_val_acc"].append(max(r["val_acc"]) if r["val_acc"] else 0.0)
        d["final_loss"].append(float(np.mean(r["train_loss"][-10:])) if not r["diverged"]
                               else float("nan"))
    per_scale = {}
    for norm, d in res.items():
        per_scale[norm] = {k: np.asarray(v).reshape(cfg.n_scales, cfg.seeds) for k, v in d.items()}
    metrics = [{"scale": float(s), "norm": norm,
                **{k: float(np.nanmean(v[i])) for k, v in per_scale[norm].items()}}
               for norm in per_scale for i, s in enumerate(scales)]
    summary = {}
    for norm, d in per_scale.items():
        best = d["best_val_acc"].mean(1)
        summary[norm] = {"mean_best_val_acc_over_scales": float(best.mean()),
                         "scales_reaching_good_val_acc": int((best >= cfg.good_acc).sum()),
                         "best_val_acc_spread": float(best.max() - best.min()),
                         "best_val_acc_at_best_scale": mean_std(d["best_val_acc"][best.argmax()])}
    return {"scales": scales.tolist(), "metrics": metrics, "summary": summary,
            "good_acc": cfg.good_acc,
            "curves": {n: {k: v.tolist() for k, v in d.items()} for n, d in per_scale.items()}}


def plot(results: dict, out_dir) -> list:
    scales = np.asarray(results["scales"])
    fig, axes = new_figure(1, 3, size=(4.4, 3.6))
    panels = (("best_train_acc", "best training accuracy"), ("best_val_acc", "best validation accuracy"),
              ("final_loss", "final training loss"))
    for ax, (key, title) in zip(axes[0], panels):
        for norm, color, label in (("none", "C3", "no BN"), ("batch", "C0", "with BN")):
            v = np.asarray(results["curves"][norm][key], dtype=float)
            ax.errorbar(scales, np.nanmean(v, 1), yerr=np.nanstd(v, 1), color=color, marker="o",
                        ms=3, capsize=2, label=label)
        ax.set(xscale="log", xlabel="weight initialisation scale", title=title)
        if key == "final_loss":
            ax.set_yscale("log")
        ax.legend()
    return [save_figure(fig, out_dir, "weight_scale")]


def check(results: dict) -> dict[str, bool]:
    s = results["summary"]
    return {
        f"more scales reach {results['good_acc']:.0%} validation accuracy with BN":
            s["batch"]["scales_reaching_good_val_acc"] > s["none"]["scales_reaching_good_val_acc"],
        "mean best validation accuracy over scales higher with BN":
            s["batch"]["mean_best_val_acc_over_scales"] > s["none"]["mean_best_val_acc_over_scales"],
    }
