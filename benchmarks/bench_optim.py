"""Benchmark: one optimizer step, normlab against PyTorch, on ResNet-18's parameters.

Usage::

    python benchmarks/bench_optim.py [--threads 1] [--repeat 10] [--kernels compiled]

Both libraries hold ResNet-18's 11.2M float32 parameters (``models.resnet18``, 10
classes, and its ``torch.nn`` twin from ``bench_models.py``) with gradients from one
training step, and each optimizer takes ``--repeat`` steps per library, interleaved in two
halves; a row prints the best CPU time of each and the ratio normlab / torch. PyTorch runs
its default implementation for CPU tensors (``foreach``). ``--kernels reference`` times
normlab's NumPy formulas (the reference path) instead of the compiled one-pass steps
(``functional/compiled/numba_optim.py``), which give the same bits.

Measured (this machine, 1 thread, 2026-11-30; ms normlab / torch): SGD with momentum and
weight decay 10.45-10.86 / 21.51-24.84, Adam 12.85-13.56 / 37.52-38.45, AdamW 12.98-13.32 /
41.86-42.52, RMSprop 11.01-11.12 / 23.92-25.05, Adagrad 9.44 / 23.79; ``--kernels
reference`` (the only path before): SGD 25.76 / 21.28, Adam 56.09 / 37.05, AdamW 58.21 /
41.59, RMSprop 35.49 / 23.44, Adagrad 32.74 / 23.54.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import normlab
from normlab import optim

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_models  # noqa: E402  (the models and their torch twins)

CASES = [
    ("SGD", dict(lr=0.01, momentum=0.9, weight_decay=5e-4)),
    ("Adam", dict(lr=1e-3)),
    ("AdamW", dict(lr=1e-3, weight_decay=1e-2)),
    ("RMSprop", dict(lr=1e-3)),
    ("Adagrad", dict(lr=1e-2)),
]


def best_time(step, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        step()
        best = min(best, time.process_time() - t0)
    return best


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--kernels", choices=["compiled", "reference"], default="compiled")
    args = p.parse_args(argv)
    bench_models.set_threads(args.threads)
    normlab.kernels(args.kernels)  # a call sets it (also a context manager)
    pair = bench_models.Pair(bench_models.ROWS["resnet18"])
    pair.step_ours()  # gradients in both libraries
    pair.step_theirs()
    n = sum(v.size for _, v, _ in pair.ours.named_parameters())
    print(f"normlab {normlab.__version__} (kernels {args.kernels}), torch {torch.__version__}, "
          f"{args.threads} thread(s), {n / 1e6:.1f}M float32 parameters, CPU time, "
          f"best of {args.repeat}")
    print(f"{'optimizer':10s} {'normlab ms':>10s} {'torch ms':>9s} {'ratio':>6s}")
    for name, kw in CASES:
        ours = getattr(optim, name)(pair.ours.parameters(), **kw)
        theirs = getattr(torch.optim, name)(pair.theirs.parameters(), **kw)
        ours.step()  # state created, kernels compiled
        theirs.step()
        a = b = float("inf")
        for _ in range(2):  # interleaved halves
            a = min(a, best_time(ours.step, args.repeat // 2 or 1))
            b = min(b, best_time(theirs.step, args.repeat // 2 or 1))
        print(f"{name:10s} {1e3 * a:10.2f} {1e3 * b:9.2f} {a / b:6.2f}", flush=True)


if __name__ == "__main__":
    main()
