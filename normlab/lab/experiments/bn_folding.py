"""Folding BN into the convolution before it: same function, fewer layers at inference.

In eval mode BN is a fixed per-channel affine map, so ``conv -> BN`` equals one convolution
with rescaled weights and a new bias (``normlab.interop.fold_batchnorm``). Train the MNIST-1D
conv net (ConvBase with BN) and compare the logits of the model and its folded copy on the
test set, in float32 and in float64 (the same trained weights cast up): the difference is
rounding only, and the predictions are identical. Inference is timed before and after (the
times depend on the machine and its load; they are reported, not checked).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np

from normlab import models, nn
from normlab.interop import fold_batchnorm
from normlab.lab.common import mean_std, new_figure, progress, save_figure
from normlab.lab.seeding import Seeds, seed_model
from normlab.lab.setups import bn_layers, mnist1d_full
from normlab.lab.training import train_run

NAME = "bn-folding"
TITLE = "Folding BN into the preceding convolution: identical predictions with fewer layers"
CLAIM = ("A trained MNIST-1D conv net with BN and its BN-folded copy give the same logits up to "
         "rounding (max difference < 1e-10 in float64, < 1e-4 in float32) and the same "
         "predictions on every test signal.")


@dataclass(frozen=True)
class Config:
    channels: int = 25
    steps: int = 2000
    batch_size: int = 100
    lr: float = 1e-2  # Adam
    eval_every: int = 250
    timing_repeats: int = 20  # inference timings: the fastest of this many
    seeds: int = 3

    @classmethod
    def smoke(cls) -> "Config":
        return cls(steps=100, eval_every=50, timing_repeats=3, seeds=1)


def _logits(model, X, batch: int = 1000):
    return np.concatenate([model(X[i:i + batch]) for i in range(0, len(X), batch)])


def _best_time(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _layer_count(model) -> int:
    """Leaf modules that compute something (folding leaves ``Identity`` placeholders)."""
    return sum(1 for m in model.modules() if not m._modules and not isinstance(m, nn.Identity))


def _compare(model, X, y, dtype) -> dict:
    m = copy.deepcopy(model).to(dtype=dtype).eval()
    folded = fold_batchnorm(m)
    Xd = X.astype(dtype)
    a, b = _logits(m, Xd), _logits(folded, Xd)
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {"max_abs_diff": float(diff.max()), "max_abs_logit": float(np.abs(a).max()),
            "diff_quantiles": np.quantile(diff, [0.5, 0.9, 0.99, 1.0]).tolist(),
            "same_argmax": bool(np.array_equal(a.argmax(1), b.argmax(1))),
            "test_acc": float((a.argmax(1) == y).mean()),
            "test_acc_folded": float((b.argmax(1) == y).mean()),
            "layers": _layer_count(m), "layers_folded": _layer_count(folded),
            "_pair": (m, folded, Xd)}


def run(cfg: Config, seeds: Seeds) -> dict:
    train, test = mnist1d_full()
    runs, per_seed_times = [], []
    for seed in progress(range(cfg.seeds), NAME, total=cfg.seeds):
        model = models.build("mnist1d-cnn", norm="batch", channels=cfg.channels,
                             rng=seeds.generator(seed, "build"))
        seed_model(model, seeds, seed, tag="cnn")
        r = train_run(model, train, test, lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.steps,
                      eval_every=cfg.eval_every, optimizer="adam",
                      rng=seeds.generator(seed, "data", "batches"))
        moved = float(max(np.abs(m.buffers["running_var"] - 1).max() for m in bn_layers(model)))
        out = {"seed": seed, "eval_step": r["eval_step"], "test_acc": r["val_acc"],
               "running_var_moved": moved}
        times = {"seed": seed}
        for name, dtype in (("float32", np.float32), ("float64", np.float64)):
            res = _compare(model, *test, dtype)
            m, folded, Xd = res.pop("_pair")
            times[name] = {}
            for label, net in (("bn", m), ("folded", folded)):
                times[name][f"batch1000_{label}_ms"] = 1e3 * _best_time(lambda: net(Xd),
                                                                        cfg.timing_repeats)
                times[name][f"batch1_{label}_ms"] = 1e3 * _best_time(lambda: net(Xd[:1]),
                                                                     cfg.timing_repeats)
            out[name] = res
        runs.append(out)
        per_seed_times.append(times)
    metrics = [{"seed": r["seed"], "dtype": d, **{k: v for k, v in r[d].items()
                                                   if not isinstance(v, list)}}
               for r in runs for d in ("float32", "float64")]
    summary = {"test_acc": mean_std([r["float32"]["test_acc"] for r in runs])}
    for d in ("float32", "float64"):
        summary[d] = {"max_abs_diff": mean_std([r[d]["max_abs_diff"] for r in runs]),
                      "same_argmax_all_seeds": all(r[d]["same_argmax"] for r in runs)}
    # wall-clock times depend on the machine and its load: the run folder keeps them apart
    timings = {"per_seed": per_seed_times, "summary": {
        d: {k: mean_std([t[d][k] for t in per_seed_times]) for k in per_seed_times[0][d]}
        for d in ("float32", "float64")}}
    return {"runs": runs, "metrics": metrics, "summary": summary, "steps": cfg.steps,
            "timings": timings}


def plot(results: dict, out_dir) -> list:
    runs = results["runs"]
    fig, axes = new_figure(1, 2, size=(5.0, 3.7))
    ax = axes[0][0]
    for i, d in enumerate(("float32", "float64")):
        for j, r in enumerate(runs):
            q = r[d]["diff_quantiles"]
            ax.plot([50, 90, 99, 100], np.maximum(q, 1e-18), marker="o", ms=3, color=f"C{i}",
                    label=d if j == 0 else None)
    ax.axhline(1e-4, color="C0", ls=":", lw=1)
    ax.axhline(1e-10, color="C1", ls=":", lw=1)
    ax.set(yscale="log", xlabel="percentile over test logits", ylabel="|logit(BN) - logit(folded)|",
           title="(a) logit differences (dotted: the bounds)")
    ax.legend(fontsize=8)
    ax = axes[0][1]
    labels, before, after = [], [], []
    times = results["timings"]["per_seed"]
    for d in ("float32", "float64"):
        for b in ("1000", "1"):
            labels.append(f"{d}\nbatch {b}")
            before.append(np.mean([t[d][f"batch{b}_bn_ms"] for t in times]))
            after.append(np.mean([t[d][f"batch{b}_folded_ms"] for t in times]))
    x = np.arange(len(labels))
    ax.bar(x - 0.2, before, 0.4, label="with BN layers")
    ax.bar(x + 0.2, after, 0.4, label="folded")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set(yscale="log", ylabel="inference time (ms, best of repeats)",
           title="(b) inference time (this machine, under load)")
    ax.legend(fontsize=8)
    return [save_figure(fig, out_dir, "bn_folding")]


def check(results: dict) -> dict[str, bool]:
    runs = results["runs"]
    return {
        "the BN layers were trained (running variance moved away from 1)":
            all(r["running_var_moved"] > 1e-2 for r in runs),
        "float64: max |logit difference| < 1e-10": all(r["float64"]["max_abs_diff"] < 1e-10
                                                       for r in runs),
        "float32: max |logit difference| < 1e-4": all(r["float32"]["max_abs_diff"] < 1e-4
                                                      for r in runs),
        "identical predictions on the whole test set (float32 and float64)":
            all(r[d]["same_argmax"] for r in runs for d in ("float32", "float64")),
    }
