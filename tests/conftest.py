"""Shared fixtures. Tests never touch the network: opening a non-local socket fails."""

from __future__ import annotations

import socket

import numpy as np
import pytest

import normlab


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


@pytest.fixture(params=["compiled", "reference"])
def kernel_setting(request):
    """Run the test under both settings of ``normlab.kernels``: the compiled kernels where
    registered (numba on NumPy), and the readable reference code of every op."""
    if request.param == "compiled":
        pytest.importorskip("numba")  # a dependency; guarded so the reference still runs
    with normlab.kernels(request.param):
        yield request.param
