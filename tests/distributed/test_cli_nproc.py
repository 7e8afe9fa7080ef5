"""``normlab train --nproc N``: mpiexec under the hood, the one-process result, clear errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from normlab.cli import main

ARGS = ["train", "--model", "mlp", "--data", "blobs", "--hidden", "32,32", "--epochs", "2",
        "--batch-size", "50", "--n-train", "230", "--seed", "3", "--no-progress"]


def _run_folder(out: Path) -> Path:
    folders = list((out / "train").iterdir())
    assert len(folders) == 1, folders  # one run folder, written by rank 0 only
    return folders[0]


def _model(run: Path) -> dict:
    ckpt = run / "checkpoint"
    name = (ckpt / "latest").read_text().strip()
    with np.load(ckpt / name.replace(".json", ".npz")) as z:
        return {k: z[k] for k in z.files if k.startswith("model/")}


def _history(run: Path) -> list[dict]:
    lines = (run / "checkpoint" / "history.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def _same_history(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], float):
                np.testing.assert_allclose(a[k], b[k], rtol=1e-5, err_msg=k)
            else:
                assert a[k] == b[k], k


def test_nproc_2_equals_nproc_1_and_resumes_with_2(tmp_path, capfd):
    assert main([*ARGS, "--nproc", "2", "--out", str(tmp_path / "two")]) == 0
    assert main([*ARGS, "--nproc", "1", "--out", str(tmp_path / "one")]) == 0
    out = capfd.readouterr().out
    assert out.count("trained mlp on blobs") == 2  # rank 1 prints nothing
    two, one = _run_folder(tmp_path / "two"), _run_folder(tmp_path / "one")
    assert json.loads((two / "config.json").read_text())["nproc"] == 2
    m2, m1 = _model(two), _model(one)
    assert sorted(m2) == sorted(m1) and any("running_var" in k for k in m1)
    for k in m1:
        np.testing.assert_allclose(m2[k], m1[k], rtol=1e-5, atol=1e-6, err_msg=k)
    h1 = _history(one)
    assert [r["step"] for r in h1] == list(range(1, 9))  # 230 // 50 = 4 steps per epoch
    _same_history(_history(two), h1)
    s2 = json.loads((two / "summary.json").read_text())
    s1 = json.loads((one / "summary.json").read_text())
    assert s2["steps"] == s1["steps"] == 8
    np.testing.assert_allclose(s2["test_loss"], s1["test_loss"], rtol=1e-5)

    # a checkpoint of 2 processes resumes on 2, and is refused on 1 before any write
    config = (two / "config.json").read_text()
    assert main([*ARGS, "--nproc", "1", "--resume", str(two / "checkpoint")]) == 2
    err = capfd.readouterr().err
    assert "expected a checkpoint saved by 1 process(es), got one saved by 2. Resume " \
           "with the same number of processes (--nproc 2)" in err
    assert (two / "config.json").read_text() == config
    resumed = [*ARGS, "--nproc", "2", "--resume", str(two / "checkpoint")]
    resumed[resumed.index("--epochs") + 1] = "3"
    assert main(resumed) == 0
    h = _history(two)
    assert [r["step"] for r in h] == list(range(1, 13))
    _same_history(h[:8], h1)


def test_nproc_bad_values_are_usage_errors(capsys):
    assert main([*ARGS, "--nproc", "0"]) == 2
    assert "argument --nproc: expected a positive int, got '0'" in capsys.readouterr().err
    assert main([*ARGS, "--nproc", "51"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("normlab train: error: expected --nproc at most --batch-size (50), got 51 "
                   "processes. Every process needs a part of each batch")


def test_nproc_without_mpi_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    assert main([*ARGS, "--nproc", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["normlab train: --nproc 2: expected mpi4py to be installed, got no mpi4py "
                   "module. Install MPI support with pip install 'normlab[mpi]' (mpi4py and "
                   "the mpich wheel)."]


def test_strip_nproc():
    from normlab.lab.train_cli import _strip_nproc

    assert _strip_nproc(["train", "--nproc", "2", "--x", "1"]) == ["train", "--x", "1"]
    assert _strip_nproc(["train", "--nproc=3"]) == ["train"]


def test_nproc_run_failing_on_the_ranks_ends_with_one_line_each(tmp_path, capfd):
    bad = ["train", "--model", "resnet20", "--data", "blobs", "--nproc", "2", "--out",
           str(tmp_path)]
    assert main(bad) == 1
    err = capfd.readouterr().err.splitlines()
    failed = [line for line in err if "normlab train: rank" in line]
    assert 1 <= len(failed) <= 2 and all(
        line.endswith("failed: build: expected input_shape (C, H, W) for an image "
                      "model, got (2,).") for line in failed)
    assert err[-1] == ("normlab train: expected the 2 processes under mpiexec to succeed, got "
                       "exit status 1. The failing rank's error is printed above.")
    assert not (tmp_path / "train").exists()
