"""load_dataset: shapes, dtypes, splits, determinism, offline generation and the npz cache."""

from __future__ import annotations

import gzip
import pickle
import socket
import struct

import numpy as np
import pytest

from normlab.data import DATASETS, Dataset, load_dataset
from normlab.data import _cache
from normlab.data.files import read_cifar10_batch, read_idx
from normlab.errors import DataError

OFFLINE = {
    "digits": ((1, 8, 8), 10, 1797),
    "mnist5k": ((1, 28, 28), 10, 5000),
    "blobs": ((2,), 3, 1500),
    "spirals": ((2,), 3, 900),
    "cifar-synthetic": ((3, 32, 32), 10, 3000),
}


def _check(ds: Dataset, input_shape, num_classes, total):
    assert ds.input_shape == input_shape and ds.num_classes == num_classes
    for X, y in ds.splits().values():
        assert X.dtype == np.float32 and y.dtype == np.int64
        assert X.shape == (len(y),) + input_shape
        assert y.min() >= 0 and y.max() < num_classes
        assert np.all(np.isfinite(X))
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == total
    assert len(ds.y_val) > 0 and len(ds.y_test) > 0


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_sets_shapes_dtypes_labels(name):
    shape, k, total = OFFLINE[name]
    _check(load_dataset(name), shape, k, total)


@pytest.mark.parametrize("name", ["digits", "mnist5k", "cifar-synthetic"])
def test_image_sets_are_scaled_to_unit_interval(name):
    X = load_dataset(name).X_train
    assert X.min() == 0.0 and X.max() == 1.0


def test_split_is_disjoint_and_stratified():
    ds = load_dataset("digits", seed=3)
    rows = {x.tobytes() for x in np.concatenate([ds.X_train, ds.X_val, ds.X_test])}
    assert len(rows) >= 1790  # load_digits has a few duplicate images, no split repeats more
    counts = np.bincount(ds.y_test, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # ~20% of every class (~180 each)


@pytest.mark.parametrize("name", ["digits", "blobs", "spirals", "cifar-synthetic"])
def test_same_seed_same_data_other_seed_other_split(name):
    a, b, c = load_dataset(name, seed=1), load_dataset(name, seed=1), load_dataset(name, seed=2)
    for (Xa, ya), (Xb, yb) in zip(a.splits().values(), b.splits().values()):
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a.X_train, c.X_train)


def test_flatten_and_options():
    ds = load_dataset("digits", flatten=True)
    assert ds.input_shape == (64,) and ds.X_train.shape[1:] == (64,)
    b = load_dataset("blobs", n_samples=100, num_classes=4, dim=5, val_fraction=0.2,
                     test_fraction=0.2)
    _check(b, (5,), 4, 100)
    assert len(b.y_test) == 20


def test_synthetic_sets_do_not_touch_global_rng():
    state = np.random.get_state()
    load_dataset("blobs")
    load_dataset("cifar-synthetic", n_samples=50)
    after = np.random.get_state()
    np.testing.assert_array_equal(state[1], after[1])


def test_cifar_synthetic_classes_differ():
    ds = load_dataset("cifar-synthetic", n_samples=200)
    means = np.stack([ds.X_train[ds.y_train == c].mean(axis=0) for c in range(10)])
    assert np.abs(means[:, None] - means[None]).max() > 0.3


# ------------------------------------------------------------------ mnist1d


@pytest.fixture(scope="session")
def mnist1d_once(session_cache):
    """Generate the default MNIST-1D once per session (into the session's tmp cache)."""
    import os

    old = os.environ.get("NORMLAB_CACHE")
    os.environ["NORMLAB_CACHE"] = str(session_cache)
    assert not list(session_cache.glob("mnist1d-5000-*"))  # a real generation, not a hit
    state = np.random.get_state()
    try:
        ds = load_dataset("mnist1d")
    finally:
        if old is None:
            os.environ.pop("NORMLAB_CACHE")
        else:
            os.environ["NORMLAB_CACHE"] = old
    return ds, state, np.random.get_state()


def test_mnist1d_default_shapes(mnist1d_once):
    ds, _, _ = mnist1d_once
    _check(ds, (1, 40), 10, 5000)
    assert len(ds.y_test) == 1000  # the package's own 80/20 train/test split


def test_mnist1d_restores_global_rng_state(mnist1d_once):
    _, before, after = mnist1d_once
    assert before[0] == after[0] and before[2:] == after[2:]
    np.testing.assert_array_equal(before[1], after[1])


def test_mnist1d_generated_without_network(monkeypatch, session_cache):
    # The autouse guard in tests/conftest.py makes any non-local connect raise; also make
    # sure nothing even creates an internet socket, on a cache miss (small, uncached size).
    def refuse(*args, **kwargs):
        raise AssertionError("mnist1d generation touched the network")

    import requests

    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    ds = load_dataset("mnist1d", num_samples=100)
    _check(ds, (1, 40), 10, 100)


def test_mnist1d_cache_hit_on_second_load(mnist1d_once, monkeypatch):
    import mnist1d.data

    def boom(*args, **kwargs):
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr(mnist1d.data, "make_dataset", boom)
    ds = load_dataset("mnist1d")
    np.testing.assert_array_equal(ds.X_test, mnist1d_once[0].X_test)


def test_mnist1d_num_samples_error():
    with pytest.raises(ValueError, match="mnist1d: expected num_samples to be an int >= 20"):
        load_dataset("mnist1d", num_samples=5)


def test_mnist5k_cached_npz_is_written_and_reused(session_cache, monkeypatch):
    load_dataset("mnist5k")
    cached = list(session_cache.glob("mnist5k-*.npz"))
    assert len(cached) == 1
    monkeypatch.setattr(np, "loadtxt", lambda *a, **k: pytest.fail("csv re-read"))
    load_dataset("mnist5k")


# ------------------------------------------------------------------ cache


def test_cache_is_atomic_and_pickle_free(session_cache):
    path = _cache.save_cached("unit", {"a": np.arange(3)})
    assert path.parent == session_cache and path.name == "unit.npz"
    assert not list(session_cache.glob(".unit.*"))  # no temporary file left behind
    np.testing.assert_array_equal(_cache.load_cached("unit")["a"], np.arange(3))
    np.save(session_cache / "obj.npy", np.array([{"x": 1}], dtype=object))
    (session_cache / "obj.npy").rename(session_cache / "obj.npz")
    assert _cache.load_cached("obj") is None  # object arrays are never unpickled


def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("NORMLAB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _cache.cache_dir() == tmp_path / ".cache" / "normlab"


# ------------------------------------------------------------------ CIFAR-10 folder


def _write_cifar(folder, n_per_batch=4, rng=None):
    """Tiny CIFAR-10 python batches in the official layout (protocol-2 pickles, bytes keys)."""
    rng = np.random.default_rng(0) if rng is None else rng
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"batch_label": name.encode(),
             b"labels": [int(v) for v in rng.integers(0, 10, n_per_batch)],
             b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
             b"filenames": [b"img%d.png" % i for i in range(n_per_batch)]}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)


def test_cifar10_reads_official_format(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    _write_cifar(root)
    X, y = read_cifar10_batch(root / "data_batch_1")
    with open(root / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert X.shape == (4, 3, 32, 32) and X.dtype == np.uint8
    # Channel-major rows: the first 1024 values are the red plane, row by row.
    np.testing.assert_array_equal(X[2, 0].ravel(), raw[b"data"][2, :1024])
    np.testing.assert_array_equal(X[2, 2, 31], raw[b"data"][2, -32:])
    np.testing.assert_array_equal(y, raw[b"labels"])

    ds = load_dataset("cifar10", root=tmp_path, val_fraction=0.0)  # the parent folder works too
    assert ds.input_shape == (3, 32, 32)
    assert len(ds.y_train) == 20 and len(ds.y_test) == 4
    np.testing.assert_allclose(ds.X_test * 255.0, read_cifar10_batch(root / "test_batch")[0],
                               rtol=0, atol=1e-4)
    assert load_dataset("cifar10", root=root, val_fraction=0.0).num_classes == 10


def test_cifar10_refuses_foreign_objects(tmp_path):
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0],
                     b"evil": socket.socket}, f, protocol=2)
    with pytest.raises(DataError, match="got a reference to (_socket|socket)"):
        read_cifar10_batch(path)


def test_cifar10_bad_batch_errors(tmp_path):
    path = tmp_path / "b"
    with open(path, "wb") as f:
        pickle.dump({b"fine_labels": [0], b"data": np.zeros((1, 3072), np.uint8)}, f, protocol=2)
    with pytest.raises(ValueError, match="expected keys 'data' and 'labels'"):
        read_cifar10_batch(path)
    assert read_cifar10_batch(path, "fine_labels")[1].tolist() == [0]
    with open(path, "wb") as f:
        pickle.dump({b"labels": [0, 1], b"data": np.zeros((2, 100), np.uint8)}, f, protocol=2)
    with pytest.raises(ValueError, match=r"expected data of shape \(N, 3072\)"):
        read_cifar10_batch(path)


def test_cifar10_missing_folder_message(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"cifar10: expected .*nowhere, got no such file or folder\. "
                             r"Run `normlab data fetch cifar10` \(or pass download=True\), or "
                             r"download https://www\.cs\.toronto\.edu"):
        load_dataset("cifar10", root=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no-data-here"):  # default root from env
        load_dataset("cifar10")
    root = tmp_path / "partial"
    _write_cifar(root)
    (root / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3, got no such file"):
        load_dataset("cifar10", root=root)


def _write_cifar100(folder, n=5):
    rng = np.random.default_rng(2)
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        d = {b"fine_labels": [int(v) for v in rng.integers(0, 100, n)],
             b"coarse_labels": [int(v) for v in rng.integers(0, 20, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)


def test_cifar100_fine_and_coarse_labels(tmp_path):
    root = tmp_path / "cifar-100-python"
    _write_cifar100(root)
    with open(root / "test", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    fine = load_dataset("cifar100", root=tmp_path, val_fraction=0.0)
    assert fine.num_classes == 100 and fine.input_shape == (3, 32, 32)
    np.testing.assert_array_equal(fine.y_test, raw[b"fine_labels"])
    coarse = load_dataset("cifar100", root=root, val_fraction=0.0, label_mode="coarse")
    assert coarse.num_classes == 20
    np.testing.assert_array_equal(coarse.y_test, raw[b"coarse_labels"])
    with pytest.raises(ValueError, match="cifar100: expected label_mode 'fine' or 'coarse', "
                                         "got 'x'"):
        load_dataset("cifar100", root=root, label_mode="x")
    with pytest.raises(FileNotFoundError, match=r"cifar100: expected .*nope, got no such file "
                                                r"or folder\. Run `normlab data fetch cifar100`"):
        load_dataset("cifar100", root=tmp_path / "nope")


# ------------------------------------------------------------------ IDX (MNIST, Fashion)


def _idx_bytes(arr: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + \
        struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.astype(np.uint8).tobytes()


def _write_idx_folder(folder, gz, n_train=100, n_test=10):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.repeat(np.arange(10, dtype=np.uint8), n_train // 10),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }
    for name, arr in arrays.items():
        data = _idx_bytes(arr)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_folder_round_trip(tmp_path, name, gz):
    arrays = _write_idx_folder(tmp_path / name, gz)
    ds = load_dataset(name, root=tmp_path / name, val_fraction=0.0)
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    np.testing.assert_array_equal(np.rint(ds.X_test[:, 0] * 255).astype(np.uint8),
                                  arrays["t10k-images-idx3-ubyte"])
    ds2 = load_dataset(name, root=tmp_path / name, seed=5)
    _check(ds2, (1, 28, 28), 10, 110)
    assert len(ds2.y_val) == 10  # 10% of each class of the 100 training images


def test_read_idx_errors(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x00\x01\x08\x01")
    with pytest.raises(ValueError, match="read_idx: expected an IDX file"):
        read_idx(p)
    p.write_bytes(_idx_bytes(np.zeros((3, 2), np.uint8))[:-1])
    with pytest.raises(ValueError, match=r"expected 6 data bytes for shape \(3, 2\)"):
        read_idx(p)


def test_idx_missing_messages(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"fashion-mnist: expected .*nope, got no such file or folder\. "
                             r"Put the four IDX files"):
        load_dataset("fashion-mnist", root=tmp_path / "nope")
    _write_idx_folder(tmp_path / "m", gz=True)
    (tmp_path / "m" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\[\.gz\], got no such"):
        load_dataset("mnist", root=tmp_path / "m")


# ------------------------------------------------------------------ argument errors


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="load_dataset: expected one of digits, mnist1d, .*"
                                         "fashion-mnist, got 'imagenet'"):
        load_dataset("imagenet")
    assert set(DATASETS) == {"digits", "mnist1d", "mnist5k", "blobs", "spirals",
                             "cifar-synthetic", "cifar10", "cifar100", "mnist", "fashion-mnist"}


def test_option_errors():
    with pytest.raises(TypeError, match=r"load_dataset: expected options of 'digits' among"):
        load_dataset("digits", root="x")
    with pytest.raises(TypeError, match="load_dataset: expected seed to be an int, got float"):
        load_dataset("digits", seed=1.5)
    with pytest.raises(ValueError, match=r"digits: expected val_fraction in \[0, 1\), got 1.5"):
        load_dataset("digits", val_fraction=1.5)
    with pytest.raises(ValueError, match="expected val_fraction \\+ test_fraction < 1"):
        load_dataset("spirals", val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(TypeError, match="digits: expected test_fraction to be a float, got str"):
        load_dataset("digits", test_fraction="0.1")
    with pytest.raises(ValueError, match="make_blobs: expected num_classes >= 1, got 0"):
        load_dataset("blobs", num_classes=0)
    with pytest.raises(TypeError, match="make_spirals: expected n_samples to be an int"):
        load_dataset("spirals", n_samples=10.0)
    with pytest.raises(ValueError, match="make_cifar_synthetic: expected noise >= 0"):
        load_dataset("cifar-synthetic", noise=-1.0)
