"""What a run needs to be reproduced: code version, BLAS, kernels, threads, command.

``reproducibility_info()`` is merged into every run's ``env.json`` (and ``normlab info``) by
``normlab.lab.runs.env_info``; it fills only keys that are missing there. Reading it
starts nothing heavy: BLAS comes from ``threadpoolctl`` (a scikit-learn dependency), the
kernel setting from the one switch in ``normlab.functional._kernels``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["git_state", "blas_info", "kernel_setting", "reproducibility_info"]

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


def blas_info() -> dict[str, Any]:
    """The BLAS/OpenMP libraries loaded (NumPy's and its neighbours'), keyed by file name,
    with API, version, thread count and architecture."""
    try:
        import numpy as np  # noqa: PLC0415

        np.dot(np.ones((2, 2)), np.ones((2, 2)))  # make sure NumPy's BLAS is loaded
        from threadpoolctl import threadpool_info  # noqa: PLC0415
    except ImportError:
        return {"error": "threadpoolctl is not installed"}
    keep = ("user_api", "internal_api", "version", "num_threads", "threading_layer",
            "architecture")
    return {os.path.basename(lib.get("filepath", "?")): {k: lib.get(k) for k in keep if k in lib}
            for lib in threadpool_info()}


def kernel_setting() -> dict[str, Any]:
    """The kernel switch (``_kernels.use_compiled``) and whether numba can be imported."""
    from normlab.functional import _kernels  # noqa: PLC0415

    try:
        import numba  # noqa: PLC0415
        numba_version = numba.__version__
    except ImportError:
        numba_version = None
    return {"compiled_enabled": bool(_kernels._compiled_enabled), "numba": numba_version}


def reproducibility_info() -> dict[str, Any]:
    """Git commit and dirty flag, BLAS, kernel setting, thread variables and the command."""
    return {
        **git_state(),
        "blas": blas_info(),
        "kernels": kernel_setting(),
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
