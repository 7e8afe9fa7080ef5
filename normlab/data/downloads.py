"""Verified, crash-safe downloads of CIFAR-10, CIFAR-100, MNIST and Fashion-MNIST.

``download(name, root=None, mirror=None)`` fetches the official files once into ``root``
(default ``$NORMLAB_DATA``, else ``~/data``) and returns the data set's folder:

=============  ==================================  =====================================
name           files                               folder
=============  ==================================  =====================================
cifar10        ``cifar-10-python.tar.gz``          ``root/cifar-10-batches-py``
cifar100       ``cifar-100-python.tar.gz``         ``root/cifar-100-python``
mnist          the four ``*-idx?-ubyte.gz``        ``root/mnist``
fashion-mnist  the four ``*-idx?-ubyte.gz``        ``root/fashion-mnist``
=============  ==================================  =====================================

Each file goes to ``<file>.part`` (resumed with an HTTP Range request where the server
allows it), its published digest is checked before anything reads or unpacks it, and only
then is it renamed into place (atomic, folder fsynced). A mismatch deletes the partial file
and raises :class:`ChecksumError` naming the file, the expected and the actual digest.
Archives are unpacked by ``normlab.data._archive.safe_unpack`` (no path traversal, no links
out, all-or-nothing). Nothing here runs unless called: ``load_dataset`` downloads only with
``download=True``, the CLI only with ``normlab data fetch`` or ``normlab train --download``.

Mirrors: ``mirror=`` or ``$NORMLAB_MIRROR`` replaces the official base URL by
``<mirror>/<name>/<file>`` (an ``http(s)://`` or ``file://`` URL, or a local folder path).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from normlab.errors import DataError, NormlabValueError
from normlab._io import _fsync_dir
from normlab.data._archive import UnsafeArchiveError, safe_unpack
from normlab.data._http import DownloadError, fetch

__all__ = ["download", "SOURCES", "Source", "Resource", "ChecksumError", "DownloadError",
           "UnsafeArchiveError", "file_digest", "verify_file"]


class ChecksumError(DataError):
    """A downloaded file's digest differs from the published one."""


@dataclass(frozen=True)
class Resource:
    """One file to fetch and its published digest(s) (lowercase hex; at least one)."""

    filename: str
    sha256: str | None = None
    md5: str | None = None


@dataclass(frozen=True)
class Source:
    """Where a data set's files come from and what ``download`` leaves behind.

    ``archive=True``: one ``.tar.gz`` holding the top folder ``folder``, unpacked into
    ``root/folder``. ``archive=False``: the files themselves go into ``root/folder``.
    """

    base_url: str
    folder: str
    files: tuple[Resource, ...]
    archive: bool = False


# Digests. CIFAR: SHA-256 as published by Keras (keras/datasets/cifar10.py and
# cifar100.py, ``file_hash`` of ``get_file``), MD5 as published by torchvision
# (torchvision/datasets/cifar.py, ``tgz_md5``) and on the CIFAR page's archive listing.
# MNIST and Fashion-MNIST: MD5s as published by torchvision (torchvision/datasets/mnist.py,
# ``MNIST.resources`` and ``FashionMNIST.resources``; the Fashion-MNIST README lists the
# same values). No SHA-256 is published for the IDX files, so MD5 is what can be checked.
SOURCES: dict[str, Source] = {
    "cifar10": Source(
        "https://www.cs.toronto.edu/~kriz/", "cifar-10-batches-py",
        (Resource("cifar-10-python.tar.gz",
                  sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                  md5="c58f30108f718f92721af3b95e74349a"),),
        archive=True),
    "cifar100": Source(
        "https://www.cs.toronto.edu/~kriz/", "cifar-100-python",
        (Resource("cifar-100-python.tar.gz",
                  sha256="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
                  md5="eb9058c3a382ffc7106e4002c42a8d85"),),
        archive=True),
    # yann.lecun.com refuses most automated requests nowadays; torchvision's own mirror
    # (the second entry of its MNIST.mirrors) serves the identical files.
    "mnist": Source(
        "https://ossci-datasets.s3.amazonaws.com/mnist/", "mnist",
        (Resource("train-images-idx3-ubyte.gz", md5="f68b3c2dcbeaaa9fbdd348bbdeb94873"),
         Resource("train-labels-idx1-ubyte.gz", md5="d53e105ee54ea40749a09fcbcd1e9432"),
         Resource("t10k-images-idx3-ubyte.gz", md5="9fb629c4189551a2d022fa330f9573f3"),
         Resource("t10k-labels-idx1-ubyte.gz", md5="ec29112dd5afa0611ce80d1b7f02629c"))),
    "fashion-mnist": Source(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", "fashion-mnist",
        (Resource("train-images-idx3-ubyte.gz", md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
         Resource("train-labels-idx1-ubyte.gz", md5="25c81989df183df01b3e8a0aad5dffbe"),
         Resource("t10k-images-idx3-ubyte.gz", md5="bef4ecab320f06d8554ea6380940ec79"),
         Resource("t10k-labels-idx1-ubyte.gz", md5="bb300cfdad3c16e7a12a480ee83cd310"))),
}


def file_digest(path, algorithm: str) -> str:
    """Hex digest of the file at ``path`` (read in 1 MiB chunks)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path, resource: Resource) -> None:
    """Check every digest ``resource`` publishes against the file at ``path``.

    Raises
    ------
    ChecksumError
        Naming the file, the algorithm, the expected and the actual digest.
    """
    checks = [(a, getattr(resource, a)) for a in ("sha256", "md5") if getattr(resource, a)]
    if not checks:
        raise NormlabValueError(f"download: expected a sha256 or md5 digest for {resource.filename}, "
                         "got neither. Every downloaded file must be verified.")
    for algorithm, expected in checks:
        actual = file_digest(path, algorithm)
        if actual != expected.lower():
            raise ChecksumError(
                f"download: expected {algorithm} {expected} for {resource.filename}, got "
                f"{actual}. The file was deleted; run again, or check the mirror."
            )


def _base_url(name: str, source: Source, mirror) -> str:
    mirror = mirror if mirror is not None else os.environ.get("NORMLAB_MIRROR") or None
    if mirror is None:
        return source.base_url
    mirror = os.fspath(mirror)
    if "://" not in mirror:  # a local folder
        mirror = Path(mirror).expanduser().resolve().as_uri()
    return f"{mirror.rstrip('/')}/{name}/"


def _place(part: Path, final: Path) -> None:
    os.replace(part, final)
    _fsync_dir(os.fspath(final.parent))


def _fetch_verified(url: str, final: Path, resource: Resource, **kw) -> None:
    part = final.with_name(final.name + ".part")
    fetch(url, part, **kw)
    try:
        verify_file(part, resource)
    except ChecksumError:
        part.unlink(missing_ok=True)
        raise
    _place(part, final)


def _present(path: Path, resource: Resource) -> bool:
    """A file already in place that still verifies (a corrupt one is removed)."""
    if not path.is_file():
        return False
    try:
        verify_file(path, resource)
    except ChecksumError:
        path.unlink()
        return False
    return True


def download(name: str, root=None, mirror=None, *, files=None, progress=None,
             retries: int = 3, timeout: float = 60.0) -> Path:
    """Fetch, verify and (for archives) safely unpack data set ``name``; return its folder.

    Parameters
    ----------
    name : {"cifar10", "cifar100", "mnist", "fashion-mnist"}
    root : path, optional
        Parent folder (default ``$NORMLAB_DATA`` or ``~/data``); created when missing.
    mirror : str or path, optional
        Base URL or local folder serving ``<name>/<file>``; default ``$NORMLAB_MIRROR``,
        else the official location.
    files : sequence of Resource, optional
        Replaces the published file list and digests (tests serving their own files).
    progress : None or bool
        tqdm progress bar (None: only on a terminal).
    retries : int
        Automatic resumptions of a transfer cut short.
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    Path
        ``root/<folder>`` (see the module docstring). A folder already complete is
        returned without any network access.

    Raises
    ------
    ValueError
        Unknown name.
    ChecksumError
        A digest mismatch (the partial file is deleted).
    DownloadError
        Server error (status and URL), no network (how to use a mirror), connection lost.
    UnsafeArchiveError
        An archive member that would escape the folder.
    """
    from normlab.data.datasets import data_root  # noqa: PLC0415 (datasets imports us)

    if name not in SOURCES:
        raise NormlabValueError(f"download: expected one of {', '.join(SOURCES)}, got {name!r}.")
    source = SOURCES[name] if files is None else replace(SOURCES[name], files=tuple(files))
    root = data_root() if root is None else Path(root).expanduser()
    target = root / source.folder
    if source.archive and target.is_dir():
        return target  # unpacking ends with one rename: a folder there is complete
    base = _base_url(name, source, mirror)
    kw = {"retries": retries, "progress": progress, "timeout": timeout}
    (target if not source.archive else root).mkdir(parents=True, exist_ok=True)
    for res in source.files:
        final = (root if source.archive else target) / res.filename
        if not _present(final, res):
            _fetch_verified(base + res.filename, final, res, **kw)
    if source.archive:
        safe_unpack(root / source.files[0].filename, root, source.folder)
        _fsync_dir(os.fspath(root))
    return target
