"""One image plane into a zero-bordered scratch plane, for the compiled kernels that pad
a plane at a time instead of the whole batch (the Winograd input transforms of both
schemes, im2col).
"""

from __future__ import annotations

import numba

__all__ = ["pad_into"]


@numba.njit(cache=True, nogil=True, fastmath=False)
def pad_into(p, ph, pw, xs):
    """Image ``p`` (H, W) into the zero-bordered scratch ``xs`` at offset ``(ph, pw)``:
    rows/columns before a negative pad are dropped, what does not fit is cut off."""
    H, W = p.shape
    Ht, Wt = xs.shape
    sh, sw = max(0, -ph), max(0, -pw)  # first source row/column used
    dh, dw = max(0, ph), max(0, pw)  # where it lands
    h, w = min(H - sh, Ht - dh), min(W - sw, Wt - dw)
    for i in range(h):
        pr, xr = p[sh + i], xs[dh + i]
        for j in range(w):
            xr[dw + j] = pr[sw + j]
