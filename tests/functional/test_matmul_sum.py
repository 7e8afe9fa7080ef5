"""``_kernels.matmul_sum``: the per-sample products of a weight gradient, summed a block
of samples at a time."""

from __future__ import annotations

import numpy as np
import pytest

from normlab.functional import _kernels


@pytest.mark.parametrize("block_bytes", [1, 3 * 4 * 5 * 4, 2**20], ids=["one", "three", "all"])
@pytest.mark.parametrize("shape", [(7, 4, 9, 5), (7, 2, 4, 9, 5)], ids=["plain", "groups"])
def test_matmul_sum_has_the_bits_of_one_product_and_a_sum(shape, block_bytes, monkeypatch):
    # block_bytes: one sample's products per block, three (a last, shorter block), or all
    rng = np.random.default_rng(3)
    *lead, K, P = shape
    F = 5
    a = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(np.float32)
    b = rng.standard_normal((*lead, F, P)).astype(np.float32).swapaxes(-1, -2)
    monkeypatch.setattr(_kernels, "SUM_BLOCK_BYTES", block_bytes)
    got = _kernels.matmul_sum(a, b)
    expected = np.matmul(a, b).sum(axis=0)
    assert got.shape == expected.shape == (*lead[1:], K, F)
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_matmul_sum_of_one_sample_is_its_product():
    a = np.arange(6.0).reshape(1, 2, 3)
    b = np.ones((1, 3, 4))
    np.testing.assert_array_equal(_kernels.matmul_sum(a, b), a[0] @ b[0])
