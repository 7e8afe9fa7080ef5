"""MNIST-1D benchmark: logistic regression, MLP and CNN, with and without BN.

Greydanus (2020), "Scaling down deep learning", reports test accuracies of about 32%
(logistic), 68% (MLP) and 94% (CNN) on MNIST-1D; the ordering shows the spatial bias of
convolutions. The data set is generated offline from templates by the ``mnist1d`` package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.common import mean_std, new_figure, progress, save_figure
from normlab.lab.training import train_run

NAME = "mnist1d-benchmark"
TITLE = "MNIST-1D: logistic, MLP and CNN, with and without BN"
CLAIM = ("Accuracy orders logistic < MLP < CNN (Greydanus 2020: about 32% / 68% / 94%); "
         "BN speeds up the deeper models.")

MODELS = {"logistic": "mnist1d-linear", "mlp": "mnist1d-mlp", "cnn": "mnist1d-cnn"}
PAPER = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94}


@dataclass(frozen=True)
class Config:
    models: tuple = ("logistic", "mlp", "cnn")
    steps: int = 3000
    batch_size: int = 100
    lr: float = 1e-2  # Adam, as in the paper's notebook
    eval_every: int = 250
    seeds: int = 2

    @classmethod
    def smoke(cls) -> "Config":
        return cls(steps=150, eval_every=50, seeds=1)


def run(cfg: Config, rng: np.random.Generator) -> dict:
    data = load_dataset("mnist1d", seed=0)
    runs: dict[str, list] = {}
    combos = [(m, n, s) for m in cfg.models for n in ("none", "batch") for s in range(cfg.seeds)]
    for kind, norm, _ in progress(combos, NAME, total=len(combos)):
        if kind == "logistic" and norm == "batch":
            continue  # a single linear layer has nothing to normalise
        kw = {} if kind == "logistic" else {"norm": None if norm == "none" else norm}
        model = models.build(MODELS[kind], rng=rng, **kw)
        r = train_run(model, (data.X_train, data.y_train), (data.X_test, data.y_test), lr=cfg.lr,
                      batch_size=cfg.batch_size, steps=cfg.steps, eval_every=cfg.eval_every,
                      optimizer="adam", rng=rng)
        runs.setdefault(f"{kind}/{norm}", []).append(
            {"eval_step": r["eval_step"], "test_acc": r["val_acc"], "train_acc": r["train_acc"]})
    metrics = [{"run": k, "seed": i, "step": s, "test_acc": a}
               for k, rs in runs.items() for i, r in enumerate(rs)
               for s, a in zip(r["eval_step"], r["test_acc"])]
    summary = {k: {"final_test_acc": mean_std([r["test_acc"][-1] for r in rs]),
                   "paper": PAPER[k.split("/")[0]]} for k, rs in runs.items()}
    return {"runs": runs, "metrics": metrics, "summary": summary, "models": list(cfg.models),
            "steps": cfg.steps}


def plot(results: dict, out_dir) -> list:
    fig, axes = new_figure(1, 2, size=(5.2, 3.8))
    for i, kind in enumerate(results["models"]):
        for norm, style in (("none", "-"), ("batch", "--")):
            rs = results["runs"].get(f"{kind}/{norm}")
            if not rs:
                continue
            acc = np.mean([r["test_acc"] for r in rs], 0)
            axes[0][0].plot(rs[0]["eval_step"], acc, style, color=f"C{i}",
                            label=f"{kind}{' + BN' if norm == 'batch' else ''}")
        axes[0][0].axhline(PAPER[kind], color=f"C{i}", ls=":", lw=1)
    axes[0][0].set(xlabel="step", ylabel="test accuracy", ylim=(0, 1),
                   title="test accuracy (dotted: Greydanus 2020)")
    axes[0][0].legend(fontsize=8, loc="center right")
    keys = list(results["summary"])
    means = [results["summary"][k]["final_test_acc"]["mean"] for k in keys]
    stds = [results["summary"][k]["final_test_acc"]["std"] for k in keys]
    axes[0][1].bar(range(len(keys)), means, yerr=stds, color=[f"C{results['models'].index(k.split('/')[0])}"
                                                              for k in keys], capsize=2)
    axes[0][1].set_xticks(range(len(keys)), [k.replace("/none", "").replace("/batch", "+BN")
                                             for k in keys], rotation=30)
    axes[0][1].set(ylabel="final test accuracy", ylim=(0, 1), title="final test accuracy")
    return [save_figure(fig, out_dir, "mnist1d_benchmark")]


def check(results: dict) -> dict[str, bool]:
    s = results["summary"]
    acc = {k: v["final_test_acc"]["mean"] for k, v in s.items()}
    out = {"every model beats chance (10%) clearly": all(a > 0.15 for a in acc.values())}
    if "logistic/none" in acc and "cnn/none" in acc:
        out["CNN beats logistic regression"] = acc["cnn/none"] > acc["logistic/none"]
    if "mlp/none" in acc and "cnn/none" in acc:
        out["CNN beats the MLP"] = acc["cnn/none"] > acc["mlp/none"]
    if "logistic/none" in acc and "mlp/none" in acc:
        out["MLP beats logistic regression"] = acc["mlp/none"] > acc["logistic/none"]
    if results.get("steps", 0) >= 2000:  # the paper's numbers need a full-length run
        for k, a in acc.items():
            out[f"{k}: within 8 points of the paper's {PAPER[k.split('/')[0]]:.0%}"] = (
                abs(a - PAPER[k.split("/")[0]]) <= 0.08)
    return out
