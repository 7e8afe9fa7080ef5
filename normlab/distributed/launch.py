"""Starting ``N`` Python processes under ``mpiexec`` (the one of the installed ``mpich``).

``find_mpiexec()`` prefers the ``mpiexec`` beside ``sys.executable`` (a virtual
environment's ``bin/``, where the ``mpich`` wheel puts it, so that launcher and
``mpi4py``'s MPI library match), then the one on ``PATH``. ``mpiexec_command`` builds the
command line and ``launch_env`` its environment: the parent's, minus any launcher
variables of an enclosing MPI job (a nested launch would otherwise join it), with
MPICH's hydra told to start the processes locally by ``fork`` (no ssh needed) and one
BLAS/OpenMP thread per process unless the caller chose otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from normlab.errors import NormlabRuntimeError, NormlabValueError

__all__ = ["find_mpiexec", "mpi_problem", "launch_env", "mpiexec_command", "run_mpiexec"]

_STRIP_PREFIXES = ("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "HYDI_", "HYDRA_CONTROL")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS")


def find_mpiexec() -> str | None:
    """Path of ``mpiexec``: beside ``sys.executable`` first, then on ``PATH``; else None."""
    for name in ("mpiexec", "mpirun"):
        here = Path(sys.executable).parent / name
        if here.is_file() and os.access(here, os.X_OK):
            return str(here)
    for name in ("mpiexec", "mpirun"):
        found = shutil.which(name)
        if found:
            return found
    return None


def mpi_problem() -> str | None:
    """Why ``mpiexec -n N python ...`` cannot work here, or None when it can.

    Checks that ``mpi4py`` is installed (without importing it) and that an ``mpiexec``
    is found.
    """
    if importlib.util.find_spec("mpi4py") is None:
        return ("expected mpi4py to be installed, got no mpi4py module. Install MPI support "
                "with pip install 'normlab[mpi]' (mpi4py and the mpich wheel)")
    if find_mpiexec() is None:
        return (f"expected an mpiexec beside {sys.executable} or on PATH, got none. Install "
                "MPI support with pip install 'normlab[mpi]' (the mpich wheel provides it)")
    return None


def launch_env(threads: int | None = 1, base=None) -> dict:
    """Environment for ``mpiexec``: ``base`` (default ``os.environ``) without the variables
    of an enclosing MPI launch, ``HYDRA_LAUNCHER=fork``, and ``threads`` BLAS/OpenMP
    threads per process where the caller set none (``threads=None`` leaves them alone).
    """
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.startswith(_STRIP_PREFIXES)}
    env.setdefault("HYDRA_LAUNCHER", "fork")
    if threads is not None:
        for var in _THREAD_VARS:
            env.setdefault(var, str(int(threads)))
    return env


def mpiexec_command(nproc: int, args, *, mpiexec: str | None = None,
                    python: str | None = None) -> list[str]:
    """``[mpiexec, "-n", nproc, python, *args]``.

    Raises
    ------
    ValueError
        If ``nproc`` is not a positive int.
    RuntimeError
        If no ``mpiexec`` is found (see :func:`mpi_problem`).
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise NormlabValueError(f"mpiexec_command: expected nproc to be a positive int, got {nproc!r}.")
    mpiexec = mpiexec or find_mpiexec()
    if mpiexec is None:
        raise NormlabRuntimeError(f"mpiexec_command: {mpi_problem()}.")
    return [mpiexec, "-n", str(nproc), python or sys.executable, *map(str, args)]


def run_mpiexec(nproc: int, args, *, timeout: float | None = None, env=None, cwd=None,
                capture: bool = False, threads: int | None = 1) -> subprocess.CompletedProcess:
    """Run ``python *args`` on ``nproc`` processes and wait.

    ``capture=True`` collects stdout/stderr as text; otherwise they go to this process's.
    The job runs in its own process group: after ``timeout`` seconds the whole group
    (``mpiexec`` and every rank) is killed and ``subprocess.TimeoutExpired`` raised.
    """
    cmd = mpiexec_command(nproc, args)
    pipe = subprocess.PIPE if capture else None
    with subprocess.Popen(cmd, env=launch_env(threads, env), cwd=cwd, stdout=pipe,
                          stderr=pipe, text=capture, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:  # timeout or Ctrl-C: no rank may outlive the launcher
            _kill_group(proc)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # pragma: no cover - already gone
        pass
