"""load_data_fashion_mnist over small IDX files written to tmp, and the bilinear resize."""

import gzip
import struct

import numpy as np
import pytest
import torch

from normlab.d2l import load_data_fashion_mnist, resize_bilinear


def _write_idx(path, arr):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I",
                                                                        *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


def _fake_fashion(root, n_train=10, n_test=6, gz=False):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test)}
    for name, a in arrays.items():
        _write_idx(root / (name + ext), a)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_loaders_yield_the_books_batches(tmp_path, gz):
    arrays = _fake_fashion(tmp_path / "fm", gz=gz)
    train_iter, test_iter = load_data_fashion_mnist(4, root=tmp_path / "fm", rng=0)
    assert len(train_iter) == 3 and len(test_iter) == 2
    batches = list(test_iter)
    X, y = batches[0]
    assert X.shape == (4, 1, 28, 28) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(
        X[:, 0], arrays["t10k-images-idx3-ubyte"][:4].astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]),
                                  arrays["t10k-labels-idx1-ubyte"])
    seen = np.concatenate([yb for _, yb in train_iter])  # every training image, shuffled
    assert sorted(seen.tolist()) == sorted(arrays["train-labels-idx1-ubyte"].tolist())
    assert 0.0 <= min(float(xb.min()) for xb, _ in train_iter) <= max(
        float(xb.max()) for xb, _ in train_iter) <= 1.0


def test_resize_shapes_each_batch(tmp_path):
    _fake_fashion(tmp_path)
    train_iter, test_iter = load_data_fashion_mnist(5, resize=32, root=tmp_path)
    X, _ = next(iter(train_iter))
    assert X.shape == (5, 1, 32, 32) and X.dtype == np.float32
    _, test_iter = load_data_fashion_mnist(5, resize=(40, 30), root=tmp_path)
    assert next(iter(test_iter))[0].shape == (5, 1, 40, 30)


@pytest.mark.parametrize("size", [(96, 96), (40, 31), (28, 28), (14, 9)])
def test_resize_bilinear_is_torch_interpolate(rng, size):
    X = rng.random((2, 3, 28, 28))
    ref = torch.nn.functional.interpolate(torch.tensor(X), size=size, mode="bilinear",
                                          align_corners=False).numpy()
    np.testing.assert_allclose(resize_bilinear(X, size), ref, rtol=1e-7, atol=1e-12)


def test_missing_folder_or_file_names_the_folder_and_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"fashion-mnist: expected .*nowhere.*"
                                                r"train-images-idx3-ubyte, train-labels-idx1"):
        load_data_fashion_mnist(4, root=tmp_path / "nowhere")
    _fake_fashion(tmp_path / "fm")
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\[\.gz\]"):
        load_data_fashion_mnist(4, root=tmp_path / "fm")


def test_default_root_is_normlab_data(tmp_path, monkeypatch):
    _fake_fashion(tmp_path / "fashion-mnist")
    monkeypatch.setenv("NORMLAB_DATA", str(tmp_path))
    train_iter, _ = load_data_fashion_mnist(10)
    assert next(iter(train_iter))[0].shape == (10, 1, 28, 28)


def test_bad_resize(tmp_path):
    _fake_fashion(tmp_path)
    with pytest.raises(ValueError, match=r"expected resize None, a positive int or \(height"):
        load_data_fashion_mnist(4, resize=0, root=tmp_path)
