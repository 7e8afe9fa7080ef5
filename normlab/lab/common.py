"""Helpers shared by the experiments: progress bars, seed statistics, figure saving."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable

import numpy as np

from normlab.errors import NormlabValueError

__all__ = ["progress", "mean_std", "new_figure", "save_figure"]


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
