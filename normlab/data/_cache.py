"""The ``.npz`` cache of converted data sets: where it lives, atomic writes, safe reads.

The folder is ``$NORMLAB_CACHE`` (default ``~/.cache/normlab``). Files are written to a
temporary name in the same folder and then renamed, so an interrupted run never leaves a
half-written cache entry; they are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np

from normlab._io import atomic_write_bytes

__all__ = ["cache_dir", "cache_path", "load_cached", "save_cached", "fingerprint", "CacheWarning"]


def cache_dir() -> Path:
    """The cache folder: ``$NORMLAB_CACHE`` or ``~/.cache/normlab`` (not created here)."""
    env = os.environ.get("NORMLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "normlab"


def cache_path(key: str) -> Path:
    """Path of the cache entry ``key`` (a file-name-safe string)."""
    return cache_dir() / f"{key}.npz"


def load_cached(key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key``, or None when there is no (readable) entry."""
    path = cache_path(key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError):
        # A corrupt entry (e.g. a disk-full write) is rebuilt rather than trusted.
        return None


def save_cached(key: str, arrays: dict[str, np.ndarray]) -> Path | None:
    """Write ``arrays`` under ``key`` atomically (temporary file, fsync, rename).

    Returns the entry's path, or None (with a ``CacheWarning``) when the cache folder
    cannot be written.
    """
    path = cache_path(key)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(os.fspath(path), buf.getvalue())
    except OSError as e:
        # The cache only saves time: an unwritable or full cache folder must not end a run.
        warnings.warn(f"data cache: expected a writable cache folder {str(path.parent)!r}, got "
                      f"{type(e).__name__}: {e.strerror or e}. Continuing without caching "
                      "(set NORMLAB_CACHE to a writable folder).", CacheWarning, stacklevel=2)
        return None
    return path


class CacheWarning(UserWarning):
    """The optional data cache could not be written; the run continues without it."""


def fingerprint(*parts) -> str:
    """A short stable hash of ``parts`` (paths, sizes, mtimes, options) for cache keys."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode())
    return h.hexdigest()[:16]
