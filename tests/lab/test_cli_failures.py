"""Issue 10, item 7: every known failure of the CLI is one line on stderr and exit 1; usage
errors exit 2; ``--debug`` shows the traceback."""

from __future__ import annotations

import errno
import pickle
import threading

import numpy as np
import pytest

from normlab.cli import main
from normlab.lab._runfolder import RunLock, make_run_dir

TRAIN = ["train", "--model", "mlp", "--data", "blobs", "--epochs", "1", "--hidden", "8",
         "--no-progress"]


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMLAB_CACHE", str(tmp_path / "cache"))


def _fail_writes(monkeypatch, code):
    """Every normlab write fails with ``code`` (a full or read-only disk)."""
    import os
    import sys

    import normlab.lab.runs  # noqa: F401 - import every writer before patching
    import normlab.lab.train_command  # noqa: F401

    def boom(path, data, *a, **k):
        raise OSError(code, os.strerror(code), path)

    for name, mod in list(sys.modules.items()):
        if name.startswith("normlab") and hasattr(mod, "atomic_write_bytes"):
            monkeypatch.setattr(mod, "atomic_write_bytes", boom)


@pytest.mark.parametrize("code, text", [(errno.ENOSPC, "No space left on device"),
                                        (errno.EROFS, "Read-only file system")])
def test_full_or_read_only_disk(capsys, tmp_path, monkeypatch, code, text):
    _fail_writes(monkeypatch, code)
    assert main(TRAIN + ["--out", str(tmp_path)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("normlab train: expected a readable/writable disk, got ") and text in line
    assert main(["experiment", "run", "activation-stats", "--smoke", "--out",
                 str(tmp_path)]) == 1
    assert text in _one_line(capsys.readouterr().err)


def test_divergence(capsys, tmp_path):
    assert main(TRAIN + ["--lr", "1e30", "--norm", "none", "--out", str(tmp_path)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("normlab train: Trainer: expected a finite ")


def test_corrupt_data_set(capsys, tmp_path, monkeypatch):
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8),
                                                  "labels": [0, 1]})[:30])
    monkeypatch.setenv("NORMLAB_DATA", str(tmp_path / "data"))
    argv = ["train", "--model", "mlp", "--data", "cifar10", "--epochs", "1", "--out",
            str(tmp_path), "--no-progress"]
    assert main(argv) == 1
    line = _one_line(capsys.readouterr().err)
    assert "expected a CIFAR-10 python batch (a pickle)" in line and "unreadable file" in line


def test_nan_in_the_data_set(capsys, tmp_path, monkeypatch):
    import normlab.lab.train_command as tc
    from normlab.data import load_dataset

    def nan_data(name, **kw):
        ds = load_dataset(name, **kw)
        ds.X_train[:] = np.nan
        return ds

    monkeypatch.setattr(tc, "load_dataset", nan_data)
    assert main(TRAIN + ["--out", str(tmp_path)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "expected finite input data, got NaN or inf" in line
    assert "learning rate" not in line


@pytest.mark.parametrize("sets, message", [
    (["nope=1"], "expected one of the config keys"),
    (["width=abc"], "to be of type int, got 'abc'"),
    (["depth"], "expected --set KEY=VALUE, got 'depth'"),
])
def test_bad_set_is_a_usage_error(capsys, tmp_path, sets, message):
    argv = ["experiment", "run", "activation-stats", "--smoke", "--out", str(tmp_path), "--set"]
    assert main(argv + sets) == 2
    assert message in _one_line(capsys.readouterr().err)
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("argv", [TRAIN + ["--seed", "-1"],
                                  ["experiment", "run", "activation-stats", "--seed", "-1"],
                                  ["gradcheck", "--seed", "-1"]])
def test_negative_seed_is_a_usage_error(capsys, argv):
    assert main(argv) == 2
    assert "expected a seed in [0, 2**63), got '-1'" in _one_line(capsys.readouterr().err)


def test_unwritable_cache_only_warns(capsys, tmp_path, monkeypatch):
    from normlab.data import _cache

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("NORMLAB_CACHE", str(blocker / "cache"))
    with pytest.warns(_cache.CacheWarning, match=r"data cache: expected a writable cache folder"):
        assert _cache.save_cached("k", {"a": np.zeros(2)}) is None
    with pytest.warns(_cache.CacheWarning):
        assert main(["train", "--model", "mlp", "--data", "mnist1d", "--epochs", "1",
                     "--hidden", "8", "--n-train", "64", "--no-progress", "--out",
                     str(tmp_path / "runs")]) == 0


def test_second_run_in_a_locked_folder_gets_a_clear_error(capsys, tmp_path):
    assert main(TRAIN + ["--out", str(tmp_path)]) == 0
    run_dir = next((tmp_path / "train").iterdir())
    capsys.readouterr()
    with RunLock(run_dir):
        assert main(TRAIN + ["--epochs", "2", "--resume", str(run_dir / "checkpoint")]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "to be free, got it in use by another normlab run (pid" in line
    # the lock is released with the run: resuming now works
    assert main(TRAIN + ["--epochs", "2", "--resume", str(run_dir / "checkpoint")]) == 0


def test_run_folders_started_in_the_same_second_never_collide(tmp_path):
    made = []

    def mk():
        made.append(make_run_dir(tmp_path, "mlp-blobs-20260101-000000"))

    threads = [threading.Thread(target=mk) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8 and all(p.is_dir() for p in made)


def test_resume_refuses_lr(capsys, tmp_path):
    assert main(TRAIN + ["--out", str(tmp_path)]) == 0
    run_dir = next((tmp_path / "train").iterdir())
    capsys.readouterr()
    assert main(TRAIN + ["--resume", str(run_dir / "checkpoint"), "--lr", "0.5"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "expected no --lr with --resume" in line and "got --lr 0.5" in line


def test_debug_shows_the_traceback(capsys, tmp_path):
    argv = TRAIN + ["--lr", "1e30", "--norm", "none", "--out", str(tmp_path)]
    assert main(["--debug"] + argv) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "DivergenceError" in err
