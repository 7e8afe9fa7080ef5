"""A 1D view of an array's memory, for kernels that index it by element strides.

numba vectorises a loop over a 1D slice of a flat array, where indexing a transposed or
sliced N-d view in the same loop it did not (the F(4x4) output transform ran 2x slower;
col2im's per-row views cost more than its adds).
"""

from __future__ import annotations

import numpy as np

__all__ = ["flat_memory"]


def flat_memory(a):
    """``(flat, strides)``: a 1D view of ``a``'s memory from ``a[0, ..., 0]`` to its last
    element, and ``a``'s strides in elements (0 for axes of length 1, whose stride is never
    used), so that ``a[i0, i1, ...]`` is ``flat[i0*strides[0] + i1*strides[1] + ...]``.
    ``None`` where a stride is negative or not a whole number of elements."""
    it = a.itemsize
    strides = tuple(0 if d == 1 else s for d, s in zip(a.shape, a.strides))
    if any(s < 0 or s % it for s in strides):
        return None
    strides = tuple(s // it for s in strides)
    extent = sum((d - 1) * s for d, s in zip(a.shape, strides)) + 1 if a.size else 0
    return np.lib.stride_tricks.as_strided(a, shape=(extent,), strides=(it,)), strides
