"""BN vs LayerNorm vs GroupNorm vs none over batch sizes 2..128.

BN estimates its statistics from the mini-batch, so at tiny batches training sees very
noisy statistics and evaluation (running averages) no longer matches training (Wu & He
2018, Fig. 1). LayerNorm and GroupNorm normalise each sample on its own and do not care
about the batch size. Batch Renorm (Ioffe 2017) corrects the batch statistics towards the
running ones (``r_max`` 3, ``d_max`` 5), so it suffers far less at tiny batches. Every run
sees the same number of epochs. Within a replicate every
arm trains on the same subset, in the same sample order, from the same Linear weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from normlab import models, nn
from normlab.data import load_dataset
from normlab.lab.common import errorbar, new_figure, note_interval, progress, save_figure
from normlab.lab.seeding import Seeds, seed_model
from normlab.lab.stats import mean_ci, paired
from normlab.lab.training import subset, train_run

NAME = "batch-size"
TITLE = "Normalization vs batch size: BN, Batch Renorm, LayerNorm, GroupNorm, none"
CLAIM = ("BN degrades at tiny batches; LayerNorm and GroupNorm do not, and Batch Renorm beats "
         "BN at batch size 4 by >= 10 points.")

NORMS = ("batch", "renorm", "layer", "group", "none")
LABELS = {"batch": "BatchNorm", "renorm": "Batch Renorm", "layer": "LayerNorm",
          "group": "GroupNorm", "none": "no norm"}
RENORM_BATCH = 4  # Batch Renorm's criterion: BRN(bs 4) >= BN(bs 4) + 10 points


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    batch_sizes: tuple = (2, 4, 8, 16, 32, 64, 128)
    norms: tuple = NORMS
    depth: int = 3  # hidden layers
    width: int = 64
    epochs: int = 4
    lr: float = 0.01  # SGD with momentum 0.9
    r_max: float = 3.0  # Batch Renorm's bounds
    d_max: float = 5.0
    n_train: int = 1000
    seeds: int = 3  # replicates (a 95 % t-interval needs >= 2; with 2, t = 12.7)

    @classmethod
    def smoke(cls) -> "Config":
        # no batch size 4: Batch Renorm's bs-4 criterion is a full-size check
        return cls(batch_sizes=(2, 32), epochs=3, n_train=400, seeds=1)


def _norm(norm: str, cfg: Config):
    if norm == "renorm":
        return partial(nn.BatchRenorm1d, r_max=cfg.r_max, d_max=cfg.d_max)
    return None if norm == "none" else norm


def run(cfg: Config, seeds: Seeds) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    acc: dict[str, dict[int, list]] = {n: {b: [] for b in cfg.batch_sizes} for n in cfg.norms}
    combos = [(n, b, s) for n in cfg.norms for b in cfg.batch_sizes for s in range(cfg.seeds)]
    metrics = []
    for norm, bs, rep in progress(combos, NAME, total=len(combos)):
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None,
                                        seeds.generator(rep, "data", "subset"))
        model = models.FullyConnectedNet([cfg.width] * cfg.depth, int(np.prod(data.input_shape)),
                                         data.num_classes, norm=_norm(norm, cfg),
                                         rng=seeds.generator(rep, "build"))
        seed_model(model, seeds, rep)
        r = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=cfg.lr, batch_size=bs,
                      epochs=cfg.epochs, optimizer="momentum",
                      rng=seeds.generator(rep, "data", "batches"))
        final = r["val_acc"][-1] if r["val_acc"] and not r["diverged"] else 0.0
        acc[norm][bs].append(final)
        metrics.append({"norm": norm, "batch_size": bs, "seed": rep, "val_acc": final,
                        "diverged": r["diverged"]})
    big = max(b for b in cfg.batch_sizes if b <= 32) if any(b <= 32 for b in cfg.batch_sizes) \
        else max(cfg.batch_sizes)
    small = min(cfg.batch_sizes)
    summary, drop = {}, {}
    for norm in cfg.norms:
        summary[norm] = {f"val_acc_bs{b}": mean_ci(acc[norm][b]) for b in cfg.batch_sizes}
        drop[norm] = np.asarray(acc[norm][big]) - np.asarray(acc[norm][small])
        summary[norm]["drop_small_vs_large"] = mean_ci(drop[norm])
    pairs = {}
    if "batch" in cfg.norms:
        for other in ("layer", "group"):
            if other in cfg.norms:
                pairs[f"validation accuracy at batch size {small}, {LABELS[other]} − BatchNorm"] = \
                    paired(acc[other][small], acc["batch"][small])
                pairs[f"accuracy lost from batch {big} to {small}, BatchNorm − {LABELS[other]}"] = \
                    paired(drop["batch"], drop[other])
    if "batch" in cfg.norms and "renorm" in cfg.norms:
        pairs[f"validation accuracy at batch size {small}, Batch Renorm − BatchNorm"] = \
            paired(acc["renorm"][small], acc["batch"][small])
    if "batch" in cfg.norms and "renorm" in cfg.norms and RENORM_BATCH in cfg.batch_sizes \
            and RENORM_BATCH != small:
        pairs[f"validation accuracy at batch size {RENORM_BATCH}, Batch Renorm − BatchNorm"] = \
            paired(acc["renorm"][RENORM_BATCH], acc["batch"][RENORM_BATCH])
    summary["paired"] = pairs
    return {"acc": {n: {str(b): v for b, v in d.items()} for n, d in acc.items()},
            "batch_sizes": list(cfg.batch_sizes), "norms": list(cfg.norms), "metrics": metrics,
            "summary": summary, "paired": pairs, "small": small, "large": big}


def plot(results: dict, out_dir) -> list:
    fig, axes = new_figure(1, 1, size=(8.6, 4.4))  # wide enough for the interval note
    ax = axes[0][0]
    bss = results["batch_sizes"]
    for i, norm in enumerate(results["norms"]):
        v = np.array([results["acc"][norm][str(b)] for b in bss])  # (batch sizes, seeds)
        errorbar(ax, bss, v.T, LABELS[norm], ms=4, color=f"C{i}")
    # accuracies live in [0, 1]; with 2 seeds a t-interval can reach far outside it
    ax.set(xscale="log", xlabel="batch size", ylabel="validation accuracy (eval mode)",
           title="same epochs at every batch size", ylim=(0, 1.02))
    ax.set_xticks(bss, [str(b) for b in bss])
    ax.minorticks_off()  # the log axis' minor labels (3x10^0, ...) overlap the batch sizes
    ax.legend(fontsize=7, loc="center right")  # clear of every curve
    note_interval(fig, len(results["acc"][results["norms"][0]][str(bss[0])]), "points and bars")
    return [save_figure(fig, out_dir, "batch_size")]


def check(results: dict) -> dict[str, bool]:
    p = results["paired"]
    small, big = results["small"], results["large"]
    out = {}
    for other in ("layer", "group"):
        key = f"validation accuracy at batch size {small}, {LABELS[other]} − BatchNorm"
        if key in p:
            out[f"at batch size {small}, {LABELS[other]} beats BatchNorm in every seed "
                "(paired by seed)"] = p[key]["every_seed"]
            out[f"BatchNorm loses more accuracy than {LABELS[other]} from batch {big} down to "
                f"{small}, in every seed (paired by seed)"] = p[
                f"accuracy lost from batch {big} to {small}, BatchNorm − {LABELS[other]}"][
                "every_seed"]
    key = f"validation accuracy at batch size {small}, Batch Renorm − BatchNorm"
    if key in p and small != RENORM_BATCH:
        out[f"at batch size {small}, Batch Renorm beats BatchNorm in every seed (paired by "
            "seed)"] = p[key]["every_seed"]
    key = f"validation accuracy at batch size {RENORM_BATCH}, Batch Renorm − BatchNorm"
    if key in p:
        out[f"at batch size {RENORM_BATCH}, Batch Renorm >= BatchNorm + 10 points (mean over "
            "seeds)"] = p[key]["mean"] >= 0.10
        out[f"at batch size {RENORM_BATCH}, Batch Renorm beats BatchNorm in every seed (paired "
            "by seed)"] = p[key]["every_seed"]
    return out
