"""``compiled/_phases``: the F(4x4) transforms' row layout and their flat column-phase loops
against NumPy slicing."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from normlab.functional.compiled import _phases  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_takes_every_fourth_element_and_merge_undoes_it(dtype):
    rng = np.random.default_rng(0)
    n = 37  # not a multiple of the vector width: the loops' remainders run too
    rows = rng.standard_normal(4 * n + 2).astype(dtype)
    P = np.full((4, n + 3), np.nan, dtype)
    _phases.split(rows, P, n)
    for j in range(4):
        np.testing.assert_array_equal(P[j, :n], rows[j:j + 4 * n:4])
    assert np.isnan(P[:, n:]).all()  # nothing past n written
    back = np.full(4 * n + 5, -1.0, dtype)
    _phases.merge(P, back, n)
    np.testing.assert_array_equal(back[:4 * n], rows[:4 * n])
    assert (back[4 * n:] == -1).all()


def test_block_row_puts_each_tile_rows_of_a_run_in_tile_order():
    ns, TH = 3, 4
    seen = {(i, s, th): _phases.block_row(i, s, th, ns, TH)
            for i in range(4) for s in range(ns) for th in range(TH)}
    assert sorted(seen.values()) == list(range(4 * ns * TH))  # one row each
    for i in range(4):  # for one i, tile rows follow sample by sample, tile row by tile row
        order = [seen[(i, s, th)] for s in range(ns) for th in range(TH)]
        assert order == list(range(i * ns * TH, (i + 1) * ns * TH))


def test_row_in_and_row_out_copy_spans_of_any_rows():
    rng = np.random.default_rng(1)
    src = rng.standard_normal((5, 40))
    dst = np.zeros(100)
    _phases.row_in(src, 3, 7, dst, 11, 29)
    np.testing.assert_array_equal(dst[11:40], src[3, 7:36])
    assert not dst[:11].any() and not dst[40:].any()
    strided = np.zeros((6, 80))[:, ::2]  # rows of any layout
    _phases.row_out(dst, 11, strided, 4, 2, 29)
    np.testing.assert_array_equal(strided[4, 2:31], src[3, 7:36])
    assert np.count_nonzero(strided) == np.count_nonzero(src[3, 7:36])
