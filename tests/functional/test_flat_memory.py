"""``compiled._flat.flat_memory``: a 1D view of an array's memory and its element strides."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from normlab.functional.compiled._flat import flat_memory

_BASE = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)


@pytest.mark.parametrize("a", [
    _BASE,
    _BASE.transpose(1, 0, 3, 2),  # the few-pixels path's sample-major columns are such views
    _BASE[:, ::2, 1:, ::2],
    _BASE[:1, :, :1],  # axes of length 1: their stride is never used
    _BASE[:, :0],  # empty
], ids=["contiguous", "transposed", "strided", "length-1 axes", "empty"])
def test_every_element_is_found_at_its_strides(a):
    flat, strides = flat_memory(a)
    assert len(strides) == a.ndim
    for index in itertools.product(*(range(d) for d in a.shape)):
        assert flat[sum(i * s for i, s in zip(index, strides))] == a[index]
    assert flat.size == (0 if a.size == 0 else
                         sum((d - 1) * s for d, s in zip(a.shape, strides)) + 1)


def test_no_view_for_a_negative_stride():
    assert flat_memory(_BASE[:, ::-1]) is None
