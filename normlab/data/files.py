"""Readers for the official on-disk formats: CIFAR-10/100 python batches and IDX (MNIST).

Nothing here downloads (``normlab.data.download`` does, when asked). The files' folders:

- CIFAR-10: https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extracted to a folder
  ``cifar-10-batches-py/`` holding ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``.
  CIFAR-100: https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz, extracted to
  ``cifar-100-python/`` holding ``train`` and ``test`` (labels under ``fine_labels`` and
  ``coarse_labels``).
  Those batches are Python pickles: that *is* the official format. They are read with a
  restricted unpickler that only accepts the plain containers and NumPy array reconstruction
  the official files use, and refuses any other object, so a tampered file cannot run code.
- MNIST (http://yann.lecun.com/exdb/mnist/, mirrored by many) and Fashion-MNIST
  (https://github.com/zalandoresearch/fashion-mnist): the four IDX files
  ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte``, gzipped (``.gz``) or not.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from normlab._safe_pickle import restricted_load
from normlab.errors import DataError, MissingPathError, NormlabValueError

__all__ = [
    "CIFAR10_TRAIN_FILES",
    "CIFAR10_TEST_FILE",
    "IDX_FILES",
    "read_cifar10_batch",
    "read_cifar10",
    "read_cifar100",
    "find_cifar100_folder",
    "read_idx",
    "read_idx_folder",
    "check_idx_folder",
    "find_cifar10_folder",
    "find_idx_file",
]

CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

def _missing(what: str, where: Path, how: str) -> FileNotFoundError:
    return MissingPathError(f"{what}: expected {where}, got no such file or folder. {how}")


_CIFAR_HOW = (
    "Run `normlab data fetch cifar10` (or pass download=True), or download "
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extract it and pass "
    "root='<folder>/cifar-10-batches-py'."
)
_CIFAR100_HOW = (
    "Run `normlab data fetch cifar100` (or pass download=True), or download "
    "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz, extract it and pass "
    "root='<folder>/cifar-100-python'."
)
CIFAR100_FILES = ("train", "test")


def find_cifar10_folder(root) -> Path:
    """The folder holding the CIFAR-10 batches: ``root`` or ``root/cifar-10-batches-py``."""
    root = Path(root).expanduser()
    for cand in (root, root / "cifar-10-batches-py"):
        if (cand / CIFAR10_TEST_FILE).is_file():
            return cand
    if not root.is_dir():
        raise _missing("cifar10", root, _CIFAR_HOW)
    raise _missing(
        "cifar10", root / CIFAR10_TEST_FILE,
        "The folder must hold data_batch_1 ... data_batch_5 and test_batch. " + _CIFAR_HOW,
    )


def read_cifar10_batch(path, label_key: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: ``(X uint8 (N, 3, 32, 32), y int64 (N,))``.

    ``label_key="fine_labels"`` or ``"coarse_labels"`` reads a CIFAR-100 file.

    Raises
    ------
    ValueError
        If the file is not a CIFAR-10 batch (missing keys, wrong sizes).
    """
    path = Path(path)
    with open(path, "rb") as f:
        d = restricted_load(f, "read_cifar10_batch", path)
    if not isinstance(d, dict):
        raise DataError(f"read_cifar10_batch: expected a dict in {path}, got {type(d).__name__}.")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    if "data" not in d or label_key not in d:
        raise DataError(
            f"read_cifar10_batch: expected keys 'data' and {label_key!r} in {path}, got "
            f"{sorted(d)}. Is this a CIFAR-100 (label_key='fine_labels') or a foreign file?"
        )
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise DataError(
            f"read_cifar10_batch: expected data of shape (N, 3072) and N labels in {path}, got "
            f"data {data.shape} and {labels.shape[0]} labels."
        )
    # Rows are 1024 red, then 1024 green, then 1024 blue values, each row-major 32x32.
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar10(root) -> dict[str, np.ndarray]:
    """All CIFAR-10 batches under ``root``: uint8 ``x_train, x_test``, int64 ``y_train, y_test``.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the six batch files is missing (says where and how to get it).
    """
    folder = find_cifar10_folder(root)
    xs, ys = [], []
    for name in CIFAR10_TRAIN_FILES:
        p = folder / name
        if not p.is_file():
            raise _missing("cifar10", p, "The folder must hold data_batch_1 ... data_batch_5. "
                           + _CIFAR_HOW)
        X, y = read_cifar10_batch(p)
        xs.append(X)
        ys.append(y)
    x_test, y_test = read_cifar10_batch(folder / CIFAR10_TEST_FILE)
    return {"x_train": np.concatenate(xs), "y_train": np.concatenate(ys),
            "x_test": x_test, "y_test": y_test}


def find_cifar100_folder(root) -> Path:
    """The folder holding the CIFAR-100 files: ``root`` or ``root/cifar-100-python``."""
    root = Path(root).expanduser()
    for cand in (root, root / "cifar-100-python"):
        if (cand / "test").is_file():
            return cand
    if not root.is_dir():
        raise _missing("cifar100", root, _CIFAR100_HOW)
    raise _missing("cifar100", root / "test",
                   "The folder must hold train and test. " + _CIFAR100_HOW)


def read_cifar100(root, label_mode: str = "fine") -> dict[str, np.ndarray]:
    """CIFAR-100 ``train``/``test`` under ``root``: uint8 ``x_*``, int64 ``y_*``.

    ``label_mode`` is ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).

    Raises
    ------
    FileNotFoundError
        If the folder or a file is missing.
    ValueError
        For another ``label_mode`` or a file that is not a CIFAR-100 batch.
    """
    if label_mode not in ("fine", "coarse"):
        raise NormlabValueError(f"cifar100: expected label_mode 'fine' or 'coarse', got {label_mode!r}.")
    folder = find_cifar100_folder(root)
    out = {}
    for split in CIFAR100_FILES:
        p = folder / split
        if not p.is_file():
            raise _missing("cifar100", p, "The folder must hold train and test. " + _CIFAR100_HOW)
        out[f"x_{split}"], out[f"y_{split}"] = read_cifar10_batch(p, f"{label_mode}_labels")
    return out


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (gzipped if its name ends in ``.gz``).

    Format: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then one
    big-endian uint32 per dimension, then the data in C order.

    Raises
    ------
    ValueError
        On a bad magic number, unknown type code or truncated data.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"read_idx: expected a readable gzip file in {path}, got "
                        f"{type(e).__name__}: {e}. The file is truncated or corrupt; download "
                        "it again.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(
            f"read_idx: expected an IDX file (magic 0x0000 then a type code) in {path}, got "
            f"header {raw[:4].hex() or 'empty'}. Is the file truncated or still compressed?"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"read_idx: expected {expected} data bytes for shape {shape} in {path}, got "
            f"{len(raw) - header}. The file is truncated or corrupt; download it again."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """``stem`` or ``stem.gz`` in ``folder`` or ``folder/raw`` (torchvision's layout)."""
    for base in (folder, folder / "raw"):
        for name in (stem, stem + ".gz"):
            if (base / name).is_file():
                return base / name
    return None


def check_idx_folder(root, dataset: str = "mnist") -> dict[str, Path]:
    """Paths of the four IDX files under ``root`` (plain, ``.gz``, or in ``root/raw``).

    Raises
    ------
    FileNotFoundError
        If the folder or a file is missing (lists the expected file names).
    """
    root = Path(root).expanduser()
    how = (
        f"Put the four IDX files ({', '.join(IDX_FILES.values())}, optionally .gz) there "
        "(MNIST: http://yann.lecun.com/exdb/mnist/ or a mirror; Fashion-MNIST: "
        "https://github.com/zalandoresearch/fashion-mnist), or run `normlab data fetch "
        f"{dataset}` (download=True)."
    )
    if not root.is_dir():
        raise _missing(dataset, root, how)
    paths = {}
    for key, stem in IDX_FILES.items():
        path = find_idx_file(root, stem)
        if path is None:
            raise _missing(dataset, root / (stem + "[.gz]"), how)
        paths[key] = path
    return paths


def read_idx_folder(root, dataset: str = "mnist") -> dict[str, np.ndarray]:
    """The four MNIST-style IDX files under ``root``: uint8 images (N, 28, 28), int64 labels.

    Raises
    ------
    FileNotFoundError
        If the folder or a file is missing (lists the expected file names).
    """
    root = Path(root).expanduser()
    paths = check_idx_folder(root, dataset)
    out = {}
    for key, path in paths.items():
        arr = read_idx(path)
        out[key] = arr.astype(np.int64) if key.endswith("labels") else arr
    if out["train_images"].shape[0] != out["train_labels"].shape[0] or \
            out["test_images"].shape[0] != out["test_labels"].shape[0]:
        raise DataError(
            f"{dataset}: expected as many labels as images in {root}, got "
            f"{out['train_images'].shape[0]}/{out['train_labels'].shape[0]} (train) and "
            f"{out['test_images'].shape[0]}/{out['test_labels'].shape[0]} (test)."
        )
    return {"x_train": out["train_images"], "y_train": out["train_labels"],
            "x_test": out["test_images"], "y_test": out["test_labels"]}
