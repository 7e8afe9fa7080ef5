"""Winograd conv backward with one ``dout`` transform shared by both gradients.

The forward (``_winograd.run_conv3x3``) is, per output tile and channel pair,
``Y = A^T [sum_c U_{fc} * (B^T d_c B)] A`` with ``V = B^T d B`` the input transform of
the ``(m+2) x (m+2)`` input tile ``d`` (tiles overlap by 2). Every step is linear, so
the gradients follow by transposing each step in reverse:

* ``D = A dY A^T`` per ``m x m`` block of ``dout`` (the output transform's adjoint,
  ``Scheme.dout_transform``);
* ``dW``: ``dU_k = sum_tiles D_k V_k^T`` (a GEMM per tile position ``k``), then
  ``dg = G^T dU G`` (``Scheme.weight_from_sum``);
* ``dx``: ``dV_k = U_k^T D_k`` (a GEMM per ``k``), then the input transform's adjoint
  ``dd = B dV B^T`` per tile, the tiles added where they overlap (``input_adjoint``
  below), and the zero padding's adjoint: crop.

So ``D`` is computed once per batch chunk and feeds both GEMM sets. (dx used to be a
second Winograd conv, of ``dout`` with the kernel flipped and its channel axes swapped,
padding ``2 - p``: one more input transform, of ``dout``, 2.25-4x its size.)

``input_adjoint`` is the readable reference of ``dd = B dV B^T`` for any scheme's
``B^T``; compiled twins per tile size go through the dispatch
(``winograd2_input_adjoint``, ``winograd4_input_adjoint``).
"""

from __future__ import annotations

import threading

from normlab import backend
from normlab.functional import _parallel, _winograd, _winograd4, dispatch
from normlab.functional._winograd_scratch import planes, scratch, slot

__all__ = ["input_adjoint", "backward3x3"]

# B^T of each tile size (rows: tile positions a, columns: input offsets i)
BT = {2: ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
      4: _winograd4.BT}

SCHEMES = {2: _winograd.F2, 4: _winograd4.F4}


def input_adjoint(m, dV, padding, dx):
    """Adjoint of the F(m x m, 3x3) input transform: ``dx`` (n, C, H, W) is overwritten
    with ``crop(sum_tiles B dV_tile B^T)``.

    ``dV`` (k, n, C, TH, TW), ``k = (m+2)^2``, possibly a transposed view: ``dV[(m+2)a + b,
    :, :, th, tw]`` is the gradient of ``V[...] = (B^T d B)[a, b]`` of the tile at
    ``(m th, m tw)`` of ``_winograd._tile_pad(x, padding, TH, TW, m)``. Each tile adds
    ``dd[i, j] = sum_{a, b} B^T[a, i] B^T[b, j] dV[(m+2)a + b]`` at rows ``m th + i``,
    columns ``m tw + j``; the padded border's share is dropped (its adjoint is a crop).
    """
    xp = backend.namespace(dV)
    impl = dispatch.lookup(f"winograd{m}_input_adjoint", xp, dV, dx)
    if impl is not None:
        impl(dV, padding[0], padding[1], dx)
        return
    bt = BT[m]
    r = m + 2
    _, n, C, TH, TW = dV.shape
    H, W = dx.shape[2:]
    dxt = xp.zeros((n, C, m * TH + 2, m * TW + 2), dtype=dx.dtype)
    for i in range(r):
        # B along the tile rows: t[b] = sum_a B^T[a, i] dV[r a + b]
        t = [_winograd4._lin([bt[a][i] for a in range(r)], [dV[r * a + b] for a in range(r)])
             for b in range(r)]
        for j in range(r):  # then along the columns, added into the overlapping tiles
            c = _winograd4._lin([bt[b][j] for b in range(r)], t)
            dxt[:, :, i:i + m * TH:m, j:j + m * TW:m] += c
    ph, pw = padding
    sh, sw = max(0, -ph), max(0, -pw)  # as in _winograd._tile_pad: x[sh:] sits at dxt[dh:]
    dh, dw = max(0, ph), max(0, pw)
    h, w = min(H - sh, dxt.shape[2] - dh), min(W - sw, dxt.shape[3] - dw)
    dx[...] = 0
    dx[:, :, sh:sh + h, sw:sw + w] = dxt[:, :, dh:dh + h, dw:dw + w]


def backward3x3(m, x, dout, weight, padding, tiles=None, need_dx=True):
    """Gradients of the F(m x m, 3x3) ``conv3x3(x, weight, padding)``: ``(dx, dweight)``.

    x (N, C, H, W), dout (N, F, OH, OW), weight (F, C, 3, 3); ``tiles``: the forward's
    input transforms (``conv3x3(..., keep=True)``), recomputed when None; ``need_dx``
    False returns ``dx = None`` (no weight transform, no ``dV`` products).
    """
    s = SCHEMES[m]
    xp = backend.namespace(x, dout, weight)
    N, C, H, W = x.shape
    F = dout.shape[1]
    k = s.k
    OH, OW, TH, TW = _winograd._tiles(H, W, padding, m)
    if tiles is None:
        tiles = [(sl, None) for sl in _winograd._chunks(x, C, TH, TW, k)]
    chunks = [sl for sl, _ in tiles]
    T = TH * TW
    threads = _parallel.threads_for(x, len(chunks))
    per_thread = {"chunks": chunks, "copies": threads}
    # dV and the recomputed V take turns in one buffer per thread: dV is spent (added onto
    # dx) before V is written, and the buffer is still in cache when V overwrites it
    Vbuf = scratch(xp, x.dtype, k if (tiles[0][1] is None or need_dx) else 0, C * T,
                   **per_thread)
    Dbuf = scratch(xp, x.dtype, k, F * T, **per_thread)
    Ut = s.transform_weight(weight).swapaxes(-1, -2) if need_dx else None  # (k, C, F)
    dx = xp.empty((N, C, H, W), dtype=x.dtype) if need_dx else None
    dU = _parallel.InOrderSum()  # the chunks' parts, added in chunk order
    # Ut is dropped once every chunk has its dV, before the last weight-gradient parts are
    # made: Ut and a part, both (k, F, C), are not held besides the total then (ResNet-18's
    # 128-channel 8x8 layers at batch 16, F(2x2): 1 MiB each, at the step's peak)
    pending = len(chunks)
    lock = threading.Lock()

    def dV_done():
        nonlocal Ut, pending
        with lock:
            pending -= 1
            if pending == 0:
                Ut = None

    def one(i, th):  # chunk i on thread th
        sl, V = tiles[i]
        n = sl.stop - sl.start
        d = dout[sl]
        if (OH, OW) != (m * TH, m * TW):  # zero-extend odd-sized dout to whole m x m blocks
            d = xp.zeros((n, F, m * TH, m * TW), dtype=x.dtype)
            d[:, :, :OH, :OW] = dout[sl]
        D = planes(Dbuf, k, (F, n, TH, TW), slot(k, F * T, chunks, th))
        s.dout_transform(d, D.transpose(0, 2, 1, 3, 4))
        D2 = D.reshape(k, F, n * T)
        if need_dx:  # dV_k = U_k^T D_k, then its tiles back onto the image
            dV = xp.matmul(Ut, D2, out=planes(Vbuf, k, (C, n * T), slot(k, C * T, chunks, th)))
            input_adjoint(m, dV.reshape(k, C, n, TH, TW).transpose(0, 2, 1, 3, 4), padding,
                          dx[sl])
            dV_done()
        if V is None:
            V = planes(Vbuf, k, (C, n, TH, TW), slot(k, C * T, chunks, th))
            s.input_transform(x[sl], padding, V.transpose(0, 2, 1, 3, 4))
        dU.add(i, xp.matmul(D2, V.reshape(k, C, n * T).swapaxes(-1, -2)))

    _parallel.run(len(chunks), one, threads)
    Msum = dU.total
    if Msum is None:  # an empty batch
        return dx, xp.zeros(weight.shape, dtype=weight.dtype)
    return dx, s.weight_from_sum(Msum)
