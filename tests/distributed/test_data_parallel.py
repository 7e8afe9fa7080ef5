"""DataParallelTrainer: equal to the one-process Trainer on the same global batches.

The multi-process test trains a small-width ResNet-20 (float64, SyncBatchNorm, SGD with
momentum and weight decay) for 5 steps on 2 real MPI processes with global batches of
11 (6 + 5 samples per rank) and compares with the one-process run done here (1e-10).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from normlab import nn, optim
from normlab.data import DataLoader
from normlab.distributed import DistributedError, SingleProcessCommunicator
from normlab.models import resnet20
from normlab.train import DataParallelTrainer, Trainer

from tests.distributed._fakes import CountingComm
from tests.distributed._mpi import launch

SETUP = {"width": 4, "classes": 5, "lr": 0.1, "weight_decay": 1e-3, "batch_size": 11,
         "loader_seed": 7, "steps": 5}


def _data(n=33, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3, 8, 8))
    y = rng.integers(0, SETUP["classes"], n)
    return X, y


def test_resnet20_on_two_processes_equals_one_process(tmp_path):
    X, y = _data()
    init = resnet20(base_width=SETUP["width"], num_classes=SETUP["classes"], dtype=np.float64,
                    rng=0)
    np.savez(tmp_path / "setup.npz", X=X, y=y, **SETUP,
             **{f"init/{k}": v for k, v in init.state_dict().items()})
    launch(2, "_resnet_worker", tmp_path)

    model = resnet20(base_width=SETUP["width"], num_classes=SETUP["classes"],
                     dtype=np.float64, rng=0)
    opt = optim.SGD(model.parameters(), lr=SETUP["lr"], momentum=0.9,
                    weight_decay=SETUP["weight_decay"])
    loader = DataLoader(X, y, batch_size=SETUP["batch_size"], shuffle=True,
                        rng=SETUP["loader_seed"])
    history = Trainer(model, opt, progress=False).fit(loader, steps=SETUP["steps"])
    ref = model.state_dict()

    finals = [dict(np.load(tmp_path / f"final-{r}.npz")) for r in range(2)]
    assert sorted(finals[0]) == sorted(ref)
    moved = max(float(np.abs(ref[k] - init.state_dict()[k]).max()) for k in ref)
    assert moved > 1e-2  # the run really trained
    for k in ref:
        np.testing.assert_allclose(finals[0][k], ref[k], rtol=0, atol=1e-10, err_msg=k)
        np.testing.assert_array_equal(finals[1][k], finals[0][k], err_msg=k)  # in step
    assert int(finals[0]["bn1.num_batches_tracked"]) == SETUP["steps"]

    info = json.loads((tmp_path / "history-0.json").read_text())
    got = [r["train_loss"] for r in info["records"]]
    np.testing.assert_allclose(got, [r["train_loss"] for r in history.records], rtol=1e-12)
    assert [r["train_acc"] for r in info["records"]] == \
        [r["train_acc"] for r in history.records]
    assert 1 < info["buckets"] < info["params"]  # bucketed: fewer calls than parameters
    assert info["calls"] == info["buckets"] * SETUP["steps"]

    resumed = [dict(np.load(tmp_path / f"resumed-{r}.npz")) for r in range(2)]
    for r in range(2):
        for k in ref:
            np.testing.assert_array_equal(resumed[r][k], finals[r][k], err_msg=f"{r} {k}")
    lines = (tmp_path / "ckpt" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4, 5]  # rank 0 only


# ---------------------------------------------------------------- one process, no MPI
def _mlp(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(6, 8, dtype=np.float64, rng=rng),
                         nn.BatchNorm1d(8, dtype=np.float64), nn.ReLU(),
                         nn.Linear(8, 3, dtype=np.float64, rng=rng))


def _fit(cls, steps=4, **kw):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((20, 6)), rng.integers(0, 3, 20)
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = cls(model, opt, progress=False, **kw)
    history = trainer.fit(DataLoader(X, y, batch_size=7, rng=3),
                          DataLoader(X, y, batch_size=8, shuffle=False), steps=steps)
    return trainer, history


def test_one_process_data_parallel_equals_trainer():
    ref, ref_hist = _fit(Trainer)
    dp, dp_hist = _fit(DataParallelTrainer, comm=SingleProcessCommunicator())
    for k, v in ref.model.state_dict().items():
        np.testing.assert_allclose(dp.model.state_dict()[k], v, rtol=1e-13, atol=1e-15)
    for a, b in zip(ref_hist.records, dp_hist.records):
        assert a["step"] == b["step"] and a["epoch_end"] == b["epoch_end"]
        np.testing.assert_allclose(b["train_loss"], a["train_loss"], rtol=1e-13)
        assert a["train_acc"] == b["train_acc"] and a["val_acc"] == b["val_acc"]
    assert dp.is_main and dp.world_size == 1


class _Disagreeing(CountingComm):
    """Two ranks whose second one sends different bytes to every allgather."""

    def allgather(self, array):
        return np.stack([np.asarray(array), np.asarray(array) + 1])


def test_data_parallel_refuses_different_models_and_loaders():
    model = _mlp()
    with pytest.raises(DistributedError, match="expected the same models .* on every rank, "
                                               "got different ones on ranks \\[1\\]"):
        DataParallelTrainer(model, optim.SGD(model.parameters(), lr=0.1),
                            comm=_Disagreeing(size=2))


def test_resume_refuses_another_number_of_processes(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((20, 6)), rng.integers(0, 3, 20)
    model = _mlp()
    two = DataParallelTrainer(model, optim.SGD(model.parameters(), lr=0.1),
                              comm=CountingComm(size=2), progress=False,
                              checkpoint_dir=tmp_path)
    two.fit(DataLoader(X, y, batch_size=10, rng=3), steps=1)
    assert json.loads((tmp_path / "ckpt-00000001.json").read_text()
                      )["trainer_state"]["world_size"] == 2
    model = _mlp()
    one = Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress=False)
    before = model.state_dict()
    with pytest.raises(ValueError, match="Trainer.load: expected a checkpoint saved by 1 "
                                         "process\\(es\\), got one saved by 2. Resume with "
                                         "the same number of processes \\(--nproc 2\\)"):
        one.load(tmp_path)
    for k, v in model.state_dict().items():  # refused before loading anything
        np.testing.assert_array_equal(v, before[k])


def test_sharded_fit_refuses_batches_smaller_than_the_processes():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((3, 6)), rng.integers(0, 3, 3)
    model = _mlp()
    dp = DataParallelTrainer(model, optim.SGD(model.parameters(), lr=0.1),
                             comm=CountingComm(size=4), progress=False)
    with pytest.raises(ValueError, match="ShardedLoader: expected global batches of at least "
                                         "4 samples \\(1 per process on 4\\), got a batch of 3"):
        dp.fit(DataLoader(X, y, batch_size=3, rng=0), steps=1)
