"""Benchmark: normlab BatchNorm forward+backward against PyTorch, same process and threads.

Usage::

    python benchmarks/bench_norm.py [--threads 1] [--repeats 30]

Prints the median time of one training forward+backward for each shape and the ratio
normlab / torch (target <= 1.2), under both settings of ``normlab.kernels``: the compiled
numba kernels (``compiled``, the default on NumPy) and the reference NumPy/CuPy ufunc code
(``reference``). Both libraries run float32 on the CPU with the same
thread count (``torch.set_num_threads``, ``normlab.set_num_threads`` and a threadpoolctl
limit on NumPy's BLAS).
The default clock is the process CPU time (``time.process_time``), which other processes
on a shared machine disturb far less than wall time; ``--clock wall`` uses perf_counter.
Each side takes the best of 3 interleaved medians. Compare ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import normlab
from normlab import nn
from normlab.functional import dispatch

CASES = [
    ("BatchNorm2d", (128, 64, 16, 16), nn.BatchNorm2d, torch.nn.BatchNorm2d),
    ("BatchNorm1d", (256, 1024), nn.BatchNorm1d, torch.nn.BatchNorm1d),
]


def _median_time(fn, repeats: int, clock, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def bench(shape, ours_cls, theirs_cls, repeats: int, rng, clock) -> tuple[float, float]:
    C = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    ours = ours_cls(C)
    theirs = theirs_cls(C)
    xt = torch.from_numpy(x).requires_grad_(True)
    doutt = torch.from_numpy(dout)

    def run_ours():
        ours(x)
        ours.backward(dout)

    def run_theirs():
        xt.grad = None
        out = theirs(xt)
        out.backward(doutt)

    # Interleave to spread background noise over both libraries evenly.
    t_ours, t_theirs = [], []
    for _ in range(3):
        t_ours.append(_median_time(run_ours, repeats, clock))
        t_theirs.append(_median_time(run_theirs, repeats, clock))
    return min(t_ours), min(t_theirs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="cpu: process CPU time (robust on a shared machine); wall: "
                             "perf_counter")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    normlab.set_num_threads(args.threads)  # BLAS and normlab's parallel kernels
    rng = np.random.default_rng(0)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"clock={args.clock} threads={args.threads} repeats={args.repeats} "
          f"numpy={np.__version__} "
          f"torch={torch.__version__}")
    print(f"{'layer':<12} {'shape':<20} {'path':<9} {'normlab ms':>11} {'torch ms':>9} "
          f"{'ratio':>6}")
    with threadpool_limits(limits=args.threads):
        for name, shape, ours_cls, theirs_cls in CASES:
            for path in ("compiled", "reference"):  # numba kernels vs the xp (CuPy-able) code
                with normlab.kernels(path):
                    if path == "compiled" and dispatch.lookup("bn_moments", np) is None:
                        print(f"{name:<12} {str(shape):<20} {path:<9} (numba not installed)")
                        continue
                    t_ours, t_theirs = bench(shape, ours_cls, theirs_cls, args.repeats, rng,
                                             clock)
                print(f"{name:<12} {str(shape):<20} {path:<9} {t_ours * 1e3:>11.2f} "
                      f"{t_theirs * 1e3:>9.2f} {t_ours / t_theirs:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
