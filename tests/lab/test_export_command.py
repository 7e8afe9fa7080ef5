"""normlab export RUN_FOLDER --onnx OUT: the run's best model, runnable by onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from normlab.cli import main
from normlab.data import load_dataset

ort = pytest.importorskip("onnxruntime")


def test_export_a_trained_run_reproduces_its_validation_accuracy(tmp_path, capsys):
    assert main(["train", "--model", "mlp", "--data", "digits", "--hidden", "32",
                 "--epochs", "3", "--n-train", "300", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    (run_dir,) = list((tmp_path / "train").iterdir())
    out = tmp_path / "mlp.onnx"
    capsys.readouterr()
    assert main(["export", str(run_dir), "--onnx", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "Gemm" in printed and "BatchNormalization" not in printed
    diff = float(printed.split("max |diff| = ")[1])
    assert diff < 1e-5
    # The exported weights are the best-validation ones that summary.json reports.
    ds = load_dataset("digits", seed=0)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"input": ds.X_val})[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert np.mean(logits.argmax(1) == ds.y_val) == pytest.approx(summary["val_acc"], abs=1e-12)
    assert main(["export", str(run_dir), "--onnx", str(out), "--no-fold-bn"]) == 0
    assert "BatchNormalization" in capsys.readouterr().out


def test_export_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--onnx", str(tmp_path / "x.onnx")]) == 1
    assert "normlab export: export: expected a run folder of `normlab train` with a " \
        "config.json" in capsys.readouterr().err
    assert main(["export", str(tmp_path)]) == 2
    assert "expected --onnx OUT" in capsys.readouterr().err
