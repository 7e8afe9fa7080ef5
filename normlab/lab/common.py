"""Helpers shared by the experiments: progress bars, seed statistics, figure saving, and the
figure of paired differences that every run folder gets (``plot_paired``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = ["progress", "mean_std", "new_figure", "save_figure", "plot_paired", "errorbar"]


def progress(iterable: Iterable, desc: str, total: int | None = None, enabled: bool | None = None):
    """A tqdm bar on a terminal, the bare iterable otherwise (logs and CI stay clean)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


def mean_std(values) -> dict[str, float]:
    """``{"mean": ..., "std": ..., "n": ...}`` over seeds (population std, ddof=0)."""
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "n": int(a.size)}


def new_figure(nrows: int = 1, ncols: int = 1, size=(5.0, 3.6), **kw):
    """A matplotlib figure on the Agg backend (no display needed)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False, **kw)
    return fig, axes


def save_figure(fig, out_dir: str | Path, name: str) -> Path:
    """Save ``fig`` as ``out_dir/name.png`` (dpi 110) and close it."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def errorbar(ax, x, per_seed, label: str, **kw):
    """Mean over seeds with a 95 % t-interval bar; ``per_seed`` is ``(n_seeds, len(x))``.

    The legend entry says what the bar is (``interval_label``); with one seed there is no
    bar and the label says so.
    """
    from normlab.lab.stats import interval_label, mean_halfwidth  # noqa: PLC0415

    per_seed = np.asarray(per_seed, dtype=np.float64)
    mean, half = mean_halfwidth(per_seed)
    kw.setdefault("marker", "o")
    kw.setdefault("ms", 3)
    return ax.errorbar(x, mean, yerr=half, capsize=2 if half is not None else 0,
                       label=f"{label} ({interval_label(per_seed.shape[0])})", **kw)


def plot_paired(paired: dict, out_dir, name: str = "paired_differences"):
    """One row per paired comparison: each seed's difference (dots), their mean (diamond)
    and the 95 % t-interval of the mean (bar), against the zero line. ``paired`` maps a
    label (``"measure, arm A − arm B"``) to a ``normlab.lab.stats.paired`` result."""
    from normlab.lab.stats import interval_label  # noqa: PLC0415

    labels = list(paired)
    fig, axes = new_figure(len(labels), 1, size=(7.0, 1.15))
    for ax, label in zip(axes[:, 0], labels):
        p = paired[label]
        d = np.asarray(p["diffs"], dtype=float)
        ax.axvline(0.0, color="grey", lw=1)
        ax.plot(d, np.full_like(d, 0.5), "o", color="C0", ms=5, alpha=0.7)
        if p["low"] is not None:
            ax.hlines(-0.4, p["low"], p["high"], color="k", lw=2)
        if p["mean"] is not None:
            ax.plot([p["mean"]], [-0.4], "D", color="k", ms=5)
        finite = [v for v in (*d, p["low"], p["high"]) if v is not None and np.isfinite(v)]
        span = max(max(abs(v) for v in finite), 1e-12) if finite else 1.0
        ax.set(xlim=(-1.15 * span, 1.15 * span), ylim=(-1, 1))
        ax.set_yticks([0.5, -0.4], ["seeds", "mean"], fontsize=7)
        verdict = "> 0 in every seed" if p["every_seed"] else "NOT > 0 in every seed"
        ax.set_title(f"{label}   [{verdict}; {interval_label(p['n'])}]", fontsize=8, loc="left")
    fig.suptitle("paired differences, one dot per seed; diamond and bar: mean and its 95 % "
                 "t-interval (the claim predicts > 0)", fontsize=8)
    return save_figure(fig, out_dir, name)


INIT_KINDS = ("zeros", "small", "normal", "xavier", "he")


def init_weight(kind: str, shape, rng, dtype=np.float32, scale: float | None = None):
    """A weight drawn by the named scheme: ``zeros``, ``small`` (N(0, 0.01²)), ``normal``
    (N(0, 1)), ``xavier`` (Glorot normal), ``he`` (Kaiming normal, fan_in, ReLU gain), or
    ``scale`` (N(0, scale²), the CS231n ``weight_scale``)."""
    from normlab import init  # noqa: PLC0415

    if kind == "zeros":
        return init.zeros(shape, dtype=dtype)
    if kind in ("small", "normal", "scale"):
        std = {"small": 0.01, "normal": 1.0}.get(kind, scale)
        return init.normal(shape, std=float(std), rng=rng, dtype=dtype)
    if kind == "xavier":
        return init.xavier_normal(shape, gain=1.0, rng=rng, dtype=dtype)
    if kind == "he":
        return init.kaiming_normal(shape, mode="fan_in", nonlinearity="relu", rng=rng, dtype=dtype)
    raise ValueError(f"normlab.lab: expected an init in {INIT_KINDS + ('scale',)}, got {kind!r}.")


def reinit_linear_layers(model, kind: str, rng, scale: float | None = None) -> None:
    """Redraw every Linear weight of ``model`` by ``kind`` and zero its bias (in place)."""
    from normlab import nn  # noqa: PLC0415

    for m in model.modules():
        if isinstance(m, nn.Linear):
            w = m.params["weight"]
            m.params["weight"] = init_weight(kind, w.shape, rng, w.dtype, scale)
            if "bias" in m.params:
                m.params["bias"] = np.zeros_like(m.params["bias"])
