"""Training deep nets under each initialisation, with and without BN.

A 10-layer tanh MLP and a 30-layer ReLU MLP are trained from each initialisation
(N(0, 0.01²), N(0, 1), Xavier, He). Without BN the final loss depends strongly on the
initialisation (only the matched one trains well); with BN every one trains.
All-zero weights are left out: no normalisation can break that symmetry
(activation-stats shows why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.common import mean_std, new_figure, progress, reinit_linear_layers, save_figure
from normlab.lab.training import subset, train_run

NAME = "init-training"
TITLE = "Training under each initialisation: 10-layer tanh and 30-layer ReLU, BN vs none"
CLAIM = "Without BN the outcome depends on the initialisation; BN removes the sensitivity."

INITS = ("small", "normal", "xavier", "he")
NETS = {"tanh10": ("tanh", 10), "relu30": ("relu", 30)}


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    nets: tuple = ("tanh10", "relu30")
    inits: tuple = INITS
    width: int = 64
    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.01  # SGD with momentum 0.9
    n_train: int = 1000
    seeds: int = 2

    @classmethod
    def smoke(cls) -> "Config":
        return cls(epochs=4, n_train=600, seeds=1)


def run(cfg: Config, rng: np.random.Generator) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    chance = math.log(data.num_classes)
    res: dict[str, list] = {}
    combos = [(n, i, b, s) for n in cfg.nets for i in cfg.inits for b in ("none", "batch")
              for s in range(cfg.seeds)]
    for net, kind, norm, _ in progress(combos, NAME, total=len(combos)):
        act, depth = NETS[net]
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None, rng)
        model = models.FullyConnectedNet([cfg.width] * (depth - 1), int(np.prod(data.input_shape)),
                                         data.num_classes, norm=None if norm == "none" else norm,
                                         activation=act, rng=rng)
        reinit_linear_layers(model, kind, rng)
        r = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=cfg.lr, batch_size=cfg.batch_size,
                      epochs=cfg.epochs, optimizer="momentum", rng=rng)
        # a diverged run counts as "no progress": its loss is capped at chance level
        final = chance if r["diverged"] else min(float(np.mean(r["train_loss"][-10:])), 10 * chance)
        res.setdefault(f"{net}/{kind}/{norm}", []).append(
            {"final_loss": final, "val_acc": r["val_acc"][-1] if r["val_acc"] else 0.0,
             "train_loss": r["train_loss"], "diverged": r["diverged"]})
    metrics = [{"run": k, "seed": i, "final_loss": r["final_loss"], "val_acc": r["val_acc"]}
               for k, rs in res.items() for i, r in enumerate(rs)]
    summary = {k: {"final_loss": mean_std([r["final_loss"] for r in rs]),
                   "val_acc": mean_std([r["val_acc"] for r in rs])} for k, rs in res.items()}
    for net in cfg.nets:
        for norm in ("none", "batch"):
            accs = [summary[f"{net}/{i}/{norm}"]["val_acc"]["mean"] for i in cfg.inits]
            summary[f"{net}/{norm}/spread_over_inits"] = {
                "val_acc_min": float(min(accs)), "val_acc_max": float(max(accs)),
                "val_acc_range": float(max(accs) - min(accs))}
    return {"runs": res, "metrics": metrics, "summary": summary, "nets": list(cfg.nets),
            "inits": list(cfg.inits)}


def plot(results: dict, out_dir) -> list:
    nets, inits = results["nets"], results["inits"]
    fig, axes = new_figure(1, len(nets), size=(5.0, 3.8))
    width = 0.38
    x = np.arange(len(inits))
    for ax, net in zip(axes[0], nets):
        for j, (norm, color, label) in enumerate((("none", "C3", "no BN"), ("batch", "C0", "with BN"))):
            s = [results["summary"][f"{net}/{i}/{norm}"]["val_acc"] for i in inits]
            ax.bar(x + (j - 0.5) * width, [v["mean"] for v in s], width, yerr=[v["std"] for v in s],
                   color=color, label=label, capsize=2)
            for i, kind in enumerate(inits):
                if all(r["diverged"] for r in results["runs"][f"{net}/{kind}/{norm}"]):
                    ax.text(i + (j - 0.5) * width, 0.02, "diverged", rotation=90, ha="center",
                            va="bottom", fontsize=8, color=color)
        ax.set_xticks(x, inits)
        ax.set(title=f"{net}: validation accuracy after training", ylabel="accuracy", ylim=(0, 1))
        ax.legend()
    return [save_figure(fig, out_dir, "init_training")]


def check(results: dict) -> dict[str, bool]:
    s = results["summary"]
    out = {}
    for net in results["nets"]:
        bn = s[f"{net}/batch/spread_over_inits"]
        no = s[f"{net}/none/spread_over_inits"]
        out[f"{net}: accuracy range over inits smaller with BN"] = bn["val_acc_range"] < no["val_acc_range"]
        out[f"{net}: worst init trains better with BN"] = bn["val_acc_min"] > no["val_acc_min"]
    return out
