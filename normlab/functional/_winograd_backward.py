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

# A one-thread backward runs in two passes (``_two_passes``) where the transformed weight U
# (k, F, C) has at least this many times the input's elements: many channels, few pixels,
# where U, the weight gradient's total and a chunk's part (each k F C) outweigh the
# activations. ResNet-20's 64-channel 8x8 layers at batch 32 (U 0.56 MiB, x 0.5 MiB; not
# at batch 128), ResNet-18's 128- and 256-channel layers at 64x64 batch 16. Elsewhere the
# one pass saves the dout transforms the second pass makes again.
TWO_PASS_MIN_RATIO = 1.0

# The second pass adds a chunk's weight-gradient products into the total in this many
# groups of tile positions: one group's products (k/4 F C) are held at a time.
PART_GROUPS = 4


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


def backward3x3(m, x, dout, weight, padding, tiles=None, need_dx=True, into=None):
    """Gradients of the F(m x m, 3x3) ``conv3x3(x, weight, padding)``: ``(dx, dweight)``.

    x (N, C, H, W), dout (N, F, OH, OW), weight (F, C, 3, 3); ``tiles``: the forward's
    input transforms (``conv3x3(..., keep=True)``), recomputed when None; ``need_dx``
    False returns ``dx = None`` (no weight transform, no ``dV`` products). ``into``: where
    ``dx`` goes (x's shape and dtype, C-contiguous), ``dout`` itself allowed: each chunk's
    ``dx`` is written after that chunk's ``dout`` is transformed for the last time.
    """
    s = SCHEMES[m]
    two_pass = (s.k * dout.shape[1] * x.shape[1] >= TWO_PASS_MIN_RATIO * x.size
                and _parallel.threads_for(x, 2) == 1)
    b = _Chunks(s, x, dout, weight, padding, tiles, need_dx, into)
    return _two_passes(b) if two_pass else _one_pass(b)


class _Chunks:
    """One ``backward3x3`` call: its batch chunks, their scratch planes, the transformed
    weight ``Ut`` (k, C, F) and ``dx`` once made, and each chunk's steps."""

    def __init__(self, s, x, dout, weight, padding, tiles, need_dx, into=None):
        self.s, self.x, self.dout, self.weight, self.padding = s, x, dout, weight, padding
        self.need_dx, self.into = need_dx, into
        self.xp = xp = backend.namespace(x, dout, weight)
        k, C, F = s.k, x.shape[1], dout.shape[1]
        self.OH, self.OW, TH, TW = _winograd._tiles(x.shape[2], x.shape[3], padding, s.m)
        self.TH, self.TW, T = TH, TW, TH * TW
        if tiles is None:  # no kept input transforms: made again per chunk
            tiles = [(sl, None) for sl in _winograd._chunks(x, C, TH, TW, k)]
        self.tiles = tiles
        self.chunks = chunks = [sl for sl, _ in tiles]
        self.threads = _parallel.threads_for(x, len(chunks))
        per_thread = {"chunks": chunks, "copies": self.threads}
        # dV and the recomputed V take turns in one buffer per thread: dV is spent (added
        # onto dx) before V is written, and the buffer is still in cache when V overwrites it
        self.Vbuf = scratch(xp, x.dtype, k if (tiles[0][1] is None or need_dx) else 0, C * T,
                            **per_thread)
        self.Dbuf = scratch(xp, x.dtype, k, F * T, **per_thread)
        self.Ut = self.dx = None

    def start_dx(self):
        """Make ``Ut`` and the ``dx`` that ``dx_part`` fills (``into``, or a new array)."""
        self.Ut = self.s.transform_weight(self.weight).swapaxes(-1, -2)
        self.dx = self.xp.empty(self.x.shape, dtype=self.x.dtype) if self.into is None \
            else self.into

    def dout_planes(self, i, th):
        """Chunk ``i``'s D (k, F, n*T), in thread ``th``'s buffer."""
        s, xp, m, sl = self.s, self.xp, self.s.m, self.chunks[i]
        n, F, TH, TW = sl.stop - sl.start, self.dout.shape[1], self.TH, self.TW
        d = self.dout[sl]
        if (self.OH, self.OW) != (m * TH, m * TW):  # zero-extend to whole m x m blocks
            d = xp.zeros((n, F, m * TH, m * TW), dtype=self.x.dtype)
            d[:, :, :self.OH, :self.OW] = self.dout[sl]
        D = planes(self.Dbuf, s.k, (F, n, TH, TW), slot(s.k, F * TH * TW, self.chunks, th))
        s.dout_transform(d, D.transpose(0, 2, 1, 3, 4))
        return D.reshape(s.k, F, n * TH * TW)

    def dx_part(self, i, D2, th):
        """``dV_k = U_k^T D_k`` of chunk ``i``, then its tiles back onto ``dx``."""
        k, C, sl, T = self.s.k, self.x.shape[1], self.chunks[i], self.TH * self.TW
        n = sl.stop - sl.start
        out = planes(self.Vbuf, k, (C, n * T), slot(k, C * T, self.chunks, th))
        dV = self.xp.matmul(self.Ut, D2, out=out).reshape(k, C, n, self.TH, self.TW)
        input_adjoint(self.s.m, dV.transpose(0, 2, 1, 3, 4), self.padding, self.dx[sl])

    def input_planes(self, i, th):
        """Chunk ``i``'s V^T (k, n*T, C): the forward's, or made again."""
        s, C, (sl, V), T = self.s, self.x.shape[1], self.tiles[i], self.TH * self.TW
        n = sl.stop - sl.start
        if V is None:
            where = slot(s.k, C * T, self.chunks, th)
            V = planes(self.Vbuf, s.k, (C, n, self.TH, self.TW), where)
            s.input_transform(self.x[sl], self.padding, V.transpose(0, 2, 1, 3, 4))
        return V.reshape(s.k, C, n * T).swapaxes(-1, -2)

    def dweight(self, total):
        """``G^T . G`` of the chunks' summed products (zeros for an empty batch)."""
        if total is None:
            return self.xp.zeros(self.weight.shape, dtype=self.weight.dtype)
        return self.s.weight_from_sum(total)


def _one_pass(b: _Chunks):
    """``backward3x3`` chunk by chunk over ``b.threads`` threads: each chunk's D feeds its
    ``dV`` products, then (V in the same buffer) its weight-gradient part; the parts are
    added in chunk order."""
    if b.need_dx:
        b.start_dx()
    dU = _parallel.InOrderSum()
    # Ut is dropped once every chunk has its dV, before the last weight-gradient parts are
    # made: Ut and a part, both (k, F, C), are not held besides the total then (ResNet-18's
    # 128-channel 8x8 layers at batch 16, F(2x2): 1 MiB each, at the step's peak)
    pending = len(b.chunks)
    lock = threading.Lock()

    def one(i, th):  # chunk i on thread th
        nonlocal pending
        D2 = b.dout_planes(i, th)
        if b.need_dx:
            b.dx_part(i, D2, th)
            with lock:
                pending -= 1
                if pending == 0:
                    b.Ut = None
        dU.add(i, D2 @ b.input_planes(i, th))

    _parallel.run(len(b.chunks), one, b.threads)
    return b.dx, b.dweight(dU.total)


def _two_passes(b: _Chunks):
    """``_one_pass`` on one thread in two passes, for layers whose (k, F, C) arrays
    outweigh the activations (``TWO_PASS_MIN_RATIO``). First the weight gradient: each
    chunk's products added into the total ``PART_GROUPS`` groups of tile positions at a
    time, then ``G^T . G``. Then ``Ut`` and ``dx``, the chunks in reverse so that the last
    chunk's D is still in its buffer. So Ut is made only once the total is spent, and no
    whole part is made: the one pass holds Ut, the total and then a part (ResNet-20's
    64-channel layers at batch 32: 0.56 MiB each) beside a chunk's V and D, at the step's
    peak. The same products and additions in the same order as ``_one_pass``: the same
    bits; the price is one more dout transform for each chunk but the last."""
    count = len(b.chunks)
    total = part = D2 = None
    for i in range(count):
        D2, Vt = b.dout_planes(i, 0), b.input_planes(i, 0)
        if total is None:
            total = D2 @ Vt
            group = -(-total.shape[0] // PART_GROUPS)
            continue
        if part is None:
            part = b.xp.empty((group,) + total.shape[1:], dtype=total.dtype)
        for a in range(0, total.shape[0], group):
            z = min(a + group, total.shape[0])
            total[a:z] += b.xp.matmul(D2[a:z], Vt[a:z], out=part[:z - a])
    del part  # before G^T . G makes dweight beside the total
    dweight = b.dweight(total)
    del total
    if b.need_dx:
        b.start_dx()
        for i in reversed(range(count)):
            b.dx_part(i, D2 if i == count - 1 else b.dout_planes(i, 0), 0)
        b.Ut = None
    return b.dx, dweight
