"""normlab vs PyTorch: forward+backward of ResNet-20's 3x3 convolutions and of pooling, CPU.

Both libraries run in this one process at the same thread count (``torch.set_num_threads``
and threadpoolctl for NumPy's BLAS), float32, batch 128. Each timing is the best of
``--repeat`` runs after one warm-up (best-of is the least noisy estimate on a shared
machine); the median is printed too so the noise is visible. With ``--clock cpu`` the
process CPU time is measured instead of wall time: on a machine shared with other jobs
and one thread per library it is far less noisy (time spent waiting for a core is not
counted), and for ``--threads 1`` it is the work done.

Peak memory: ``tracemalloc`` sees every NumPy allocation. PyTorch's CPU allocator does
not report to tracemalloc; its figure comes from the profiler's memory events
(``profile_memory=True``): the running sum of allocations minus frees, maximised over
the forward+backward call; scratch memory that oneDNN allocates outside PyTorch's
allocator is not seen. Both figures count only memory allocated during the call (inputs
excluded).

``--profile`` also splits normlab's time into its stages (im2col, the three GEMMs,
col2im), each timed on the whole batch at once (the library runs them on cache-sized
chunks of the batch, see ``normlab.functional._kernels.batch_chunks``).

Where the time goes (2026-11, 2-core AMD EPYC with AVX-512 shared with other jobs, 1 thread,
CPU clock, ms per forward+backward; run ``--profile`` to repeat):

- 32x16x16 -> 32: im2col 4.9, GEMM forward 7.1, GEMM dweight 7.5, GEMM dcols 8.1, col2im
  5.7 (NumPy slice loop: 11.4). Total 32 ms against PyTorch's 10 ms. The three GEMMs
  alone take 23 ms: OpenBLAS's DYNAMIC_ARCH picks its Haswell (AVX2) kernels on this CPU
  and reaches 60-90 GFLOP/s on these skinny products, while PyTorch's oneDNN convolution
  runs at about 180 GFLOP/s. No im2col layout changes that: the ``(N*OH*OW, C*KH*KW)``
  layout costs 29 ms just to build (16x32x32 input) against 7 ms for the chosen one, and
  single large products on ``(C*KH*KW, N*OH*OW)`` columns were no faster overall.
  ``OPENBLAS_CORETYPE=SkylakeX`` (AVX-512 kernels) brings the 64-channel GEMMs down ~1.5x.
- col2im: one strided read-modify-write per kernel offset; the numba kernel does it in
  one pass (9.4 vs 16.8 ms on 16x32x32 -> 16).
- Max pooling in NumPy (offset loop with ``where``): 33 ms vs PyTorch's 10 ms; the numba
  kernels take 6 ms. Average pooling: 16 ms (reshape path) -> 3.6 ms.
- Chunking the batch so that each chunk's columns stay in cache, and unfolding again in
  backward, was 5-15% faster than one whole-batch pass and cut peak memory 4x
  (177 -> 44 MiB on 16x32x32 -> 16).

Usage: python benchmarks/bench_conv.py [--threads 1] [--repeat 5] [--batch 128] [--profile]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from normlab import functional as F
from normlab.functional import _kernels

# (name, input shape (N filled in), out channels, stride): ResNet-20's 3x3 convolutions.
CONV_SHAPES = [
    ("16x32x32 -> 16", (16, 32, 32), 16, 1),
    ("32x16x16 -> 32", (32, 16, 16), 32, 1),
    ("64x8x8 -> 64", (64, 8, 8), 64, 1),
    ("16x32x32 -> 32 s2", (16, 32, 32), 32, 2),
    ("32x16x16 -> 64 s2", (32, 16, 16), 64, 2),
]
POOL_SHAPES = [
    ("maxpool 2x2 16x32x32", "max", (16, 32, 32)),
    ("maxpool 2x2 64x16x16", "max", (64, 16, 16)),
    ("avgpool 2x2 16x32x32", "avg", (16, 32, 32)),
    ("global avg 64x8x8", "gap", (64, 8, 8)),
]


def best_and_median(fn, repeat: int, clock=time.perf_counter) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return min(times) * 1e3, statistics.median(times) * 1e3


def numpy_peak_mib(fn) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def torch_peak_mib(fn) -> float:
    """Peak of (allocated - freed) over the profiler's memory events, in MiB."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                profile_memory=True) as prof:
        fn()
    # Allocations show up as the self memory of the allocating op, frees as "[memory]"
    # events with a negative size.
    events = [e for e in prof.events() if e.self_cpu_memory_usage != 0]
    events.sort(key=lambda e: e.time_range.start)
    level = peak = 0
    for e in events:
        level += e.self_cpu_memory_usage
        peak = max(peak, level)
    return peak / 2**20


def conv_pair(x, w, b, stride):
    def ours():
        out, cache = F.conv2d_forward(x, w, b, stride=stride, padding=1)
        F.conv2d_backward(np.ones_like(out), cache)

    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(w).requires_grad_()
    tb = torch.from_numpy(b).requires_grad_()

    def theirs():
        tx.grad = tw.grad = tb.grad = None  # allocate fresh gradients, as normlab does
        out = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=1)
        out.backward(torch.ones_like(out))

    return ours, theirs


def pool_pair(x, kind):
    fwd, bwd, tfn, arg = {
        "max": (F.max_pool2d_forward, F.max_pool2d_backward, torch.nn.functional.max_pool2d, 2),
        "avg": (F.avg_pool2d_forward, F.avg_pool2d_backward, torch.nn.functional.avg_pool2d, 2),
        "gap": (F.adaptive_avg_pool2d_forward, F.adaptive_avg_pool2d_backward,
                torch.nn.functional.adaptive_avg_pool2d, 1),
    }[kind]

    def ours():
        out, cache = fwd(x, arg)
        bwd(np.ones_like(out), cache)

    tx = torch.from_numpy(x).requires_grad_()

    def theirs():
        tx.grad = None
        out = tfn(tx, arg)
        out.backward(torch.ones_like(out))

    return ours, theirs


def profile_conv(x, w, stride, repeat, clock):
    """normlab's conv forward+backward split into stages, best-of times in ms."""
    xp_ = np
    N, C, H, W = x.shape
    Fo = w.shape[0]
    OH, OW = (H + 2 - 3) // stride + 1, (W + 2 - 3) // stride + 1
    s, p, d = (stride, stride), (1, 1), (1, 1)
    xpad = _kernels.pad2d(x, p)
    cols = _kernels.im2col(xpad, (3, 3), (OH, OW), s, d, 1)
    w3 = w.reshape(1, Fo, -1)
    dout = xp_.ones((N, 1, Fo, OH * OW), dtype=x.dtype)
    dcols = xp_.matmul(w3.swapaxes(-1, -2), dout)
    stages = {
        "pad": lambda: _kernels.pad2d(x, p),
        "im2col": lambda: _kernels.im2col(xpad, (3, 3), (OH, OW), s, d, 1),
        "gemm fwd": lambda: xp_.matmul(w3, cols),
        "gemm dW": lambda: xp_.matmul(dout, cols.swapaxes(-1, -2)).sum(axis=0),
        "gemm dcols": lambda: xp_.matmul(w3.swapaxes(-1, -2), dout),
        "col2im": lambda: _kernels.col2im(dcols, np.zeros_like(xpad), (3, 3), (OH, OW), s, d),
    }
    return {k: best_and_median(f, repeat, clock)[0] for k, f in stages.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = ap.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"threads={args.threads} batch={args.batch} float32, {args.clock} clock, best of "
          f"{args.repeat} (median in brackets), ms")
    header = (f"{'case':24s} {'normlab':>16s} {'torch':>16s} {'ratio':>6s} "
              f"{'np MiB':>7s} {'torch MiB':>9s}")
    with threadpool_limits(limits=args.threads):
        print(header)
        rows = []
        for name, shape, f_out, stride in CONV_SHAPES:
            x = rng.standard_normal((args.batch,) + shape, dtype=np.float32)
            w = (rng.standard_normal((f_out, shape[0], 3, 3), dtype=np.float32) * 0.1)
            b = np.zeros(f_out, np.float32)
            rows.append((name,) + conv_pair(x, w, b, stride))
            if args.profile:
                prof = profile_conv(x, w, stride, args.repeat, clock)
                rows[-1] += (prof,)
        for name, kind, shape in POOL_SHAPES:
            x = rng.standard_normal((args.batch,) + shape, dtype=np.float32)
            rows.append((name,) + pool_pair(x, kind))
        for name, ours, theirs, *prof in rows:
            ob, om = best_and_median(ours, args.repeat, clock)
            tb, tm = best_and_median(theirs, args.repeat, clock)
            print(f"{name:24s} {ob:7.1f} [{om:6.1f}] {tb:7.1f} [{tm:6.1f}] {ob / tb:6.2f} "
                  f"{numpy_peak_mib(ours):7.1f} {torch_peak_mib(theirs):9.1f}")
            if prof:
                print("    stages: " + ", ".join(f"{k} {v:.1f}" for k, v in prof[0].items()))


if __name__ == "__main__":
    main()
