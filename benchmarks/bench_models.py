"""normlab vs PyTorch on whole models: train step, eval forward, peak memory, CPU.

Each row builds one model of issue 12's table in normlab, copies its weights into a
PyTorch twin (built here from the normlab module tree: every normlab layer maps to the
``torch.nn`` layer of the same name, ``BasicBlock`` to a small torch module with the same
children, so ``state_dict`` keys are equal), checks that the two losses agree on the same
batch, then times the two libraries *interleaved* in this one process (normlab step, torch
step, normlab step, ...), float32, and prints the best time of each and their ratio
(normlab / torch: below 1 means normlab is faster).

A train step is forward + cross-entropy loss + backward + SGD (momentum 0.9, weight decay
5e-4, lr 0.01); an eval row is one forward in eval mode (torch under ``no_grad``).

Threads: ``--threads 1 2`` runs every row at each count; the count is applied to both
libraries (``torch.set_num_threads``; ``normlab.set_num_threads``, which sets normlab's
threads and numba's parallel kernels and puts NumPy's BLAS on one thread). With ``--clock cpu`` (the default)
the process CPU time is measured: on a shared machine it ignores time spent waiting for a
core, and at one thread it is the work done. At two threads CPU time counts both cores'
work (spinning included), so use ``--clock wall`` on a quiet machine for two-thread
figures; ``--separate`` then times each library alone in its own process, as the issue's
two-thread goal asks.

``--profile MODEL`` prints where normlab's train step goes: time per layer type and
direction (forward/backward), loss and optimizer, summed over ``--repeat`` steps, next to
PyTorch's own profiler table for the twin.

``--memory`` runs 5 train steps of each library in a fresh process per library and model
and reports the training working set: peak RSS (``ru_maxrss``) minus the RSS after one
warm-up step (weights, momentum buffers, the batch and the libraries themselves are in
the baseline; the step's activations, caches and gradients are the working set; normlab's
modules keep their caches until the next forward, so they are dropped before the baseline
is read, as torch drops its graph after backward). The
children run with ``MALLOC_MMAP_THRESHOLD_=131072`` so that freed large arrays leave the
RSS (see ``MEMORY_ENV``).

Examples::

    python benchmarks/bench_models.py                       # all rows, 1 thread, cpu clock
    python benchmarks/bench_models.py --threads 1 2 --clock wall --repeat 10
    python benchmarks/bench_models.py --models resnet20 lenet --profile resnet20
    python benchmarks/bench_models.py --memory
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_models.py
    python benchmarks/bench_models.py --device cuda --repeat 20   # both on the GPU

``--malloc tuned`` calls ``normlab.tune_allocator()`` in every timing process first (the
``normlab`` command does): freed activations are reused instead of page-faulted again
each step, which speeds both libraries up, by 10-30 % at 2 threads (see
``normlab/allocator.py``); the default leaves glibc's own behaviour, whose thresholds move
with what the process freed before, so that separate processes can differ by as much.

``--device cuda`` moves both models and the batch to the GPU (normlab through CuPy, its
reference code: the compiled kernels are NumPy's), times wall clock with both libraries'
queues drained before and after each step, and turns off TF32 in torch's convolutions
(cuDNN's default) so that both libraries compute in full float32.

Figures so far (issue 12's work, 2026-11-29, the shared 2-core Intel Xeon under load 9-20,
so CPU clock, 1 thread, interleaved, best of 3, ratio normlab / torch; to be re-run on a
quiet machine):

    model                           batch   before   after
    ResNet-20 (3x32x32)               128    1.45    1.31-1.47
    ResNet-20                          32    1.62    1.48-1.57
    LeNet with BN (1x28x28)           256    1.87    1.40-1.50
    ThreeLayerConvNet                  50    2.30    1.44-1.57
    ResNet-18, ImageNet stem, 64x64    16    2.52    1.19-1.21
    FC net 3072-100x3-10 with BN      100    1.10    0.95-1.07
    eval forward: ResNet-20           128    2.18    1.62-1.67
    eval forward: LeNet               256    2.42    1.72-1.78

Training working set (``--memory``, 1 thread), first round: ResNet-20 b128 333 vs 196 MiB
(1.70), b32 85 vs 49 (1.74), LeNet 1.53, ThreeLayerConvNet 1.12, ResNet-18 2.78, FC 0.78.
(ReLU caching its output instead of a mask took ResNet-20 b32 from 89.8 to 85.0 MiB but the
ConvNet, whose ReLU output nothing else keeps, from 0.96 to 1.12.)

Second round (2026-11-29 16:56-17:00, Intel Xeon, 2 cores shared with other work, load
1.2-3.4; before = commit 6be6903, after = commit b2ae5ee, each run twice back to back):

    model                           batch   1 thread before   after       2 threads before  after
    ResNet-20 (3x32x32)               128   1.49 / 1.50       1.37 / 1.33 2.96 / 2.88       2.17 / 1.95
    ResNet-20                          32   1.55 / 1.60       1.48 / 1.48 3.00 / 2.98       2.53 / 2.36
    LeNet with BN (1x28x28)           256   1.30 / 1.46       1.35 / 1.38
    ThreeLayerConvNet                  50   1.54 / 1.52       1.48 / 1.43
    ResNet-18, ImageNet stem, 64x64    16   1.25 / 1.24       1.21 / 1.22
    FC net 3072-100x3-10 with BN      100   1.17 / 1.09       0.97 / 0.95
    eval forward: ResNet-20           128   1.76 / 1.77       1.86 / 1.81
    eval forward: LeNet               256   1.75 / 1.83       1.68 / 1.77

(2 threads: ``--clock wall --separate``, each library alone in its process.) On the final
code (BN channels split too, load 1.4-1.6): 1 thread ResNet-20 b128 1.29, b32 1.50, LeNet
1.37, ThreeLayerConvNet 1.40, ResNet-18 1.20, FC 0.93, eval 1.60 / 1.65; 2 threads
ResNet-20 b128 1.81 / 1.95 (447 / 440 ms; before, run right after: 2.74, 630 ms), b32
2.51 / 2.82 (before 2.76), LeNet 2.13 (before 2.34). Working set
before -> after: ResNet-20 b128 1.70 -> 1.27 (333.3 -> 249.7 MiB vs 196), b32 1.72 -> 1.32,
LeNet 1.55 -> 1.49, ThreeLayerConvNet 1.11 -> 1.11, ResNet-18 2.77 -> 2.12 (66.7 -> 51.0
MiB vs 24), FC 0.74 -> 0.67: the Winograd input transforms are no longer kept for the weight
gradient (``_winograd.REUSE_MIN_CHANNELS = None``); most of the rest was thought to be BN's
cached ``x_hat``, but keeping BN's input instead saved nothing (the conv output it keeps was
freed before): the caches held through the whole backward and the old gradients were it.

Third round (memory, eval; before = cea7e92, after = 4e3b56b, contended, 1 thread): working
set ResNet-20 b128 1.27 -> 1.09, b32 1.32 -> 1.15, LeNet 1.49 -> 1.04, ThreeLayerConvNet
1.12 -> 1.01, ResNet-18 2.13 -> 1.30, FC 0.80 -> 0.75 (modules free their caches in
backward; the normlab step frees last step's gradients first, as the torch step does); eval
forward (under ``normlab.nn.no_grad()`` now) ResNet-20 1.77-1.86 -> 1.65-1.73, LeNet
1.69-1.79 -> 1.62-1.74; train steps within noise. See README "Performance".

The latest figures (2026-11-30, fourth session, final code 755513c: the Winograd
transforms without a Python flat view per call, inference in place; 1 thread, ratio
normlab / torch, as is / under the second BLAS setting): ResNet-20 b128 0.86 / 0.88, b32
1.01 / 1.02, LeNet 0.93 / 0.95, ThreeLayerConvNet 0.91 / 0.96, ResNet-18 0.88 / 0.91, FC
0.90 / 0.87, eval ResNet-20 1.03 / 1.03, eval LeNet 0.93 / 0.95 (torch's own times moved
by several percent between runs); README "Performance" has each round's before and after.
Fifth session (code 3834632: gradients handed over between modules, the two-pass
Winograd backward; a machine 10-20 % slower than the day before for both libraries):
ResNet-20 b128 0.87 / 0.88, b32 1.01 / 1.02, LeNet 0.91 / 0.90, ThreeLayerConvNet 1.02 /
0.98, ResNet-18 0.88 / 0.93, FC 0.96 / 0.94, eval ResNet-20 1.09 / 1.04, eval LeNet 0.95 /
0.95; working set (bdf50af) 0.98, 0.99, 0.84, 0.75, 0.98, 0.04.

The second BLAS setting of the issue is the environment: run once as is and once under
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`` (OpenBLAS's own kernel choice); the
header prints the BLAS NumPy uses.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import time
from typing import NamedTuple

import numpy as np

# this checkout's normlab, not an installed one (run from anywhere)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch
import torch.nn.functional as TF
from torch import nn as tnn

import normlab  # noqa: E402
from normlab import backend, models, nn, optim
from normlab.interop import to_torch_state_dict

LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


class Row(NamedTuple):
    name: str
    label: str
    build: object  # () -> normlab model
    shape: tuple  # per-sample input shape
    batch: int
    train: bool  # train step (True) or eval forward (False)


ROWS = {
    "resnet20": Row("resnet20", "ResNet-20 (3x32x32)", lambda: models.resnet20(rng=0),
                    (3, 32, 32), 128, True),
    "resnet20-b32": Row("resnet20-b32", "ResNet-20 (3x32x32)", lambda: models.resnet20(rng=0),
                        (3, 32, 32), 32, True),
    "lenet": Row("lenet", "LeNet with BN (1x28x28)", lambda: models.LeNet(norm="batch", rng=0),
                 (1, 28, 28), 256, True),
    "convnet": Row("convnet", "ThreeLayerConvNet (course defaults)",
                   lambda: models.ThreeLayerConvNet(rng=0), (3, 32, 32), 50, True),
    "resnet18": Row("resnet18", "ResNet-18, ImageNet stem, 3x64x64",
                    lambda: models.resnet18(rng=0), (3, 64, 64), 16, True),
    "mlp": Row("mlp", "FC net 3072-100x3-10 with BN",
               lambda: models.FullyConnectedNet((100, 100, 100), norm="batch", rng=0),
               (3, 32, 32), 100, True),
    "resnet20-eval": Row("resnet20-eval", "eval forward: ResNet-20",
                         lambda: models.resnet20(rng=0), (3, 32, 32), 128, False),
    "lenet-eval": Row("lenet-eval", "eval forward: LeNet", lambda: models.LeNet(norm="batch", rng=0),
                      (1, 28, 28), 256, False),
}


# ---------------------------------------------------------------- the torch twin
class _TBlock(tnn.Module):
    """torch twin of ``models.BasicBlock`` (same child names, same forward)."""

    def __init__(self, block):
        super().__init__()
        for name in ("conv1", "bn1", "relu1", "conv2", "bn2", "relu2"):
            setattr(self, name, twin(getattr(block, name)))
        self.downsample = None if block.downsample is None else twin(block.downsample)

    def forward(self, x):
        main = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(main + (x if self.downsample is None else self.downsample(x)))


def twin(m) -> tnn.Module:
    """The ``torch.nn`` module with the same structure and state_dict keys as ``m``."""
    if isinstance(m, models.BasicBlock):
        return _TBlock(m)
    if isinstance(m, nn.Sequential):  # also NamedChain, ResNet, LeNet, ...
        return tnn.Sequential(collections.OrderedDict(
            (name, twin(child)) for name, child in m.named_children()))
    if isinstance(m, nn.Conv2d):
        return tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                          m.dilation, m.groups, bias="bias" in m.params)
    if isinstance(m, nn.Linear):
        return tnn.Linear(m.in_features, m.out_features, bias="bias" in m.params)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        cls = tnn.BatchNorm2d if isinstance(m, nn.BatchNorm2d) else tnn.BatchNorm1d
        return cls(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine)
    if isinstance(m, nn.MaxPool2d):
        return tnn.MaxPool2d(m.kernel_size, m.stride, m.padding)
    if isinstance(m, nn.AvgPool2d):
        return tnn.AvgPool2d(m.kernel_size, m.stride, m.padding)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return tnn.AdaptiveAvgPool2d(m.output_size)
    if isinstance(m, nn.Flatten):
        return tnn.Flatten(m.start_dim, m.end_dim)
    simple = {nn.ReLU: tnn.ReLU, nn.Sigmoid: tnn.Sigmoid, nn.Tanh: tnn.Tanh,
              nn.Identity: tnn.Identity}
    for ours, theirs in simple.items():
        if type(m) is ours:
            return theirs()
    raise TypeError(f"twin: no torch twin for {type(m).__name__}")


# ---------------------------------------------------------------- one model pair
class Pair:
    """A normlab model and its torch twin with equal weights, one batch, step functions."""

    def __init__(self, row: Row, seed: int = 0, device: str = "cpu"):
        self.row, self.device = row, device
        self.ours = row.build()
        self.theirs = twin(self.ours)
        self.theirs.load_state_dict(to_torch_state_dict(self.ours))
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((row.batch,) + row.shape).astype(np.float32)
        y = rng.integers(0, 10, row.batch)
        self.tx, self.ty = torch.from_numpy(x.copy()).to(device), torch.from_numpy(y).to(device)
        self.x, self.y = backend.to_device(x, device), backend.to_device(y, device)
        self.ours.to(device)
        self.theirs.to(device)
        self.loss_fn = nn.CrossEntropyLoss()
        self.opt = optim.SGD(self.ours.parameters(), lr=LR, momentum=MOMENTUM,
                             weight_decay=WEIGHT_DECAY)
        self.topt = torch.optim.SGD(self.theirs.parameters(), lr=LR, momentum=MOMENTUM,
                                    weight_decay=WEIGHT_DECAY)
        self.ours.train(row.train)
        self.theirs.train(row.train)
        # the batch needs no gradient in either library (torch: x.requires_grad False)
        self.ours.set_requires_dx(False)

    def step_ours(self):
        if not self.row.train:
            with nn.no_grad():  # as torch's eval below: inference keeps no caches
                return self.ours(self.x)
        self.opt.zero_grad(set_to_none=True)  # the same loop as torch's below: last
        # step's gradients are not held through this backward (normlab's backward would
        # overwrite them anyway; freed first, they leave the working set, as in torch)
        loss = self.loss_fn(self.ours(self.x), self.y)
        self.ours.backward(self.loss_fn.backward())
        self.opt.step()
        return loss

    def step_theirs(self):
        if not self.row.train:
            with torch.no_grad():
                return self.theirs(self.tx)
        self.topt.zero_grad(set_to_none=True)
        loss = TF.cross_entropy(self.theirs(self.tx), self.ty)
        loss.backward()
        self.topt.step()
        return loss

    def check(self) -> float:
        """Relative difference of the first step's losses (train) or outputs (eval)."""
        a = backend.to_numpy(self.step_ours()).astype(np.float64)
        b = self.step_theirs().detach().cpu().numpy().astype(np.float64)
        err = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))
        if not err < 1e-3:
            raise AssertionError(f"{self.row.name}: normlab and torch disagree "
                                 f"(relative difference {err:.2e})")
        return err


def set_threads(n: int) -> None:
    torch.set_num_threads(n)
    normlab.set_num_threads(n)


def synchronize(device: str) -> None:
    """Wait for both libraries' queued GPU work (nothing to wait for on the CPU)."""
    if device == "cuda":
        backend._get_cupy().cuda.Device().synchronize()
        torch.cuda.synchronize()


def timed(fn, clock, device: str = "cpu") -> float:
    synchronize(device)
    t0 = clock()
    fn()
    synchronize(device)
    return clock() - t0


def compare(pair: Pair, repeat: int, clock) -> tuple[float, float]:
    """Best times (s) of normlab's and torch's step, interleaved, after the check step."""
    pair.step_ours(), pair.step_theirs()  # warm-up (numba compile, allocator, CUDA kernels)
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(timed(pair.step_ours, clock, pair.device))
        theirs.append(timed(pair.step_theirs, clock, pair.device))
    return min(ours), min(theirs)


def alone(name: str, lib: str, threads: int, repeat: int, clock_name: str,
          malloc: str = "default") -> float:
    """Best step time of one library in a fresh process (``--separate``)."""
    out = subprocess.run([sys.executable, __file__, "--_child", "time", name, lib,
                          str(threads), str(repeat), clock_name, malloc],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- profile
def profile(name: str, repeat: int, clock, device: str = "cpu") -> None:
    """Per layer type and direction: normlab's time over ``repeat`` train steps (on the
    GPU each op's queued work is waited for before and after it is timed)."""
    pair = Pair(ROWS[name], device=device)
    pair.check()
    pair.step_ours()
    totals: dict[str, float] = collections.defaultdict(float)
    leaves = [m for m in pair.ours.modules() if not m._modules] + [pair.loss_fn]

    def wrap(m, method, key):
        fn = getattr(m, method)

        def timed_call(*a, **k):
            synchronize(device)
            t0 = clock()
            r = fn(*a, **k)
            synchronize(device)
            totals[key] += clock() - t0
            return r
        setattr(m, method, timed_call)
        return fn

    for m in leaves:
        cls = type(m).__name__
        shape = getattr(m, "in_channels", None)
        tag = f"{cls}({shape})" if shape is not None else cls
        wrap(m, "forward", f"{tag} forward")
        wrap(m, "backward", f"{tag} backward")
    wrap(pair.opt, "step", "SGD step")
    # one untimed step under the wrappers first: they turn the fusion off, and the first
    # unfused step touches fresh memory (a 3-step profile of ResNet-20 b32 showed ReLU's
    # backward at 34.7 ms a step against 4.7 with 10 steps)
    pair.step_ours()
    totals.clear()
    whole = 0.0
    for _ in range(repeat):
        whole += timed(pair.step_ours, clock, device)
    for m in leaves:  # undo the wrappers
        m.__dict__.pop("forward", None)
        m.__dict__.pop("backward", None)
    pair.opt.__dict__.pop("step", None)
    print(f"\nnormlab {name}: {1e3 * whole / repeat:.1f} ms per step; by op (ms per step; the "
          "timing wrappers turn the BN + ReLU fusion of nn._fusion off, so those run "
          "unfused here):")
    for key, t in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {key:44s} {1e3 * t / repeat:8.2f}  {100 * t / whole:5.1f} %")
    print(f"  {'(between ops: containers, adds)':44s} "
          f"{1e3 * (whole - sum(totals.values())) / repeat:8.2f}")
    from torch.profiler import ProfilerActivity  # noqa: PLC0415
    from torch.profiler import profile as tprofile  # noqa: PLC0415
    gpu = device == "cuda"
    with tprofile(activities=[ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * gpu) as prof:
        for _ in range(repeat):
            pair.step_theirs()
        synchronize(device)
    print(f"\ntorch {name} ({repeat} steps):")
    print(prof.key_averages().table(sort_by="self_cuda_time_total" if gpu
                                    else "self_cpu_time_total", row_limit=15))


# ---------------------------------------------------------------- memory
def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def child(argv) -> None:
    kind, name, lib = argv[:3]
    pair = Pair(ROWS[name])
    step = pair.step_ours if lib == "normlab" else pair.step_theirs
    if kind == "memory":
        del argv
        # keep only the library under test alive
        if lib == "normlab":
            del pair.theirs, pair.topt
        else:
            del pair.ours, pair.opt
        set_threads(1)
        step()
        if lib == "normlab":  # modules keep their last forward's caches; torch frees its
            pair.ours._invalidate_caches()  # graph after backward: both baselines without
            pair.loss_fn._cache = None  # activations
        base = rss_kib()
        for _ in range(5):
            step()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        print(json.dumps({"baseline_mib": base / 1024, "peak_mib": peak / 1024,
                          "working_mib": (peak - base) / 1024}))
        return
    threads, repeat, clock_name, malloc = int(argv[3]), int(argv[4]), argv[5], argv[6]
    if malloc == "tuned":
        normlab.tune_allocator()
    set_threads(threads)
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    step(), step()
    print(min(timed(step, clock) for _ in range(repeat)))


# glibc raises its mmap threshold (up to 32 MiB) each time a large block is freed, after
# which freed activations stay resident: the RSS after warm-up would then include them
# and hide the working set. A fixed threshold keeps large arrays mmapped and returned on
# free, in both libraries' processes (PyTorch's CPU allocator uses malloc too).
MEMORY_ENV = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")


def memory(names) -> None:
    print(f"\n{'model':38s} {'normlab MiB':>12s} {'torch MiB':>10s} {'ratio':>6s}"
          "   (peak RSS - RSS after warm-up, 5 steps, 1 thread)")
    for name in names:
        got = {}
        for lib in ("normlab", "torch"):
            out = subprocess.run([sys.executable, __file__, "--_child", "memory", name, lib],
                                 capture_output=True, text=True, check=True, env=MEMORY_ENV)
            got[lib] = json.loads(out.stdout.strip().splitlines()[-1])
        a, b = got["normlab"]["working_mib"], got["torch"]["working_mib"]
        print(f"{ROWS[name].label + ' b' + str(ROWS[name].batch):38s} {a:12.1f} {b:10.1f} "
              f"{a / max(b, 1e-9):6.2f}")


# ---------------------------------------------------------------- main
def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_child"]:
        child(argv[1:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", choices=list(ROWS), default=list(ROWS))
    p.add_argument("--threads", nargs="+", type=int, default=[1])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    p.add_argument("--separate", action="store_true",
                   help="time each library alone in its own process")
    p.add_argument("--profile", choices=list(ROWS), help="per-op profile of one model")
    p.add_argument("--memory", action="store_true", help="peak memory rows (train models)")
    p.add_argument("--no-timing", action="store_true", help="skip the timing table")
    p.add_argument("--malloc", choices=("default", "tuned"), default="default",
                   help="tuned: normlab.tune_allocator() in every timing process (both "
                        "libraries), as the normlab command does; default: glibc's own")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda: both libraries on the GPU (normlab through CuPy), wall clock")
    args = p.parse_args(argv)
    if args.device == "cuda":
        if args.separate or args.memory:
            p.error("--device cuda times the interleaved table and --profile only "
                    "(not --separate or --memory)")
        if not (backend.cupy_available() and torch.cuda.is_available()):
            p.error("--device cuda needs CuPy and torch to see a CUDA device; "
                    f"CuPy: {backend.cupy_available()}, torch: {torch.cuda.is_available()}")
        args.clock = "wall"  # CPU time says nothing about GPU work
        torch.backends.cudnn.allow_tf32 = False  # full float32, as CuPy computes
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.malloc == "tuned" and not normlab.tune_allocator():
        p.error("--malloc tuned: glibc's mallopt is not available here, or the environment "
                "sets MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_")
    blas = normlab.functional.dispatch.blas_info() or {}
    print(f"normlab {normlab.__version__}, torch {torch.__version__}, NumPy BLAS "
          f"{blas.get('library')} {blas.get('version')} ({blas.get('core')}), kernels "
          f"{normlab.get_kernels()}, device {args.device}, malloc {args.malloc}, "
          f"clock {args.clock}, "
          f"best of {args.repeat}"
          f"{', each library alone' if args.separate else ', interleaved'}")
    if not args.no_timing:
        for threads in args.threads:
            set_threads(threads)
            print(f"\n{threads} thread(s)\n{'model':38s} {'batch':>5s} {'normlab ms':>11s} "
                  f"{'torch ms':>9s} {'ratio':>6s} {'loss diff':>9s}")
            for name in args.models:
                row = ROWS[name]
                pair = Pair(row, device=args.device)
                err = pair.check()
                if args.separate:
                    del pair
                    a = alone(name, "normlab", threads, args.repeat, args.clock, args.malloc)
                    b = alone(name, "torch", threads, args.repeat, args.clock, args.malloc)
                else:
                    a, b = compare(pair, args.repeat, clock)
                print(f"{row.label:38s} {row.batch:5d} {1e3 * a:11.1f} {1e3 * b:9.1f} "
                      f"{a / b:6.2f} {err:9.1e}", flush=True)
    if args.profile:
        set_threads(args.threads[0])
        profile(args.profile, args.repeat, clock, args.device)
    if args.memory:
        memory([n for n in args.models if ROWS[n].train])


if __name__ == "__main__":
    main()
