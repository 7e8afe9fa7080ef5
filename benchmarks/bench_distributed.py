"""Data-parallel step time: ResNet-20, batch 128 (3x32x32, float32), SGD with momentum.

Configurations, each in its own process(es) so that thread counts are set before NumPy
loads its BLAS (OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS):

    normlab 1 process x 1 thread        Trainer
    normlab 1 process x 2 threads       Trainer
    normlab 2 processes x 1 thread      DataParallelTrainer + SyncBatchNorm (mpiexec -n 2)
    normlab 2 processes x 1 thread      DataParallelTrainer, plain per-rank BatchNorm
    torch   1 process x 2 threads       the same network and step in torch.nn

A step is what ``Trainer.fit`` does per batch (forward, loss, backward, gradient
all-reduce in buckets where distributed, optimizer step), timed by a callback between
consecutive step ends after ``--warmup`` steps; the median and the best are printed.
The SyncBatchNorm overhead is the difference of the two 2-process medians (the
all-gather of the moments and the all-reduce of the backward sums, 19 layers each,
plus the waits they add); the time rank 0 spends inside the collectives is printed too
(all-gathers are SyncBN's; all-reduces are the gradient buckets, the loss totals and
SyncBN's backward sums; both include waiting for the slower rank). Scaling efficiency = t(1 x 1) / (2 * t(2 x 1)).

Run: ``python benchmarks/bench_distributed.py [--steps 5] [--warmup 2]``.
Figures of one run are in the README and docs/distributed.md, with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH, CLASSES = 128, 10


def _data(n=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 3, 32, 32)).astype(np.float32),
            rng.integers(0, CLASSES, n))


# ---------------------------------------------------------------- workers (one config each)
def _normlab_worker(args) -> dict:
    from normlab import nn, optim
    from normlab.distributed import init
    from normlab.models import resnet20
    from normlab.train import Callback, DataParallelTrainer, Trainer

    class Clock(Callback):
        def __init__(self):
            self.ends = [time.perf_counter()]

        def on_step_end(self, trainer, logs):
            self.ends.append(time.perf_counter())

    from normlab.distributed import Communicator

    class Timed(Communicator):
        """The launch's communicator, adding up the seconds spent in each collective."""

        def __init__(self, inner):
            self.inner, self.rank, self.size = inner, inner.rank, inner.size
            self.seconds = {"allgather": 0.0, "allreduce": 0.0}

        def _timed(self, name, array):
            t0 = time.perf_counter()
            out = getattr(self.inner, name)(array)
            self.seconds[name] += time.perf_counter() - t0
            return out

        def allreduce(self, array):
            return self._timed("allreduce", array)

        def allgather(self, array):
            return self._timed("allgather", array)

        def broadcast(self, obj, root=0):
            return self.inner.broadcast(obj, root)

        def barrier(self):
            self.inner.barrier()

    comm = Timed(init())
    X, y = _data(BATCH * (args.warmup + args.steps))
    model = resnet20(num_classes=CLASSES, rng=0)
    if comm.size > 1 and args.sync:
        nn.convert_sync_batchnorm(model, comm)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    clock = Clock()
    kw = dict(progress=False, callbacks=[clock])
    trainer = (DataParallelTrainer(model, opt, comm=comm, **kw) if comm.size > 1
               else Trainer(model, opt, **kw))
    from normlab.data import DataLoader

    trainer.fit(DataLoader(X, y, batch_size=BATCH, shuffle=False, rng=0), epochs=1)
    times = np.diff(clock.ends)[args.warmup:]
    steps = args.warmup + args.steps
    return {"times": times.tolist(), "size": comm.size, "rank": comm.rank,
            "comm_ms": {k: v / steps * 1e3 for k, v in comm.seconds.items()}}


def _torch_worker(args) -> dict:
    import torch
    from torch import nn as tnn

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    class Block(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False),
                                           tnn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + (x if self.down is None else self.down(x)))

    layers, cin = [tnn.Conv2d(3, 16, 3, 1, 1, bias=False), tnn.BatchNorm2d(16), tnn.ReLU()], 16
    for i, w in enumerate((16, 32, 64)):
        for b in range(3):
            layers.append(Block(cin, w, 2 if (i > 0 and b == 0) else 1))
            cin = w
    layers += [tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(64, CLASSES)]
    model = tnn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    X, y = _data()
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    ends = [time.perf_counter()]
    for _ in range(args.warmup + args.steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        float(loss)
        ends.append(time.perf_counter())
    return {"times": np.diff(ends)[args.warmup:].tolist(), "size": 1, "rank": 0}


# ---------------------------------------------------------------- driver
def _env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    return env


def _run(label, worker, threads, nproc, args, sync=True):
    me = [str(Path(__file__).resolve()), "--worker", worker, "--threads", str(threads),
          "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if not sync:
        me.append("--local-bn")
    if nproc > 1:
        from normlab.distributed import launch_env, mpiexec_command

        cmd, env = mpiexec_command(nproc, me), launch_env(threads, _env(threads))
    else:
        cmd, env = [sys.executable, *me], _env(threads)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{label} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    first = next(r for r in lines if r["rank"] == 0)
    times = first["times"]
    med, best = statistics.median(times) * 1e3, min(times) * 1e3
    extra = ""
    if nproc > 1:
        c = first["comm_ms"]
        extra = (f"  (rank 0 in collectives: all-gather {c['allgather']:.0f} ms, all-reduce "
                 f"{c['allreduce']:.0f} ms per step, waits included)")
    print(f"{label:44s} {med:9.0f} {best:9.0f}{extra}", flush=True)
    return med


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--worker", choices=("normlab", "torch"), default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--local-bn", dest="sync", action="store_false")
    args = p.parse_args(argv)
    if args.worker is not None:
        result = (_torch_worker if args.worker == "torch" else _normlab_worker)(args)
        if result["rank"] == 0:
            print(json.dumps(result), flush=True)
        return
    print(f"ResNet-20, batch {BATCH}, float32; ms per step (median, best of {args.steps} "
          f"after {args.warmup} warm-up); load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    print(f"{'configuration':44s} {'median':>9s} {'best':>9s}")
    t11 = _run("normlab 1 process x 1 thread", "normlab", 1, 1, args)
    t12 = _run("normlab 1 process x 2 threads", "normlab", 2, 1, args)
    t21 = _run("normlab 2 processes x 1 thread (SyncBN)", "normlab", 1, 2, args)
    t21l = _run("normlab 2 processes x 1 thread (local BN)", "normlab", 1, 2, args, sync=False)
    tt = _run("torch 1 process x 2 threads", "torch", 2, 1, args)
    print(f"speed-up 1x2 threads: {t11 / t12:.2f}x; 2x1 processes: {t11 / t21:.2f}x "
          f"(scaling efficiency {t11 / (2 * t21):.0%}); torch 2 threads vs normlab 2x1: "
          f"{t21 / tt:.2f}x")
    print(f"SyncBatchNorm overhead per step: {t21 - t21l:+.0f} ms "
          f"({(t21 - t21l) / t21l:+.1%} of the local-BN step)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
