"""What a run needs to be reproduced: code version, BLAS, kernels, threads, command.

``reproducibility_info()`` is merged into every run's ``env.json`` (and ``normlab info``) by
``normlab.lab.runs.env_info``. BLAS comes from ``threadpoolctl`` and the kernel setting from
the one switch, both through ``normlab.functional.dispatch``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["git_state", "reproducibility_info"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS")


def _git(*args: str) -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """``{"git_commit": sha or "unknown", "git_dirty": bool or None}`` of normlab's checkout.

    ``git_dirty`` is True when tracked files differ from the commit (the run's code is then
    not exactly the commit); both are "unknown"/None outside a git checkout.
    """
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return {"git_commit": "unknown", "git_dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def reproducibility_info() -> dict[str, Any]:
    """Git commit and dirty flag, the kernel setting with its compiled ops, NumPy's BLAS
    (library, version, core, threads: ``dispatch.describe`` / ``dispatch.blas_info``), the
    thread variables and the command."""
    from normlab.functional import dispatch  # noqa: PLC0415

    return {
        **git_state(),
        "kernels": dispatch.describe(),
        "blas": dispatch.blas_info(),
        "thread_env": {k: os.environ.get(k) for k in _THREAD_VARS},
        "command": _command(),
    }


def _command() -> list[str]:
    """``sys.argv`` with the program shown as ``normlab`` for ``python -m normlab``."""
    if not sys.argv:
        return []
    prog = os.path.basename(sys.argv[0])
    if prog == "__main__.py" and Path(sys.argv[0]).parent.name == "normlab":
        prog = "normlab"
    return [prog, *sys.argv[1:]]
