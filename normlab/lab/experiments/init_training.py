"""Training deep nets under each initialisation, with and without BN.

A 10-layer tanh MLP and a 30-layer ReLU MLP are trained from each initialisation
(N(0, 0.01²), N(0, 1), Xavier, He). Without BN the final loss depends strongly on the
initialisation (only the matched one trains well); with BN every one trains.
All-zero weights are left out: no normalisation can break that symmetry
(activation-stats shows why). Within a replicate every arm trains on the same subset in the
same order, and every init scales the same standard-normal draw ``z`` of each Linear weight
(``weight = std(init) * z``): arms differ only by the init's scale and the norm layers.
A run that diverges scores validation accuracy 0 (its weights are no longer finite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.common import new_figure, note_interval, progress, save_figure
from normlab.lab.seeding import Seeds, seed_model
from normlab.lab.stats import mean_ci, mean_halfwidth, paired
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
    seeds: int = 3  # replicates (a 95 % t-interval needs >= 2; with 2, t = 12.7)

    @classmethod
    def smoke(cls) -> "Config":
        return cls(epochs=4, n_train=600, seeds=1)


def run(cfg: Config, seeds: Seeds) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    chance = math.log(data.num_classes)
    res: dict[str, list] = {}
    combos = [(n, i, b, s) for n in cfg.nets for i in cfg.inits for b in ("none", "batch")
              for s in range(cfg.seeds)]
    for net, kind, norm, rep in progress(combos, NAME, total=len(combos)):
        act, depth = NETS[net]
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None,
                                        seeds.generator(rep, "data", "subset"))
        model = models.FullyConnectedNet([cfg.width] * (depth - 1), int(np.prod(data.input_shape)),
                                         data.num_classes, norm=None if norm == "none" else norm,
                                         activation=act, rng=seeds.generator(rep, "build"))
        seed_model(model, seeds, rep, kind=kind, tag=net)
        r = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=cfg.lr, batch_size=cfg.batch_size,
                      epochs=cfg.epochs, optimizer="momentum",
                      rng=seeds.generator(rep, "data", "batches"))
        # a diverged run counts as "no progress": its loss is capped at chance level
        final = chance if r["diverged"] else min(float(np.mean(r["train_loss"][-10:])), 10 * chance)
        res.setdefault(f"{net}/{kind}/{norm}", []).append(
            {"final_loss": final,
             "val_acc": r["val_acc"][-1] if r["val_acc"] and not r["diverged"] else 0.0,
             "train_loss": r["train_loss"], "diverged": r["diverged"]})
    metrics = [{"run": k, "seed": i, "final_loss": r["final_loss"], "val_acc": r["val_acc"]}
               for k, rs in res.items() for i, r in enumerate(rs)]
    summary = {k: {"final_loss": mean_ci([r["final_loss"] for r in rs]),
                   "val_acc": mean_ci([r["val_acc"] for r in rs])} for k, rs in res.items()}
    pairs = {}
    for net in cfg.nets:
        spread = {}
        for norm in ("none", "batch"):
            accs = np.array([[r["val_acc"] for r in res[f"{net}/{i}/{norm}"]]
                             for i in cfg.inits])  # (inits, seeds)
            spread[norm] = {"range": accs.max(0) - accs.min(0), "worst": accs.min(0)}
            summary[f"{net}/{norm}/spread_over_inits"] = {
                "val_acc_min": mean_ci(spread[norm]["worst"]),
                "val_acc_range": mean_ci(spread[norm]["range"])}
        pairs[f"{net}: validation-accuracy range over inits, no BN − with BN"] = paired(
            spread["none"]["range"], spread["batch"]["range"])
        pairs[f"{net}: validation accuracy of the worst init, with BN − no BN"] = paired(
            spread["batch"]["worst"], spread["none"]["worst"])
    summary["paired"] = pairs
    return {"runs": res, "metrics": metrics, "summary": summary, "paired": pairs,
            "nets": list(cfg.nets), "inits": list(cfg.inits), "epochs": cfg.epochs}


def plot(results: dict, out_dir) -> list:
    nets, inits = results["nets"], results["inits"]
    fig, axes = new_figure(1, len(nets), size=(5.0, 3.8))
    width = 0.38
    x = np.arange(len(inits))
    for ax, net in zip(axes[0], nets):
        arms = (("none", "C3", "no BN"), ("batch", "C0", "with BN"))
        for j, (norm, color, label) in enumerate(arms):
            per_seed = np.array([[r["val_acc"] for r in results["runs"][f"{net}/{i}/{norm}"]]
                                 for i in inits]).T  # (seeds, inits)
            mean, half = mean_halfwidth(per_seed)
            ax.bar(x + (j - 0.5) * width, mean, width, yerr=half, color=color, label=label,
                   capsize=2)
            for i, kind in enumerate(inits):
                if all(r["diverged"] for r in results["runs"][f"{net}/{kind}/{norm}"]):
                    ax.text(i + (j - 0.5) * width, 0.02, "diverged", rotation=90, ha="center",
                            va="bottom", fontsize=8, color=color)
        ax.set_xticks(x, inits)
        ax.set(title=f"{net}: validation accuracy after training", ylabel="accuracy",
               ylim=(0, 1))
        ax.legend(fontsize=8)
    note_interval(fig, per_seed.shape[0], "bars and whiskers")
    return [save_figure(fig, out_dir, "init_training")]


def check(results: dict) -> dict[str, bool]:
    p = results["paired"]
    out = {}
    for net in results["nets"]:
        # the 30-layer ReLU net needs ~10 epochs to train at all, with or without BN; before
        # that both ranges are chance-level noise and comparing them says nothing
        if net != "relu30" or results.get("epochs", 0) >= 10:
            out[f"{net}: accuracy range over inits smaller with BN, in every seed (paired by "
                "seed)"] = p[f"{net}: validation-accuracy range over inits, no BN − with BN"][
                "every_seed"]
        out[f"{net}: worst init trains better with BN, in every seed (paired by seed)"] = (
            p[f"{net}: validation accuracy of the worst init, with BN − no BN"]["every_seed"])
    return out
