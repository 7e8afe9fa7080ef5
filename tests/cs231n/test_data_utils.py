"""CIFAR-10 loading from a tiny fake local folder (same file format, fewer images)."""

import pickle

import numpy as np
import pytest

from normlab.cs231n.data_utils import get_CIFAR10_data, load_CIFAR10, load_CIFAR_batch


def _write_fake_cifar(root, n=6):
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        d = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             "labels": [int(v) for v in rng.integers(0, 10, n)], "batch_label": name}
        with open(root / name, "wb") as fh:
            pickle.dump(d, fh)
    return root


def test_load_batch_is_channels_last_float(tmp_path):
    _write_fake_cifar(tmp_path)
    X, Y = load_CIFAR_batch(str(tmp_path / "data_batch_1"))
    with open(tmp_path / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh)["data"]
    assert X.shape == (6, 32, 32, 3) and X.dtype == np.float64 and Y.shape == (6,)
    # row layout of the data set: 1024 red, then 1024 green, then 1024 blue values
    assert X[2, 0, 1, 1] == raw[2, 1024 + 1]


def test_get_cifar10_data_split_mean_and_layout(tmp_path):
    _write_fake_cifar(tmp_path)
    Xtr, Ytr, Xte, Yte = load_CIFAR10(str(tmp_path))
    assert Xtr.shape == (30, 32, 32, 3) and Xte.shape == (6, 32, 32, 3)
    data = get_CIFAR10_data(num_training=20, num_validation=5, num_test=4,
                            cifar10_dir=str(tmp_path))
    assert data["X_train"].shape == (20, 3, 32, 32)
    assert data["X_val"].shape == (5, 3, 32, 32) and data["X_test"].shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(data["y_val"], Ytr[20:25])
    mean = Xtr[:20].mean(axis=0).transpose(2, 0, 1)
    np.testing.assert_allclose(data["X_val"][0], Xtr[20].transpose(2, 0, 1) - mean)
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0, atol=1e-10)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected the CIFAR-10 python batches"):
        get_CIFAR10_data(cifar10_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="expected a CIFAR-10 batch file"):
        load_CIFAR_batch(str(tmp_path / "data_batch_1"))


def test_bad_batch_and_oversized_split(tmp_path):
    _write_fake_cifar(tmp_path)
    with pytest.raises(ValueError, match=r"expected num_training \+ num_validation <= 30"):
        get_CIFAR10_data(num_training=30, num_validation=1, cifar10_dir=str(tmp_path))
    with open(tmp_path / "data_batch_1", "wb") as fh:
        pickle.dump({"data": np.zeros((2, 10))}, fh)
    with pytest.raises(ValueError, match="expected a dict with 'data'"):
        load_CIFAR_batch(str(tmp_path / "data_batch_1"))
