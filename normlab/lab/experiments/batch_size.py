"""BN vs LayerNorm vs GroupNorm vs none over batch sizes 2..128.

BN estimates its statistics from the mini-batch, so at tiny batches training sees very
noisy statistics and evaluation (running averages) no longer matches training (Wu & He
2018, Fig. 1). LayerNorm and GroupNorm normalise each sample on its own and do not care
about the batch size. Every run sees the same number of epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.common import mean_std, new_figure, progress, save_figure
from normlab.lab.training import subset, train_run

NAME = "batch-size"
TITLE = "Normalization vs batch size: BN, LayerNorm, GroupNorm, none"
CLAIM = "BN degrades at tiny batches; LayerNorm and GroupNorm do not."

NORMS = ("batch", "layer", "group", "none")
LABELS = {"batch": "BatchNorm", "layer": "LayerNorm", "group": "GroupNorm", "none": "no norm"}


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    batch_sizes: tuple = (2, 4, 8, 16, 32, 64, 128)
    norms: tuple = NORMS
    depth: int = 3  # hidden layers
    width: int = 64
    epochs: int = 4
    lr: float = 0.01  # SGD with momentum 0.9
    n_train: int = 1000
    seeds: int = 2

    @classmethod
    def smoke(cls) -> "Config":
        return cls(batch_sizes=(2, 32), epochs=3, n_train=400, seeds=1)


def run(cfg: Config, rng: np.random.Generator) -> dict:
    data = load_dataset(cfg.dataset, seed=0)
    acc: dict[str, dict[int, list]] = {n: {b: [] for b in cfg.batch_sizes} for n in cfg.norms}
    combos = [(n, b, s) for n in cfg.norms for b in cfg.batch_sizes for s in range(cfg.seeds)]
    metrics = []
    for norm, bs, seed in progress(combos, NAME, total=len(combos)):
        tr_X, tr_y, va_X, va_y = subset(data, cfg.n_train, None, rng)
        model = models.FullyConnectedNet([cfg.width] * cfg.depth, int(np.prod(data.input_shape)),
                                         data.num_classes, norm=None if norm == "none" else norm,
                                         rng=rng)
        r = train_run(model, (tr_X, tr_y), (va_X, va_y), lr=cfg.lr, batch_size=bs,
                      epochs=cfg.epochs, optimizer="momentum", rng=rng)
        final = r["val_acc"][-1] if r["val_acc"] and not r["diverged"] else 0.0
        acc[norm][bs].append(final)
        metrics.append({"norm": norm, "batch_size": bs, "seed": seed, "val_acc": final,
                        "diverged": r["diverged"]})
    big = max(b for b in cfg.batch_sizes if b <= 32) if any(b <= 32 for b in cfg.batch_sizes) \
        else max(cfg.batch_sizes)
    small = min(cfg.batch_sizes)
    summary = {}
    for norm in cfg.norms:
        summary[norm] = {f"val_acc_bs{b}": mean_std(acc[norm][b]) for b in cfg.batch_sizes}
        summary[norm]["drop_small_vs_large"] = float(np.mean(acc[norm][big]) -
                                                     np.mean(acc[norm][small]))
    return {"acc": {n: {str(b): v for b, v in d.items()} for n, d in acc.items()},
            "batch_sizes": list(cfg.batch_sizes), "norms": list(cfg.norms), "metrics": metrics,
            "summary": summary, "small": small, "large": big}


def plot(results: dict, out_dir) -> list:
    fig, axes = new_figure(1, 1, size=(6.0, 4.0))
    ax = axes[0][0]
    bss = results["batch_sizes"]
    for i, norm in enumerate(results["norms"]):
        v = [results["acc"][norm][str(b)] for b in bss]
        ax.errorbar(bss, [np.mean(a) for a in v], yerr=[np.std(a) for a in v], marker="o",
                    ms=4, capsize=2, color=f"C{i}", label=LABELS[norm])
    ax.set(xscale="log", xlabel="batch size", ylabel="validation accuracy (eval mode)",
           title="same epochs at every batch size")
    ax.set_xticks(bss, [str(b) for b in bss])
    ax.legend()
    return [save_figure(fig, out_dir, "batch_size")]


def check(results: dict) -> dict[str, bool]:
    s = results["summary"]
    out = {}
    small = results["small"]
    bn_small = s["batch"][f"val_acc_bs{small}"]["mean"]
    for other in ("layer", "group"):
        if other in s:
            out[f"at batch size {small}, {LABELS[other]} beats BatchNorm"] = (
                s[other][f"val_acc_bs{small}"]["mean"] > bn_small)
            out[f"BatchNorm loses more accuracy than {LABELS[other]} from batch "
                f"{results['large']} down to {small}"] = (
                s["batch"]["drop_small_vs_large"] > s[other]["drop_small_vs_large"])
    return out
