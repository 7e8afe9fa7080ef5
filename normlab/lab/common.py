"""Helpers shared by the experiments: progress bars, seed statistics, figure saving, and the
figure of paired differences that every run folder gets (``plot_paired``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable

import numpy as np

from normlab.errors import NormlabValueError

__all__ = ["progress", "mean_std", "new_figure", "save_figure", "plot_paired", "errorbar",
           "note_interval"]


def progress(iterable: Iterable, desc: str, total: int | None = None, enabled: bool | None = None):
    """A tqdm bar on a terminal, the bare iterable otherwise (logs and CI stay clean)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


def mean_std(values) -> dict[str, float]:
    """``{"mean": ..., "std": ..., "n": ...}`` over seeds (population std, ddof=0).

    The experiments report ``normlab.lab.stats.mean_ci`` (mean and 95 % t-interval) instead.
    """
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
    # leave room for the interval note at the bottom (see ``note_interval``)
    fig.tight_layout(rect=(0, 0.045, 1, 1) if getattr(fig, "_normlab_note", False) else None)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def errorbar(ax, x, per_seed, label: str, **kw):
    """Mean over seeds with a 95 % t-interval bar; ``per_seed`` is ``(n_seeds, len(x))``.

    With one seed there is no bar. Say what the bars are with ``note_interval``.
    """
    from normlab.lab.stats import mean_halfwidth  # noqa: PLC0415

    per_seed = np.asarray(per_seed, dtype=np.float64)
    mean, half = mean_halfwidth(per_seed)
    kw.setdefault("marker", "o")
    kw.setdefault("ms", 3)
    return ax.errorbar(x, mean, yerr=half, capsize=2 if half is not None else 0, label=label,
                       **kw)


def note_interval(fig, n: int, what: str = "lines, bars and bands",
                  per_arm: bool = True) -> None:
    """Write under ``fig`` what its error bars and bands are, e.g. "lines, bars and bands:
    mean ± 95 % t-interval over 3 seeds" (or that one seed gives no interval).

    ``per_arm`` adds that these are each arm's own intervals: they include the variation
    between seeds that a paired comparison removes, so overlapping bands do not mean that
    two arms are indistinguishable (``paired_differences.png`` shows the paired ones).
    """
    from normlab.lab.stats import interval_label  # noqa: PLC0415

    text = (f"{what}: {interval_label(n)}" if n > 1 else
            f"{what}: one seed, so no error bars (an interval needs >= 2 seeds)")
    if per_arm and n > 1:
        text += ", per arm (differences between arms, paired by seed: paired_differences.png)"
    fig.text(0.5, 0.008, text, ha="center", va="bottom", fontsize=8, color="#333")
    fig._normlab_note = True


def plot_paired(paired: dict, out_dir, name: str = "paired_differences"):
    """One row per paired comparison: each seed's difference (dots), their mean (diamond)
    and the 95 % t-interval of the mean (bar), against the zero line and the claim's
    threshold (dashed, when it is not 0). ``paired`` maps a label (``"measure, arm A − arm
    B"``) to a ``normlab.lab.stats.paired`` result."""
    labels = list(paired)
    fig, axes = new_figure(len(labels), 1, size=(8.0, 1.25 if len(labels) > 1 else 1.9))
    for ax, label in zip(axes[:, 0], labels):
        p = paired[label]
        thr = float(p.get("threshold", 0.0))
        d = np.asarray(p["diffs"], dtype=float)
        ax.axvline(0.0, color="grey", lw=1)
        if thr:
            ax.axvline(thr, color="grey", lw=1, ls="--")
        ax.plot(d, np.full_like(d, 0.5), "o", color="C0", ms=5, alpha=0.7)
        if p["low"] is not None:
            ax.hlines(-0.4, p["low"], p["high"], color="k", lw=2)
        if p["mean"] is not None:
            ax.plot([p["mean"]], [-0.4], "D", color="k", ms=5)
        finite = [v for v in (*d, p["low"], p["high"], thr) if v is not None and np.isfinite(v)]
        span = max(max(abs(v) for v in finite), 1e-12) if finite else 1.0
        ax.set(xlim=(-1.15 * span, 1.15 * span), ylim=(-1, 1))
        ax.set_yticks([0.5, -0.4], ["seeds", "mean"], fontsize=7)
        ax.set_title(label, fontsize=8, loc="left")
        bound = f"{thr:.3g} (dashed)" if thr else "0"
        verdict = (f"> {bound} in every seed" if p["every_seed"]
                   else f"NOT > {bound} in every seed")
        if p["interval_above"] is False:
            verdict += f"; the interval reaches {'below ' + f'{thr:.3g}' if thr else '0'}"
        ax.set_title(verdict, fontsize=8, loc="right",
                     color="#176b1c" if p["every_seed"] else "#a31515")
    fig.suptitle("paired differences by seed, one dot per seed (the claim predicts values above "
                 "0, or above the dashed threshold)", fontsize=9)
    note_interval(fig, paired[labels[0]]["n"], "diamond and bar", per_arm=False)
    return save_figure(fig, out_dir, name)


# Stream-order helpers kept for experiments written before normlab.lab.seeding: they draw
# from one shared generator, so arms are not paired. New code uses seeding.seed_model.
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
    raise NormlabValueError(f"normlab.lab: expected an init in {INIT_KINDS + ('scale',)}, got {kind!r}.")


def reinit_linear_layers(model, kind: str, rng, scale: float | None = None) -> None:
    """Redraw every Linear weight of ``model`` by ``kind`` and zero its bias (in place)."""
    from normlab import nn  # noqa: PLC0415

    for m in model.modules():
        if isinstance(m, nn.Linear):
            w = m.params["weight"]
            m.params["weight"] = init_weight(kind, w.shape, rng, w.dtype, scale)
            if "bias" in m.params:
                m.params["bias"] = np.zeros_like(m.params["bias"])
