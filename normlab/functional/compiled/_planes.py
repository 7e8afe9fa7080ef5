"""Where the Winograd transforms' planes live: a 1D view of their memory and its element
strides, made inside the compiled kernel, for both schemes (``numba_winograd4``,
``numba_winograd2``).

The V, M, D and dV buffers are (k, n, C, TH, TW) views, each ``(TH, TW)`` plane
contiguous, of one flat scratch buffer (``functional._winograd_scratch``). ``home``
finds that buffer in Python (0.2 us); the jitted ``runs`` makes the flat view from the two
arrays' addresses and cuts each channel's planes into runs of tiles; ``read_planes`` and
``write_planes`` call a kernel's jitted entry with them, or on a contiguous copy for any
other layout. Each transform's entry (``runs``, then its planes kernel) is a few lines
alike across the two schemes: a cached numba function must name the kernel it calls
(taking it as an argument would compile it again per caller, and returning the flat view
to Python to pass it on costs the boxing this module saves).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["UNLIMITED", "home", "runs", "read_planes", "write_planes"]

_jit = numba.njit(cache=True, nogil=True, fastmath=False)

UNLIMITED = 2**62  # a ``longest`` that never splits a run


def home(P):
    """A 1D C-contiguous array of ``P``'s dtype whose memory holds ``P`` (k, n, C, TH, TW),
    when each ``(TH, TW)`` plane of ``P`` is contiguous: ``P`` itself (flattened) or the
    base it views. ``None`` for any other layout.

    Every transform call asks (ResNet-20 b32: 330 times a step), which is why the view is
    made in the kernel and not in Python (``_flat.flat_memory``: 5 us and 30 calls a
    transform; 16x32x32 conv at b32, forward + backward, 1 thread: 4.98-5.05 -> 4.49-4.71
    ms; ResNet-20 b32 step, alternating processes: 104.4-106.8 -> 100.8-101.7 ms)."""
    it = P.itemsize
    TH, TW = P.shape[3], P.shape[4]
    if (TW > 1 and P.strides[4] != it) or (TH > 1 and P.strides[3] != TW * it):
        return None
    r = P
    while isinstance(r.base, np.ndarray):
        r = r.base
    return r.reshape(-1) if r.flags.c_contiguous and r.dtype == P.dtype else None


@_jit
def runs(root, P, longest):
    """``(ok, flat, sk, sn, sc, G, L)`` for planes ``P`` (k, n, C, TH, TW) in the memory of
    ``root`` (``home``): ``flat`` is ``root`` from ``P[0, 0, 0, 0, 0]`` on, plane ``P[k, n,
    c]`` is ``flat[k*sk + n*sn + c*sc:][:TH*TW]`` (element strides; 0 on axes of length
    1), in ``G`` runs of ``L`` tiles per channel, ``sn`` apart: one run of ``n*T`` when
    the samples' planes of a channel are adjacent and ``n*T <= longest``, else ``n`` of
    ``T``. ``ok`` is False (nothing else valid) where a stride is negative or not a whole
    number of elements."""
    it = P.itemsize
    st = [0, 0, 0, 0, 0]
    extent = 1
    for d in range(5):
        if P.shape[d] > 1:
            if P.strides[d] < 0 or P.strides[d] % it:
                return False, root[:0], 0, 0, 0, 0, 0
            st[d] = P.strides[d] // it
            extent += (P.shape[d] - 1) * st[d]
    off = np.int64(P.ctypes.data - root.ctypes.data) // it
    flat = root[off:off + extent]
    n, T = P.shape[1], P.shape[3] * P.shape[4]
    if st[1] == T and n * T <= longest:
        return True, flat, st[0], st[1], st[2], 1, n * T
    return True, flat, st[0], st[1], st[2], n, T


def read_planes(P, use):
    """``use(root, P)`` (a jitted entry returning ``runs``'s ``ok``) on planes ``P`` in
    place where ``home`` finds their memory, else on a contiguous copy."""
    root = home(P)
    if root is None or not use(root, P):
        P = np.ascontiguousarray(P)
        use(P.reshape(-1), P)


def write_planes(P, fill):
    """``fill(root, target)`` (as ``use`` above) writes the planes of ``target``: ``P``
    itself where ``home`` finds its memory, else a buffer that has them, then copied."""
    root = home(P)
    if root is not None and fill(root, P):
        return
    target = np.empty(P.shape, dtype=P.dtype)
    fill(target.reshape(-1), target)
    P[...] = target
