"""Activation statistics per layer under each initialisation, with and without BN.

A deep stack of ``Linear(width, width, bias=False) - [BatchNorm1d] - act`` is fed a batch
of standard-normal inputs (forward only, training mode so BN uses batch statistics). For
each layer we record the mean and std of the activations and a histogram. CS231n's
lecture figures: tiny weights collapse every activation to zero, N(0, 1) weights
saturate tanh, Xavier keeps tanh alive, He keeps ReLU alive, and BN rescales every
pre-activation to unit variance whatever the initialisation. BN cannot break the
symmetry of all-zero weights: a constant layer stays constant (its variance is 0).

Within a replicate every configuration gets the same input batch and, for layer ``i``, the
same standard-normal draw ``z_i``: its weight is ``std(init) * z_i``, so the configurations
differ only by the init's scale, the activation and the BN layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normlab import nn
from normlab.lab.common import new_figure, progress, save_figure
from normlab.lab.seeding import INIT_KINDS, Seeds, init_std
from normlab.lab.stats import mean_ci, mean_halfwidth

NAME = "activation-stats"
TITLE = "Activation statistics per layer under each initialisation"
CLAIM = ("Small init collapses activations to zero, N(0,1) saturates tanh, Xavier keeps tanh "
         "alive, He keeps ReLU alive; BN restores unit-scale pre-activations under every "
         "non-zero init.")

INITS = INIT_KINDS
INIT_LABELS = {"zeros": "zeros", "small": "N(0, 0.01²)", "normal": "N(0, 1)",
               "xavier": "Xavier", "he": "He"}


@dataclass(frozen=True)
class Config:
    depth: int = 10  # layers
    width: int = 500  # units per layer
    n_samples: int = 1000  # batch fed through the stack
    seeds: int = 3  # replicates (a 95 % t-interval needs >= 2; with 2, t = 12.7)
    activations: tuple = ("tanh", "relu")
    inits: tuple = INITS
    bins: int = 40  # histogram bins

    @classmethod
    def smoke(cls) -> "Config":
        return cls(width=100, n_samples=200, seeds=2)


def _stack(cfg: Config, activation: str, kind: str, bn: bool, seeds: Seeds,
           rep: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    for i in range(cfg.depth):
        lin = nn.Linear(cfg.width, cfg.width, bias=False, dtype=np.float64,
                        rng=seeds.generator(rep, "build"))
        z = seeds.generator(rep, "init", f"{i}:Linear").standard_normal((cfg.width, cfg.width))
        lin.params["weight"] = init_std(kind, (cfg.width, cfg.width)) * z
        layers.append(nn.Sequential(lin, nn.BatchNorm1d(cfg.width, dtype=np.float64), act())
                      if bn else nn.Sequential(lin, act()))
    return layers


def _edges(activation: str, bins: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, bins + 1) if activation == "tanh" else np.linspace(0, 3, bins + 1)


def run(cfg: Config, seeds: Seeds) -> dict:
    """Per-layer means/stds (mean over seeds, with t-interval half widths) and seed-0
    histograms."""
    curves, hists, metrics, last_std, last_mean = {}, {}, [], {}, {}
    combos = [(a, k, bn) for a in cfg.activations for k in cfg.inits for bn in (False, True)]
    for activation, kind, bn in progress(combos, NAME, total=len(combos)):
        key = f"{activation}/{kind}/{'bn' if bn else 'none'}"
        means, stds = [], []
        for rep in range(cfg.seeds):
            x = seeds.generator(rep, "data", "inputs").standard_normal((cfg.n_samples, cfg.width))
            lm, ls, lh = [], [], []
            for layer in _stack(cfg, activation, kind, bn, seeds, rep):
                x = layer(x)
                lm.append(float(x.mean()))
                ls.append(float(x.std()))
                # ReLU: half the mass sits exactly at 0 and would flatten the plot, so the
                # histogram covers the positive values and the zero fraction is kept apart
                vals = x if activation == "tanh" else x[x > 0]
                counts, _ = np.histogram(np.clip(vals, *_edges(activation, 1)[[0, -1]]),
                                         bins=_edges(activation, cfg.bins))
                lh.append({"frac": (counts / x.size).tolist(),
                           "zeros": float(np.mean(x == 0))})
            means.append(lm)
            stds.append(ls)
            if rep == 0:
                hists[key] = lh
        std_mean, std_half = mean_halfwidth(stds)
        curves[key] = {"mean": np.mean(means, axis=0).tolist(), "std": std_mean.tolist(),
                       "std_half_width": None if std_half is None else std_half.tolist(),
                       "last_std_per_seed": [s[-1] for s in stds],
                       "first_std_per_seed": [s[0] for s in stds]}
        last_std[key] = [s[-1] for s in stds]
        last_mean[key] = [m[-1] for m in means]
        for layer_i, (m, s) in enumerate(zip(curves[key]["mean"], curves[key]["std"]), 1):
            metrics.append({"config": key, "layer": layer_i, "mean": m, "std": s})
    summary = {key: {"last_layer_std": mean_ci(last_std[key]),
                     "last_layer_mean": mean_ci(last_mean[key])} for key in curves}
    return {"curves": curves, "hists": hists, "metrics": metrics, "summary": summary,
            "depth": cfg.depth, "activations": list(cfg.activations), "inits": list(cfg.inits),
            "bins": cfg.bins, "seeds": cfg.seeds}


def plot(results: dict, out_dir) -> list:
    paths = []
    depth = results["depth"]
    layers = np.arange(1, depth + 1)
    for activation in results["activations"]:
        fig, axes = new_figure(1, 2, size=(5.2, 3.8))
        for ax, stat in zip(axes[0], ("mean", "std")):
            for j, kind in enumerate(results["inits"]):
                for bn, style in (("none", "-"), ("bn", "--")):
                    c = results["curves"][f"{activation}/{kind}/{bn}"]
                    vals = np.abs(c[stat]) if stat == "std" else c[stat]
                    ax.plot(layers, vals, style, marker="o", ms=3, color=f"C{j}",
                            label=f"{INIT_LABELS[kind]}{' + BN' if bn == 'bn' else ''}")
            ax.set_xlabel("layer")
            ax.set_ylabel(f"activation {stat}")
            ax.set_yscale("symlog", linthresh=1e-8 if stat == "std" else 1e-3)
            n = results.get("seeds", 1)
            ax.set_title(f"{activation}: per-layer {stat}, mean over {n} seed{'s' if n > 1 else ''}"
                         "\ndashed: with BN, one curve for every non-zero init (they scale one "
                         "draw z;\nBN removes the scale)", fontsize=8)
        axes[0][1].legend(fontsize=7, ncol=2)
        paths.append(save_figure(fig, out_dir, f"{activation}_mean_std"))
        edges = _edges(activation, results["bins"])
        centers = 0.5 * (edges[1:] + edges[:-1])
        show = sorted({1, max(1, depth // 3), max(1, 2 * depth // 3), depth})
        for bn in ("none", "bn"):
            fig, axes = new_figure(len(results["inits"]), len(show), size=(2.6, 1.7))
            for r, kind in enumerate(results["inits"]):
                h = results["hists"][f"{activation}/{kind}/{bn}"]
                for c, layer_i in enumerate(show):
                    ax = axes[r][c]
                    cell = h[layer_i - 1]
                    ax.bar(centers, cell["frac"], width=edges[1] - edges[0], color="C0")
                    if activation == "relu":
                        ax.text(0.97, 0.9, f"zeros {cell['zeros']:.0%}", transform=ax.transAxes,
                                ha="right", va="top", fontsize=7)
                    ax.set_yticks([])
                    if r == 0:
                        ax.set_title(f"layer {layer_i}", fontsize=9)
                    if c == 0:
                        ax.set_ylabel(INIT_LABELS[kind], fontsize=8)
            fig.suptitle(f"{activation} activations{' with BN' if bn == 'bn' else ''} "
                         "(seed 0; fraction of all values per bin" + ("; positives only, last bin >= 3" if activation == "relu"
                                                             else "") + ")", fontsize=10)
            paths.append(save_figure(fig, out_dir, f"{activation}_hist_{bn}"))
    return paths


def check(results: dict) -> dict[str, bool]:
    """Each threshold must hold in every seed (the per-seed last-layer stds)."""
    c = results["curves"]

    def every(key, ok):
        return all(ok(v) for v in c[key]["last_std_per_seed"])

    out = {}
    if "tanh/small/none" in c:
        out["tanh, N(0,0.01²): last-layer std < 1e-5 (collapse), in every seed"] = every(
            "tanh/small/none", lambda v: v < 1e-5)
    if "tanh/normal/none" in c:
        out["tanh, N(0,1): |activations| saturate (std > 0.9), in every seed"] = every(
            "tanh/normal/none", lambda v: v > 0.9)
    if "tanh/xavier/none" in c:
        out["tanh, Xavier: last-layer std in [0.1, 0.9], in every seed"] = every(
            "tanh/xavier/none", lambda v: 0.1 <= v <= 0.9)
    if "relu/he/none" in c:
        # "alive" = neither collapsing nor exploding over depth; the absolute level wanders
        # with the width (finite-width fluctuations compound over the layers)
        he = c["relu/he/none"]
        out["relu, He: last-layer std within 2x of the first layer's, in every seed"] = all(
            0.5 <= last / first <= 2.0
            for last, first in zip(he["last_std_per_seed"], he["first_std_per_seed"]))
    bn_keys = [k for k in c if k.endswith("/bn") and "/zeros/" not in k]
    if bn_keys:
        out["BN: last-layer std in [0.3, 1.0] under every non-zero init, in every seed"] = all(
            every(k, lambda v: 0.3 <= v <= 1.0) for k in bn_keys)
    return out
