"""Launching a test worker module on K processes under mpiexec (never collected).

Workers are small modules of this package, run as ``mpiexec -n K python -m
tests.distributed.<worker> ARGS`` from the repository root, so they import this
checkout's normlab. MPI is part of the ``test`` extra: a missing MPI fails, never skips.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from normlab.distributed import mpi_problem, run_mpiexec

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180  # seconds per launch; a healthy one takes a few seconds


def launch(nproc: int, worker: str, *args, timeout: float = TIMEOUT, check: bool = True):
    """Run ``tests.distributed.<worker>`` on ``nproc`` processes; the CompletedProcess.

    ``check=True`` fails the test (with the job's output) on a non-zero exit status.
    ``.elapsed`` holds the wall time in seconds.
    """
    problem = mpi_problem()
    if problem is not None:
        pytest.fail(f"MPI is part of the test extra (pip install -e .[test]): {problem}")
    t0 = time.perf_counter()
    try:
        proc = run_mpiexec(nproc, ["-m", f"tests.distributed.{worker}", *map(str, args)],
                           timeout=timeout, cwd=ROOT, capture=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mpiexec -n {nproc} {worker} {args} did not finish in {timeout} s")
    proc.elapsed = time.perf_counter() - t0
    if check and proc.returncode != 0:
        pytest.fail(f"mpiexec -n {nproc} {worker} exited {proc.returncode}\n"
                    f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc
