"""Shared fixtures. Tests never touch the network: opening a non-local socket fails."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

import normlab


_BLAS_LIMIT = None  # keeps threadpoolctl's limit alive for the session


def pytest_configure(config):
    """Under pytest-xdist, share the cores between workers instead of oversubscribing them.

    Each worker would otherwise run OpenBLAS with one thread per core: with 2 workers on 2
    cores the BLAS threads spin against each other and small matmuls slow down by orders of
    magnitude. Subprocesses (MPI ranks, notebook kernels) inherit the limit through the
    environment. An explicit OPENBLAS_NUM_THREADS / OMP_NUM_THREADS wins.
    """
    global _BLAS_LIMIT
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if workers <= 1:
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a core dependency
        return
    _BLAS_LIMIT = threadpool_limits(limits=threads, user_api="blas")


def pytest_runtest_setup(item):
    """Tests marked ``gpu`` skip where CuPy or a CUDA device is missing (CI has none)."""
    if item.get_closest_marker("gpu") is not None:
        from normlab import backend

        if not backend.cupy_available():
            pytest.skip("CuPy with a CUDA device is not available")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail any test that tries to reach a non-loopback address."""
    real_connect = socket.socket.connect

    def guarded(self, address, *args, **kwargs):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")
                                      or self.family == socket.AF_UNIX):
            return real_connect(self, address, *args, **kwargs)
        raise RuntimeError(f"test tried to open a network connection to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def threads():
    """Run with ``normlab.set_num_threads(n)``, restoring the old count after."""
    old = normlab.get_num_threads()
    yield normlab.set_num_threads
    normlab.set_num_threads(old or 2)


@pytest.fixture
def blas_counts():
    """``blas_counts()``: the thread counts of the BLAS libraries normlab steers (NumPy's)."""
    from normlab.functional import _parallel

    return lambda: [lib.get_num_threads() for lib in _parallel._blas_controllers()]


@pytest.fixture(params=["compiled", "reference"])
def kernel_setting(request):
    """Run the test under both settings of ``normlab.kernels``: the compiled kernels where
    registered (numba on NumPy), and the readable reference code of every op."""
    if request.param == "compiled":
        pytest.importorskip("numba")  # a dependency; guarded so the reference still runs
    with normlab.kernels(request.param):
        yield request.param
