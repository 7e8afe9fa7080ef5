"""Worker of test_data_parallel: ResNet-20 trained data-parallel, then resumed.

mpiexec -n K python -m tests.distributed._resnet_worker DIR

Reads ``DIR/setup.npz`` (data, initial state of rank 0, hyperparameters). Rank 0 loads
the initial state; the other ranks start from a *different* random model, which the
trainer must overwrite by broadcasting rank 0's. Writes, per rank r:

- ``final-r.npz``: state after ``steps`` data-parallel SGD-momentum steps (SyncBN);
- ``resumed-r.npz``: state after ``steps - 2`` steps with a checkpoint every step, then a
  fresh trainer resumed from that checkpoint to ``steps``;
- ``history-r.json`` (rank 0 also has ``ckpt/history.jsonl``, the only file writer).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from normlab import nn, optim
from normlab.data import DataLoader
from normlab.distributed import init
from normlab.models import resnet20
from normlab.train import DataParallelTrainer


def build(setup, comm):
    rng = 0 if comm.rank == 0 else 100 + comm.rank
    model = resnet20(base_width=int(setup["width"]), num_classes=int(setup["classes"]),
                     dtype=np.float64, rng=rng)
    if comm.rank == 0:
        model.load_state_dict({k[len("init/"):]: v for k, v in setup.items()
                               if k.startswith("init/")})
    nn.convert_sync_batchnorm(model, comm)
    opt = optim.SGD(model.parameters(), lr=float(setup["lr"]), momentum=0.9,
                    weight_decay=float(setup["weight_decay"]))
    loader = DataLoader(setup["X"], setup["y"], batch_size=int(setup["batch_size"]),
                        shuffle=True, rng=int(setup["loader_seed"]))
    return model, opt, loader


def main(folder: str) -> None:
    out = Path(folder)
    setup = dict(np.load(out / "setup.npz"))
    steps = int(setup["steps"])
    comm = init()

    model, opt, loader = build(setup, comm)
    trainer = DataParallelTrainer(model, opt, comm=comm, progress=False, bucket_mb=0.01)
    history = trainer.fit(loader, steps=steps)
    np.savez(out / f"final-{comm.rank}.npz", **model.state_dict())
    records = [{k: r[k] for k in ("step", "train_loss", "train_acc")} for r in history.records]
    (out / f"history-{comm.rank}.json").write_text(json.dumps(
        {"records": records, "buckets": len(trainer.buckets.buckets),
         "calls": trainer.buckets.calls, "params": len(trainer.buckets.params)}))

    ckpt = out / "ckpt"
    model, opt, loader = build(setup, comm)
    DataParallelTrainer(model, opt, comm=comm, progress=False, checkpoint_dir=ckpt,
                        checkpoint_every=1).fit(loader, steps=steps - 2)
    model, opt, loader = build(setup, comm)
    DataParallelTrainer(model, opt, comm=comm, progress=False, checkpoint_dir=ckpt,
                        checkpoint_every=1).fit(loader, steps=steps, resume_from=ckpt)
    np.savez(out / f"resumed-{comm.rank}.npz", **model.state_dict())


if __name__ == "__main__":
    main(sys.argv[1])
