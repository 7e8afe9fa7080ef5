"""Fixtures for functional tests: run kernels on both the NumPy path and the numba path."""

from __future__ import annotations

import pytest

from normlab.functional import _kernels


@pytest.fixture(params=["numpy", "numba"])
def kernels(request):
    """Run the test once with the pure NumPy kernels and once with the numba ones."""
    if request.param == "numba":
        pytest.importorskip("numba")
    old = _kernels.use_compiled(request.param == "numba")
    assert (_kernels.compiled() is not None) == (request.param == "numba")
    yield request.param
    _kernels.use_compiled(old)
