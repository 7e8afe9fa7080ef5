"""CIFAR-10 for the course notebooks, read from a LOCAL ``cifar-10-batches-py`` folder.

Nothing is downloaded. Get the python version of CIFAR-10 from
https://www.cs.toronto.edu/~kriz/cifar.html, unpack it, and point ``cifar10_dir`` (or the
``NORMLAB_CIFAR10`` environment variable) at the ``cifar-10-batches-py`` folder.
The batch files are Python pickles by the data set's own format; they are read with
normlab's restricted unpickler (``normlab._safe_pickle``), which refuses anything but plain
containers and NumPy arrays, so a crafted file cannot run code.
"""

from __future__ import annotations

import os

import numpy as np

from normlab._safe_pickle import restricted_load
from normlab.errors import DataError, MissingPathError, NormlabValueError

__all__ = ["load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data", "default_cifar10_dir"]

_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def default_cifar10_dir():
    """``$NORMLAB_CIFAR10``, else the course's relative ``cs231n/datasets/cifar-10-batches-py``."""
    return os.environ.get("NORMLAB_CIFAR10", os.path.join("cs231n", "datasets",
                                                           "cifar-10-batches-py"))


def load_CIFAR_batch(filename):
    """One CIFAR-10 batch file as ``(X, Y)``: X float64 (n, 32, 32, 3) channels-last, Y (n,).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it does not hold ``data`` of n rows of 3072 values and n ``labels``.
    """
    if not os.path.isfile(filename):
        raise MissingPathError(
            f"load_CIFAR_batch: expected a CIFAR-10 batch file, got missing path {filename!r}."
        )
    with open(filename, "rb") as fh:
        d = restricted_load(fh, "load_CIFAR_batch", filename, encoding="latin1")
    X = np.asarray(d.get("data")) if isinstance(d, dict) else None
    Y = np.asarray(d.get("labels")) if isinstance(d, dict) else None
    if X is None or X.ndim != 2 or X.shape[1] != 3072 or Y is None or Y.shape != X.shape[:1]:
        raise DataError(
            f"load_CIFAR_batch: expected a dict with 'data' (n, 3072) and 'labels' (n,), got "
            f"an unreadable batch in {filename!r}. Use the python version of CIFAR-10."
        )
    X = X.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float64)
    return X, Y


def load_CIFAR10(root):
    """All of CIFAR-10 under ``root``: ``(Xtr, Ytr, Xte, Yte)``, X (n, 32, 32, 3) float64.

    Raises
    ------
    FileNotFoundError
        If ``root`` or one of its six batch files is missing (the message says where to get it).
    """
    names = _BATCHES + ["test_batch"]
    missing = [n for n in names if not os.path.isfile(os.path.join(root, n))]
    if missing:
        raise MissingPathError(
            f"load_CIFAR10: expected the CIFAR-10 python batches in {root!r}, got missing "
            f"{missing}. Download cifar-10-python.tar.gz from "
            "https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and pass the "
            "cifar-10-batches-py folder (or set NORMLAB_CIFAR10)."
        )
    parts = [load_CIFAR_batch(os.path.join(root, n)) for n in _BATCHES]
    Xtr = np.concatenate([p[0] for p in parts])
    Ytr = np.concatenate([p[1] for p in parts])
    Xte, Yte = load_CIFAR_batch(os.path.join(root, "test_batch"))
    return Xtr, Ytr, Xte, Yte


def get_CIFAR10_data(num_training=49000, num_validation=1000, num_test=1000,
                     subtract_mean=True, cifar10_dir=None):
    """The course's split: train = first ``num_training`` images, val = the next
    ``num_validation``, test = first ``num_test`` of the test batch; mean image of the
    training split subtracted; channels first.

    Returns
    -------
    dict with ``X_train`` (num_training, 3, 32, 32) float64, ``y_train``, ``X_val``,
    ``y_val``, ``X_test``, ``y_test``.

    Raises
    ------
    FileNotFoundError
        If the folder is absent.
    ValueError
        If more images are asked for than the folder holds.
    """
    root = default_cifar10_dir() if cifar10_dir is None else cifar10_dir
    X_train, y_train, X_test, y_test = load_CIFAR10(root)
    if num_training + num_validation > X_train.shape[0] or num_test > X_test.shape[0]:
        raise NormlabValueError(
            f"get_CIFAR10_data: expected num_training + num_validation <= {X_train.shape[0]} "
            f"and num_test <= {X_test.shape[0]}, got {num_training} + {num_validation} and "
            f"{num_test}."
        )
    X_val = X_train[num_training:num_training + num_validation]
    y_val = y_train[num_training:num_training + num_validation]
    X_train, y_train = X_train[:num_training], y_train[:num_training]
    X_test, y_test = X_test[:num_test], y_test[:num_test]
    if subtract_mean:
        mean_image = X_train.mean(axis=0)
        X_train, X_val, X_test = X_train - mean_image, X_val - mean_image, X_test - mean_image
    return {
        "X_train": X_train.transpose(0, 3, 1, 2).copy(), "y_train": y_train,
        "X_val": X_val.transpose(0, 3, 1, 2).copy(), "y_val": y_val,
        "X_test": X_test.transpose(0, 3, 1, 2).copy(), "y_test": y_test,
    }
