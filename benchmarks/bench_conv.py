"""normlab vs PyTorch: forward+backward of ResNet-20's 3x3 convolutions, the other models' im2col convs and of pooling, CPU.

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

Where the time goes (2026-11, 2-core Intel Xeon with AVX-512 shared with other jobs, 1 thread,
CPU clock, ms per forward+backward, run as ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
python benchmarks/bench_conv.py --threads 1 --clock cpu`` so that NumPy's OpenBLAS uses its
SkylakeX kernels; ``--profile`` repeats it; PyTorch's own time varies 14-39 ms between runs
on the 16-channel layer, normlab's by < 5%, so compare normlab's column across runs):

Stride-1 3x3 (Winograd, chosen for >= 16 channels in and out: F(4x4, 3x3)
``normlab.functional._winograd4`` where the output is >= 16x16, else F(2x2, 3x3)
``_winograd``; ``--winograd off`` gives the im2col path):

    case              F(2x2) before   now (tile)    torch   ratio before -> now
    16x32x32 -> 16        34.1       21.5-23.3 (4)  14-34   1.45 -> 0.7 (torch erratic)
    32x16x16 -> 32        20.1       12.6-13.4 (4)  10.3-11  1.96 -> 1.22
    64x8x8 -> 64          19.0       12.6-12.7 (2)   9.2-9.3 2.07 -> 1.35-1.38

  What changed, each measured on its own: (1) V (the input transform) is laid out
  channel-major, (16|36, C, n, TH, TW), so the forward is one (F, C) @ (C, n*T) GEMM per
  tile position and the weight gradient one (F, n*T) @ (n*T, C) GEMM per tile position
  (was n per-sample products plus a sum: 64 channels dW 7.4 -> 6.4 ms, 4.4 with V kept); (2) the forward
  keeps V for the weight gradient from 32 input channels on (saves one input transform,
  1.3-1.7 ms; costs 4x (F(2x2)) or 2.25x (F(4x4)) the input's memory: 9.4 MiB on
  32x16x16, 16.8 MiB on 64x8x8 at batch 128; on 16 channels the fresh pages cost what
  the reuse saved, so it is off there); (3) a numba dout transform (NumPy: 2.4 ms); (4)
  F(4x4, 3x3) on outputs >= 16x16 (32 channels 17.0 -> 13.9 ms; on 8x8 outputs it was
  1.5x slower: 2x2 tiles per image leave the compiled loops too short); (5) 1 MiB chunks
  (OpenBLAS's 32-channel products slowed 1.5-2.5x past ~800 columns), the chunk's padding
  fused into the numba input transform, one scratch buffer per call instead of one per
  chunk, and the tile-position planes 16 elements further apart than their size (planes
  a multiple of 4 KiB apart share L1 sets: 5-25% faster transforms; 32 channels
  14.8-15.7 -> 12.5-13.0 ms). float32 error against float64 (relative, Frobenius, ResNet-sized
  data, Kaiming weights): F(2x2) 1.6e-7 to 3.7e-7, F(4x4) 1.0e-6 to 1.9e-6.

  Stages now (whole batch, ``--profile``): 32x16x16 -> 32, F(4x4): input transform 2.8,
  36 GEMMs 1.4, output transform 2.5, dout transform 1.9, dW GEMMs 2.4; per pass (chunked)
  forward 5.2, dx 4.7, dW with V kept 2.5. 64x8x8 -> 64, F(2x2): input transform 2.3,
  16 GEMMs 1.9, output transform 0.9, dout transform 1.7, dW GEMMs 2.6; forward 4.0, dx 3.8,
  dW 4.6. What is left: the transforms are scalar numba loops over short rows (4-8 tiles
  per image row) and together still cost as much as the GEMMs; the weight gradient's
  (F, n*T) @ (n*T, C) products with F, C = 32..64 run at ~100 GFLOP/s (the forward's at
  ~180); glibc page faults on the fresh output/dx/V buffers (0.5-2 ms, depending on the
  process's allocation history; PyTorch's 16-channel time swings for the same reason).

Stride 2 (im2col):

- Now (SkylakeX kernels): 32x16x16 -> 64: pad 0.4, im2col 1.0, GEMM forward 1.9, GEMM
  dweight 3.2, GEMM dcols 1.7, col2im 1.9 (im2col again in backward 1.0): the GEMMs are
  two thirds. normlab 11.7-12.1 ms against PyTorch's 6.7-8.1 (ratio 1.50-1.76). The
  dweight product is n per-sample (F, OH*OW) @ (OH*OW, C*9) products with OH*OW = 64
  summed; channel-major columns ``(C*9, n*OH*OW)`` (as the Winograd path does) measured
  3.16 -> 2.74 ms for it, the columns themselves 1.81 -> 1.53 ms, at the price of a
  transposing copy of each output chunk and a strided col2im: not done.
  Also measured and dropped (2026-11-23, same command, whole batch unless said):
  (a) numba im2col/col2im with the padding fused in (no pad, no crop): im2col 2.5 ms
  sample-major, 3.4 channel-major (NumPy pad+im2col 1.4), col2im 2.4 sample-major and
  4.9 through a transposed view (numba's strided 'A' layout; NumPy-index col2im 1.8): the
  8-wide output rows are too short for the scalar loops, total 14.9 ms. (b) Channel-major
  columns built once in the forward and kept for the weight gradient (2.25x the input,
  like F(4x4)'s V): dW as one NT product 2.4 ms (dout transpose 0.06, output transpose
  0.08), but the channel-major unfold costs 1.55 and the whole-batch forward GEMM 2.1;
  total 11.9 ms (12.0 before), 25 MiB instead of 20, and the 16x32x32 -> 32 stride-2
  case got slower (16.3 -> 17.6). (c) ``matmul(out=)`` into the output / one reused
  scratch for the dW and dcols products: 11.7-12.0 ms, within noise.
- 32x16x16 -> 32 (before Winograd): im2col 4.9, GEMM forward 7.1, GEMM dweight 7.5, GEMM dcols 8.1, col2im
  5.7 (NumPy slice loop: 11.4). Total 32 ms against PyTorch's 10 ms. The three GEMMs
  alone take 23 ms: OpenBLAS's DYNAMIC_ARCH picks its Haswell (AVX2) kernels on this CPU
  and reaches 60-90 GFLOP/s on these skinny products, while PyTorch's oneDNN convolution
  runs at about 180 GFLOP/s. No im2col layout changes that: the ``(N*OH*OW, C*KH*KW)``
  layout costs 29 ms just to build (16x32x32 input) against 7 ms for the chosen one, and
  single large products on ``(C*KH*KW, N*OH*OW)`` columns were no faster overall.
  ``OPENBLAS_CORETYPE=SkylakeX`` (AVX-512 kernels) brings the 64-channel GEMMs down ~1.5x.
  Stride-2 ratios now: 1.70 (16x32x32 -> 32), 2.02-2.21 (32x16x16 -> 64).
- col2im: one strided read-modify-write per kernel offset; the numba kernel does it in
  one pass (9.4 vs 16.8 ms on 16x32x32 -> 16).
- Max pooling in NumPy (offset loop with ``where``): 33 ms vs PyTorch's 10 ms; the numba
  kernels take 6 ms. Average pooling: 16 ms (reshape path) -> 3.6 ms.
- Chunking the batch so that each chunk's columns stay in cache, and unfolding again in
  backward, was 5-15% faster than one whole-batch pass and cut peak memory 4x
  (177 -> 44 MiB on 16x32x32 -> 16).

Usage: python benchmarks/bench_conv.py [--threads 1] [--repeat 5] [--batch 128] [--profile]
       [--clock cpu] [--winograd auto|on|off]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np
import torch
from threadpoolctl import threadpool_limits

# this checkout's normlab, not an installed one (as bench_models.py)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import normlab  # noqa: E402
from normlab import functional as F  # noqa: E402
from normlab.functional import _kernels, _winograd, _winograd4, _winograd_backward  # noqa: E402

# (name, input shape (N filled in), out channels, stride): ResNet-20's 3x3 convolutions.
CONV_SHAPES = [
    ("16x32x32 -> 16", (16, 32, 32), 16, 1),
    ("32x16x16 -> 32", (32, 16, 16), 32, 1),
    ("64x8x8 -> 64", (64, 8, 8), 64, 1),
    ("16x32x32 -> 32 s2", (16, 32, 32), 32, 2),
    ("32x16x16 -> 64 s2", (32, 16, 16), 64, 2),
]
# The other models' im2col convs at their own batch sizes (``--batch`` not applied): name,
# input (C, H, W), filters, kernel, stride, padding, batch, input gradient needed (a
# model's first layer: no, as in training).
MODEL_CONVS = [
    ("convnet 7x7 3->32 (first)", (3, 32, 32), 32, 7, 1, 3, 50, False),
    ("lenet 5x5 1->6 (first)", (1, 28, 28), 6, 5, 1, 2, 256, False),
    ("lenet 5x5 6->16", (6, 14, 14), 16, 5, 1, 0, 256, True),
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


def conv_pair(x, w, b, stride, padding=1, need_dx=True):
    def ours():
        out, cache = F.conv2d_forward(x, w, b, stride=stride, padding=padding)
        F.conv2d_backward(np.ones_like(out), cache, need_dx=need_dx)

    tx = torch.from_numpy(x).requires_grad_(need_dx)
    tw = torch.from_numpy(w).requires_grad_()
    tb = torch.from_numpy(b).requires_grad_()

    def theirs():
        tx.grad = tw.grad = tb.grad = None  # allocate fresh gradients, as normlab does
        out = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding)
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
    if _winograd.chosen(C, Fo, (3, 3), s, d, 1):
        m = _winograd.tile_for(OH, OW, N)
        wino = _winograd4 if m == 4 else _winograd
        d4 = dout.reshape(N, Fo, OH, OW)
        keep = C >= (_winograd.REUSE_MIN_CHANNELS or 10**9)
        tiles = wino.conv3x3(x, w, p, keep=True)[1] if keep else None
        stages = dict(winograd_stages(x, w, d4, wino, m), **{
            f"F({m}x{m}) fwd": lambda: wino.conv3x3(x, w, p, keep=keep),
            "dx+dW" + (" (V kept)" if keep else ""):
                lambda: _winograd_backward.backward3x3(m, x, d4, w, p, tiles),
            "dW" + (" (V kept)" if keep else ""):
                lambda: _winograd_backward.backward3x3(m, x, d4, w, p, tiles, need_dx=False)})
    return {k: best_and_median(f, repeat, clock)[0] for k, f in stages.items()}


def winograd_stages(x, w, dout, wino, m):
    """The Winograd forward's and weight gradient's stages on the whole batch: input
    transform (padding included), the GEMMs, output transform, dout transform, the weight
    gradient's GEMMs (the library runs them per cache-sized chunk)."""
    N, C, H, W = x.shape
    Fo = w.shape[0]
    TH, TW = H // m, W // m
    k = (m + 2) ** 2
    U = wino._transform_weight(w)
    V = np.empty((k, C, N, TH, TW), x.dtype)
    M = np.matmul(U, V.reshape(k, C, -1))
    D = np.empty((k, Fo, N, TH, TW), x.dtype)
    out = np.empty((N, Fo, H, W), x.dtype)
    return {
        "in-transform": lambda: wino._input_transform(x, (1, 1), V.transpose(0, 2, 1, 3, 4)),
        f"{k} gemms": lambda: np.matmul(U, V.reshape(k, C, -1)),
        "out-transform": lambda: wino._output_transform(
            M.reshape(k, Fo, N, TH, TW).transpose(0, 2, 1, 3, 4), out),
        "dout-transform": lambda: wino._dout_transform(dout, D.transpose(0, 2, 1, 3, 4)),
        f"dW {k} gemms": lambda: np.matmul(D.reshape(k, Fo, -1),
                                           V.reshape(k, C, -1).swapaxes(-1, -2)),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--winograd", choices=["auto", "on", "off"], default="auto",
                    help="normlab's Winograd F(2x2, 3x3) path for stride-1 3x3 convs")
    args = ap.parse_args(argv)
    _winograd.use_winograd({"auto": "auto", "on": True, "off": False}[args.winograd])
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    torch.set_num_threads(args.threads)
    normlab.set_num_threads(args.threads)  # else its conv chunks run on every core
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
        for name, shape, f_out, k, stride, pad, batch, need_dx in MODEL_CONVS:
            x = rng.standard_normal((batch,) + shape, dtype=np.float32)
            w = (rng.standard_normal((f_out, shape[0], k, k), dtype=np.float32) * 0.1)
            b = np.zeros(f_out, np.float32)
            rows.append((name,) + conv_pair(x, w, b, stride, pad, need_dx))
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
