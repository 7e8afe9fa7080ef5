"""normlab train with augmentation: loaders, defaults, and a mid-epoch resume through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from normlab.cli import main
from normlab.lab import train_command
from normlab.lab.train_command import make_loaders, resolve_augment
from normlab.train import Trainer


@pytest.fixture
def small_cifar(monkeypatch):
    """cifar-synthetic at 100 samples (train 70, val 10, test 20): the CLI path, in seconds."""
    real = train_command.load_dataset

    def small(name, **kw):
        if name == "cifar-synthetic":
            kw.setdefault("n_samples", 100)
        return real(name, **kw)

    monkeypatch.setattr(train_command, "load_dataset", small)


ARGS = ["train", "--model", "resnet20", "--data", "cifar-synthetic", "--n-train", "48",
        "--batch-size", "16", "--epochs", "2", "--checkpoint-every", "2", "--no-progress",
        "--augment", "crop,flip"]


class _Crash(Exception):
    pass


def _final_arrays(run_dir):
    ckpt = run_dir / "checkpoint"
    meta = json.loads((ckpt / (ckpt / "latest").read_text().strip()).read_text())
    with np.load(ckpt / meta["npz"], allow_pickle=False) as f:
        return {k: f[k] for k in f.files if k.startswith(("model/", "optimizer"))}


def _run_dir(out):
    (run_dir,) = list((out / "train").iterdir())
    return run_dir


def test_augmented_cli_run_resumed_mid_epoch_equals_the_uninterrupted_run(
        tmp_path, small_cifar, monkeypatch, capsys):
    args = ARGS
    loaders = []
    real_make = train_command.make_loaders

    def spy(*a, **kw):
        loaders.append(real_make(*a, **kw))
        return loaders[-1]

    monkeypatch.setattr(train_command, "make_loaders", spy)
    assert main(args + ["--out", str(tmp_path / "full")]) == 0
    full_dir = _run_dir(tmp_path / "full")

    real_save = Trainer.save

    def crash_after_step_4(self, path=None):
        out = real_save(self, path)
        if self.step == 4:  # 3 steps per epoch: step 4 is the first of epoch 2
            raise _Crash
        return out

    monkeypatch.setattr(Trainer, "save", crash_after_step_4)
    with pytest.raises(_Crash):
        main(args + ["--out", str(tmp_path / "cut")])
    monkeypatch.setattr(Trainer, "save", real_save)
    cut_dir = _run_dir(tmp_path / "cut")
    assert len((cut_dir / "checkpoint" / "history.jsonl").read_text().splitlines()) == 4
    assert main(args + ["--out", str(tmp_path / "cut"), "--resume",
                        str(cut_dir / "checkpoint")]) == 0

    full, resumed = _final_arrays(full_dir), _final_arrays(cut_dir)
    assert sorted(full) == sorted(resumed) and any(k.startswith("model/") for k in full)
    for k in full:
        np.testing.assert_array_equal(resumed[k], full[k], err_msg=k)
    s_full = json.loads((full_dir / "summary.json").read_text())
    s_cut = json.loads((cut_dir / "summary.json").read_text())
    assert s_full["steps"] == s_cut["steps"] == 6
    for key in ("train_loss", "val_loss", "test_loss", "test_acc"):
        assert s_full[key] == s_cut[key], key
    config = json.loads((cut_dir / "config.json").read_text())
    assert config["augment"] == "crop,flip" and config["checkpoint_every"] == 2

    # The runs trained on augmented batches, and validated on plain ones.
    for train, val in loaders:
        assert [type(t).__name__ for t in train.transform.transforms] == \
            ["RandomCrop", "RandomHorizontalFlip"]
        assert train.transform.transforms[0].padding == 4 and val.transform is None


def test_augment_default_is_on_for_resnets_on_cifar_sets_only():
    assert resolve_augment("auto", "resnet20", "cifar-synthetic") == "crop,flip"
    assert resolve_augment("auto", "resnet18", "cifar10") == "crop,flip"
    assert resolve_augment("auto", "mlp", "cifar10") == "none"
    assert resolve_augment("auto", "resnet20", "mnist") == "none"
    assert resolve_augment("none", "resnet20", "cifar10") == "none"
    assert resolve_augment("flip", "mlp", "digits") == "flip"


def test_validation_loader_is_never_augmented():
    rng = np.random.default_rng(0)
    X = rng.random((40, 3, 8, 8)).astype(np.float32)
    y = np.arange(40) % 10
    train, val = make_loaders(X, y, X[:12], y[:12], batch_size=8, augment="crop,flip",
                              input_shape=(3, 8, 8), rng=np.random.default_rng(1))
    assert val.transform is None and train.transform is not None
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in val]), X[:12])
    order = np.random.default_rng(1).permutation(40)
    xb, yb = next(iter(train))
    np.testing.assert_array_equal(yb, y[order[:8]])
    assert xb.shape == (8, 3, 8, 8) and not np.array_equal(xb, X[order[:8]])


def test_bad_augment_is_a_usage_error_before_any_folder(tmp_path, capsys):
    assert main(["train", "--model", "mlp", "--augment", "rotate", "--out", str(tmp_path)]) == 2
    assert "augment: expected 'none' or names from crop, flip, got 'rotate'" in \
        capsys.readouterr().err
    assert not (tmp_path / "train").exists()
    assert main(["train", "--model", "mlp", "--download", "--out", str(tmp_path)]) == 2
    assert "expected download=True only for cifar10" in capsys.readouterr().err
