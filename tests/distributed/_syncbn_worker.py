"""Worker of test_sync_batchnorm: SyncBatchNorm on this rank's slice of each case.

mpiexec -n K python -m tests.distributed._syncbn_worker DIR

For every ``DIR/case-*.npz`` (written by the test: two steps of full-batch inputs ``x0,
x1``, upstream gradients ``d0, d1``, per-rank sample counts ``splits``, the layer's
weight, bias and hyperparameters), rank r takes its contiguous slice, runs two training
steps of SyncBatchNorm and of a plain per-rank BatchNorm (the negative control) and
writes ``DIR/out-<case>-<r>.npz``; parameter gradients are summed over the ranks, as the
data-parallel trainer does. A case with ``expect_error`` records the ValueError message.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from normlab import nn
from normlab.distributed import init

_PLAIN = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}


def _layer(cls, case, **kw):
    momentum = None if np.isnan(case["momentum"]) else float(case["momentum"])
    layer = cls(int(case["C"]), momentum=momentum, affine=bool(case["affine"]),
                dtype=np.float64, **kw)
    if layer.affine:
        layer.params["weight"] = case["weight"].copy()
        layer.params["bias"] = case["bias"].copy()
    return layer


def run_case(path: Path, comm) -> None:
    case = dict(np.load(path))
    splits = [int(s) for s in case["splits"]]
    if len(splits) != comm.size:
        raise ValueError(f"{path.name}: expected {len(splits)} ranks, got {comm.size}")
    start = sum(splits[:comm.rank])
    part = slice(start, start + splits[comm.rank])
    name = path.stem[len("case-"):]
    sync = _layer(nn.SyncBatchNorm, case, comm=comm)
    out = {}
    if "expect_error" in case:
        try:
            sync(case["x0"][part])
        except ValueError as e:
            out["error"] = np.array(str(e))
        np.savez(path.parent / f"out-{name}-{comm.rank}.npz", **out)
        return
    plain = _layer(_PLAIN[case["x0"].ndim], case)
    for step in (0, 1):
        x, d = case[f"x{step}"][part], case[f"d{step}"][part]
        out[f"out{step}"] = sync(x)
        out[f"dx{step}"] = sync.backward(d)
        for key, g in sync.grads.items():
            out[f"d{key}{step}"] = comm.allreduce(g)  # the trainer's gradient all-reduce
        if len(x) > 1:
            out[f"plain_out{step}"] = plain(x)
    for key, b in sync.buffers.items():
        out[key] = b
    np.savez(path.parent / f"out-{name}-{comm.rank}.npz", **out)


def main(folder: str) -> None:
    comm = init()
    for path in sorted(Path(folder).glob("case-*.npz")):
        run_case(path, comm)


if __name__ == "__main__":
    main(sys.argv[1])
