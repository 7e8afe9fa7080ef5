"""Run folders: collision-free names and an advisory lock so two runs never share one.

``make_run_dir(parent, name)`` creates ``parent/name`` with an exclusive ``mkdir``; when it
exists (another run started in the same second) it tries ``name-2``, ``name-3`` ... so two
processes can never pick the same folder. ``RunLock(run_dir)`` holds ``fcntl.flock`` on
``run_dir/.lock`` for the life of a run (released by the OS when the process dies, so a
killed run never leaves a stale lock); a second run in the same folder (``--resume`` twice)
gets a ``NormlabOSError`` instead of interleaving ``history.jsonl``.
"""

from __future__ import annotations

import os
from pathlib import Path

from normlab.errors import NormlabOSError

__all__ = ["make_run_dir", "RunLock"]

try:  # POSIX; elsewhere runs are simply not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def make_run_dir(parent, name: str) -> Path:
    """Create and return a new folder ``parent/name`` (or ``name-2``, ``name-3``, ...).

    Raises
    ------
    NormlabOSError
        If ``parent`` cannot be created or written (read-only or full disk).
    """
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NormlabOSError(f"run folder: expected a writable folder {str(parent)!r}, got "
                             f"{type(e).__name__}: {e.strerror or e}.") from None
    for n in range(1, 10_000):
        path = parent / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise NormlabOSError(f"run folder: expected to create {str(path)!r}, got "
                                 f"{type(e).__name__}: {e.strerror or e}.") from None
    raise NormlabOSError(f"run folder: expected a free name under {str(parent)!r}, got "
                         f"{name!r} to {name}-9999 all taken.")


class RunLock:
    """Exclusive advisory lock on a run folder for the duration of a ``with`` block.

    Raises
    ------
    NormlabOSError
        On entry, if another process holds the lock (or the folder is not writable).
    """

    def __init__(self, run_dir):
        self.path = Path(run_dir) / ".lock"
        self._fh = None

    def __enter__(self) -> "RunLock":
        if fcntl is None:  # pragma: no cover
            return self
        try:
            self._fh = open(self.path, "a+")
        except OSError as e:
            raise NormlabOSError(f"run folder: expected a writable folder "
                                 f"{str(self.path.parent)!r}, got {type(e).__name__}: "
                                 f"{e.strerror or e}.") from None
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.seek(0)
            holder = self._fh.read().strip() or "unknown"
            self._fh.close()
            self._fh = None
            raise NormlabOSError(
                f"run folder: expected {str(self.path.parent)!r} to be free, got it in use by "
                f"another normlab run (pid {holder}). Wait for it to finish or use another "
                "folder."
            ) from None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(str(os.getpid()))
        self._fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
