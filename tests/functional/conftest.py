"""Fixtures for functional tests: run kernels on the reference path and the compiled one."""

from __future__ import annotations

import numpy as np
import pytest

from normlab.functional import dispatch


@pytest.fixture
def kernels(kernel_setting):
    """Run the test once with the reference xp code and once with the compiled kernels."""
    assert (dispatch.lookup("col2im", np) is not None) == (kernel_setting == "compiled")
    return kernel_setting
