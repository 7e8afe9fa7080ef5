"""Crash-safe file writes shared by checkpoints, histories, run folders and caches."""

from __future__ import annotations

import errno
import os
import secrets

from normlab.errors import NormlabError, NormlabOSError

__all__ = ["atomic_write_bytes", "make_dirs", "os_error"]


def _fsync_dir(folder: str) -> None:
    """Persist a rename: the directory entry itself must reach the disk."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a mix.

    Temp file in the same folder (``os.replace`` is atomic only within one file system),
    flush, ``os.fsync``, ``os.replace``, then fsync the folder.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".tmp-{os.path.basename(path)}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, NormlabError):
            raise os_error("write", f"a writable file {path!r}", e) from None
        raise
    _fsync_dir(folder)


def os_error(owner: str, what: str, e: OSError) -> NormlabOSError:
    """``e`` as a NormlabOSError with an ``expected ... got`` message (errno kept)."""
    why = e.strerror or str(e)
    if isinstance(e, (FileExistsError, NotADirectoryError)):
        why += " (a file is in the way of a folder)"
    hint = {errno.ENOSPC: " Free disk space or write elsewhere.",
            errno.EROFS: " Write to a writable file system.",
            errno.EACCES: " Check the permissions or write elsewhere."}.get(e.errno, "")
    err = NormlabOSError(f"{owner}: expected {what}, got {type(e).__name__}: {why}.{hint}")
    err.errno, err.strerror, err.filename = e.errno, e.strerror, e.filename
    return err


def make_dirs(path, owner: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` raising a NormlabOSError that says what is wrong."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise os_error(owner, f"a folder at {os.fspath(path)!r} (or nothing there)", e) from None
