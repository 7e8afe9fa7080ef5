"""BN vs LayerNorm vs GroupNorm vs none over batch sizes 2..128, and Batch Renorm at batch 4.

BN estimates its statistics from the mini-batch, so at tiny batches training sees very
noisy statistics and evaluation (running averages) no longer matches training (Wu & He
2018, Fig. 1). LayerNorm and GroupNorm normalise each sample on its own and do not care
about the batch size. Batch Renorm (Ioffe 2017) corrects the batch statistics towards the
running ones (``r_max`` 3, ``d_max`` 5), so it suffers far less at tiny batches. Every run
sees the same number of epochs. Within a replicate every
arm trains on the same subset, in the same sample order, from the same Linear weights.

Two parts. The sweep (``dataset``, default ``digits``: 1,000 training images, a 3 x 64
MLP, 4 epochs) compares every norm at every batch size. The Batch Renorm comparison at
batch 4 runs on MNIST-1D (4,000 / 1,000, the data of the other published-results
experiments), because on ``digits`` BN at batch 4 is already at ~94 %, which leaves no room
for a 10-point gap: a 3 x 100 ReLU MLP, SGD with momentum 0.9, ``renorm_epochs`` epochs at
every batch of ``renorm_batch_sizes`` (4 and the reference 32), lr ``renorm_lr x batch /
32`` (the linear scaling rule: 0.05 at 32, 0.00625 at 4). At batch 4 that is 15,000 steps,
enough for BN's small-batch mismatch to show (BN ends ~24 points below its batch-32
accuracy).

Batch Renorm runs at BN's defaults in both parts: running averages at rate 0.1
(``renorm_momentum``) and the final bounds from the first step. ``renorm_warmup``,
``renorm_d_full``, ``renorm_r_full`` switch on the paper's warm-up
(``normlab.lab.renorm_warmup``) as ``batch-renorm-noniid`` uses it; on MNIST-1D at batch 4
that recipe (with rate 0.01) gives the same gap (+11.7 instead of +12.4 points, README), and
in the sweep, whose runs are as short as 28 steps (batch 128), a 0.01 average has not
forgotten its initial statistics by the end (eval-mode accuracy 30 % at batch 128).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from normlab import models, nn
from normlab.data import load_dataset
from normlab.lab.common import errorbar, new_figure, note_interval, progress, save_figure
from normlab.lab.renorm_warmup import RenormSchedule, RenormWarmup
from normlab.lab.seeding import Seeds, seed_model
from normlab.lab.setups import mlp, mnist1d_full
from normlab.lab.stats import mean_ci, paired
from normlab.lab.training import subset, train_run

NAME = "batch-size"
TITLE = "Normalization vs batch size: BN, Batch Renorm, LayerNorm, GroupNorm, none"
CLAIM = ("BN degrades at tiny batches; LayerNorm and GroupNorm do not, and Batch Renorm beats "
         "BN at batch size 4 (MNIST-1D) by >= 10 points.")

NORMS = ("batch", "renorm", "layer", "group", "none")
LABELS = {"batch": "BatchNorm", "renorm": "Batch Renorm", "layer": "LayerNorm",
          "group": "GroupNorm", "none": "no norm"}
RENORM_BATCH = 4  # Batch Renorm's criterion: BRN(bs 4) >= BN(bs 4) + 10 points, on MNIST-1D
FULL_RENORM_EPOCHS = 15  # the +10 criterion is checked at this length


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    batch_sizes: tuple = (2, 4, 8, 16, 32, 64, 128)
    norms: tuple = NORMS
    depth: int = 3  # hidden layers
    width: int = 64
    epochs: int = 4
    lr: float = 0.01  # SGD with momentum 0.9
    r_max: float = 3.0  # Batch Renorm's final bounds
    d_max: float = 5.0
    # Batch Renorm's running-average rate and warm-up in steps (all 0: none), both parts
    renorm_momentum: float = 0.1
    renorm_warmup: int = 0
    renorm_d_full: int = 0
    renorm_r_full: int = 0
    n_train: int = 1000
    # BN vs Batch Renorm on MNIST-1D (empty: skip this part)
    renorm_batch_sizes: tuple = (4, 32)
    renorm_epochs: int = 15
    renorm_lr: float = 0.05  # at batch 32, scaled linearly with the batch size
    renorm_n_train: int = 4000  # MNIST-1D training signals (4,000: all of them)
    seeds: int = 3  # replicates (a 95 % t-interval needs >= 2; with 2, t = 12.7)

    @classmethod
    def smoke(cls) -> "Config":
        # Batch Renorm's +10-point criterion is a full-size check
        return cls(batch_sizes=(2, 32), epochs=3, n_train=400, seeds=1, renorm_epochs=2,
                   renorm_n_train=1000)

    def renorm_schedule(self) -> RenormSchedule:
        return RenormSchedule(self.renorm_warmup, self.renorm_d_full, self.renorm_r_full,
                              self.r_max, self.d_max)


def _norm(norm: str, cfg: Config):
    if norm == "renorm":
        return partial(nn.BatchRenorm1d, r_max=cfg.r_max, d_max=cfg.d_max,
                       momentum=cfg.renorm_momentum)
    return None if norm == "none" else norm


def _renorm_part(cfg: Config, seeds: Seeds) -> dict:
    """BN vs Batch Renorm on MNIST-1D at ``cfg.renorm_batch_sizes``: ``{norm: {bs: [acc]}}``."""
    train, test = mnist1d_full()
    acc = {n: {b: [] for b in cfg.renorm_batch_sizes} for n in ("batch", "renorm")}
    combos = [(n, b, s) for n in acc for b in cfg.renorm_batch_sizes for s in range(cfg.seeds)]
    for norm, bs, rep in progress(combos, f"{NAME} (MNIST-1D)", total=len(combos)):
        tr = train
        if cfg.renorm_n_train < len(train[0]):
            idx = seeds.generator(rep, "data", "mnist1d-subset").choice(
                len(train[0]), cfg.renorm_n_train, replace=False)
            tr = (train[0][idx], train[1][idx])
        model = mlp([100] * 3, seeds, rep, norm=_norm(norm, cfg))
        r = train_run(model, tr, test, lr=cfg.renorm_lr * bs / 32, batch_size=bs,
                      epochs=cfg.renorm_epochs, optimizer="momentum",
                      rng=seeds.generator(rep, "data", "mnist1d-batches"),
                      callbacks=[RenormWarmup(model, cfg.renorm_schedule())])
        acc[norm][bs].append(r["val_acc"][-1] if r["val_acc"] and not r["diverged"] else 0.0)
    return acc


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
                      rng=seeds.generator(rep, "data", "batches"),
                      callbacks=[RenormWarmup(model, cfg.renorm_schedule())])
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
    racc = _renorm_part(cfg, seeds) if cfg.renorm_batch_sizes else None
    if racc is not None:
        summary["mnist1d"] = {n: {f"test_acc_bs{b}": mean_ci(v) for b, v in d.items()}
                              for n, d in racc.items()}
        for n, d in racc.items():
            metrics += [{"part": "mnist1d", "norm": n, "batch_size": b, "seed": i, "test_acc": a}
                        for b, v in d.items() for i, a in enumerate(v)]
        if RENORM_BATCH in cfg.renorm_batch_sizes:
            pairs[f"MNIST-1D test accuracy at batch size {RENORM_BATCH}, Batch Renorm − "
                  "BatchNorm"] = paired(racc["renorm"][RENORM_BATCH], racc["batch"][RENORM_BATCH])
    summary["paired"] = pairs
    return {"acc": {n: {str(b): v for b, v in d.items()} for n, d in acc.items()},
            "batch_sizes": list(cfg.batch_sizes), "norms": list(cfg.norms), "metrics": metrics,
            "summary": summary, "paired": pairs, "small": small, "large": big,
            "dataset": cfg.dataset, "mnist1d": None if racc is None else
            {n: {str(b): v for b, v in d.items()} for n, d in racc.items()},
            "renorm_full": cfg.renorm_epochs >= FULL_RENORM_EPOCHS}


def plot(results: dict, out_dir) -> list:
    mnist1d = results.get("mnist1d")  # absent in run folders from before it was added
    fig, axes = new_figure(1, 2 if mnist1d else 1, size=(6.4, 4.4) if mnist1d else (8.6, 4.4))
    ax = axes[0][0]
    bss = results["batch_sizes"]
    for i, norm in enumerate(results["norms"]):
        v = np.array([results["acc"][norm][str(b)] for b in bss])  # (batch sizes, seeds)
        errorbar(ax, bss, v.T, LABELS[norm], ms=4, color=f"C{i}")
    # accuracies live in [0, 1]; with 2 seeds a t-interval can reach far outside it
    ax.set(xscale="log", xlabel="batch size", ylabel="validation accuracy (eval mode)",
           title=f"{'(a) ' if mnist1d else ''}{results.get('dataset', 'digits')}, same epochs at "
                 "every batch size", ylim=(0, 1.02))
    ax.set_xticks(bss, [str(b) for b in bss])
    ax.minorticks_off()  # the log axis' minor labels (3x10^0, ...) overlap the batch sizes
    ax.legend(fontsize=7, loc="center right")  # clear of every curve
    if mnist1d:
        ax = axes[0][1]
        rbs = sorted(int(b) for b in mnist1d["batch"])
        for norm in ("batch", "renorm"):
            v = np.array([mnist1d[norm][str(b)] for b in rbs])
            errorbar(ax, rbs, v.T, LABELS[norm], ms=4, color=f"C{NORMS.index(norm)}")
        ax.set(xscale="log", xlabel="batch size (lr 0.05 x batch / 32)",
               ylabel="test accuracy (eval mode)", ylim=(0, 1.02),
               title="(b) MNIST-1D, 3 x 100 MLP, same epochs")
        ax.set_xticks(rbs, [str(b) for b in rbs])
        ax.minorticks_off()
        ax.legend(fontsize=7, loc="lower right")
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
    key = f"MNIST-1D test accuracy at batch size {RENORM_BATCH}, Batch Renorm − BatchNorm"
    # both MNIST-1D claims need the full training length: at the smoke run's 500 steps BN's
    # small-batch mismatch has not shown yet, the two are within a point of each other and
    # which one is ahead turns on the BLAS kernels' rounding (batch 4, test accuracy, BN vs
    # Batch Renorm: 0.300 vs 0.295 with OpenBLAS's Haswell kernels, 0.290 vs 0.304 with its
    # SkylakeX ones); the comparison is still in the summary's paired differences
    if key in p and results.get("renorm_full"):
        out[f"MNIST-1D, batch size {RENORM_BATCH}: Batch Renorm beats BatchNorm in every seed "
            "(paired by seed)"] = p[key]["every_seed"]
        out[f"MNIST-1D, batch size {RENORM_BATCH}: Batch Renorm >= BatchNorm + 10 points "
            "(mean over seeds)"] = p[key]["mean"] >= 0.10
    return out
