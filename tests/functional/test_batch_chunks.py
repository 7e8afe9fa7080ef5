"""``_kernels.batch_chunks``: the batch slices every CPU conv path walks."""

from __future__ import annotations

import numpy as np
import pytest

from normlab.functional import _kernels


def _sizes(N, per_sample, chunk_bytes):
    chunks = _kernels.batch_chunks(np.zeros((N, 1)), per_sample, chunk_bytes)
    if chunks:  # contiguous, covering the batch
        assert [c.start for c in chunks] == [0] + [c.stop for c in chunks[:-1]]
        assert chunks[-1].stop == N
    return [c.stop - c.start for c in chunks]


@pytest.mark.parametrize("N,per_sample,chunk_bytes,expected", [
    (32, 10, 280, [16, 16]),  # 28 fit: two chunks, balanced (not 28 + 4)
    (128, 10, 280, [22, 22, 21, 21, 21, 21]),  # 5 -> 6: an even count; larger first
    (5, 10, 20, [2, 1, 1, 1]),
    (3, 10, 20, [2, 1]),
    (7, 10, 1000, [7]),  # all fit
    (3, 10, 1, [1, 1, 1]),  # at least one sample per chunk (no more chunks than samples)
    (0, 10, 280, []),  # an empty batch: no chunk
])
def test_chunks_are_few_and_balanced(N, per_sample, chunk_bytes, expected):
    assert _sizes(N, per_sample, chunk_bytes) == expected


def test_unbalanced_switch_gives_full_chunks_and_a_short_last(monkeypatch):
    monkeypatch.setattr(_kernels, "balanced", False)
    assert _sizes(32, 10, 280) == [28, 4]
    assert _sizes(128, 10, 280) == [28, 28, 28, 28, 16]


def test_odd_counts_stay_without_even_count(monkeypatch):
    monkeypatch.setattr(_kernels, "EVEN_COUNT", False)
    assert _sizes(128, 10, 280) == [26, 26, 26, 25, 25]


@pytest.mark.parametrize("N", range(1, 40))
def test_no_chunk_exceeds_the_budget_and_the_count_is_minimal_and_even(N):
    sizes = _sizes(N, 3, 20)  # 6 samples fit
    fewest = -(-N // 6)
    assert max(sizes) <= 6 and len(sizes) == (fewest + 1 if fewest > 1 and fewest % 2 else fewest)
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
