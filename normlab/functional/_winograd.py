"""Winograd F(2x2, 3x3) convolution (Lavin & Gray 2016) for stride-1 3x3 kernels.

1D F(2, 3), for the cross-correlation ``y_i = d_i g_0 + d_{i+1} g_1 + d_{i+2} g_2``
(i = 0, 1) of a 4-sample input tile ``d`` with a 3-tap filter ``g``, uses four products::

    m0 = (d0 - d2) g0            m1 = (d1 + d2) (g0 + g1 + g2) / 2
    m3 = (d1 - d3) g2            m2 = (d2 - d1) (g0 - g1 + g2) / 2
    y0 = m0 + m1 + m2            y1 = m1 - m2 - m3

(expand: ``y0 = d0 g0 + d1 g1 + d2 g2``, ``y1 = d1 g0 + d2 g1 + d3 g2``), i.e.
``y = A^T [(G g) * (B^T d)]`` with::

    B^T = [[1, 0, -1, 0],   G = [[1,    0,   0 ],   A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],        [1/2,  1/2, 1/2],          [0, 1, -1, -1]]
           [0, -1, 1, 0],        [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]       [0,    0,   1 ]]

Nesting it gives 2D F(2x2, 3x3): ``Y = A^T [(G g G^T) * (B^T d B)] A`` for a 4x4 input
tile ``d`` and a 2x2 output tile ``Y``; 16 multiplications instead of 36. Over channels
the product ``*`` becomes, for each of the 16 tile positions ``k``, a matrix product
``M_k = U_k (F, C) @ V_k (C, tiles)``: 16 GEMMs with 4/9 of im2col's FLOPs, between an
input transform (adds and subtracts over strided views) and an output transform.

The weight gradient uses the transposed algorithm: the forward is bilinear,
``sum_k (A dY)_k (G g)_k (B^T d)_k``, so ``dg = G^T [(A dY A^T) * (B^T d B)] G`` summed
over tiles, i.e. 16 GEMMs ``dY_k (F, tiles) @ V_k^T (tiles, C)`` with the same input
transform ``V`` as the forward (this is F(3x3, 2x2)). The input gradient is the
adjoint of the forward (``_winograd_backward.py``, which runs both gradients for conv).

All arrays go through ``xp``; Python loops run over the 4 tile rows/columns only. The
batch is processed in cache-sized chunks (``_kernels.batch_chunks``), spread over
threads by ``_parallel.run``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from normlab import backend
from normlab.errors import NormlabValueError
from normlab.functional import _kernels, _parallel, dispatch
from normlab.functional._winograd_scratch import offset, planes, scratch, slot

__all__ = ["use_winograd", "use_tile", "tile_for", "chosen", "conv3x3", "weight_grad3x3"]

_mode = "auto"
_tile = "auto"

# Smallest channel counts (in and out) for which "auto" picks Winograd: below 16 the
# 16 GEMMs have an inner dimension too short for BLAS to beat the transforms' cost.
MIN_CHANNELS = 16

# Bytes of one chunk's input transform V (CPU). OpenBLAS's (F, C) @ (C, n*TH*TW) products
# slowed down 1.5-2.5x past about 800 columns on 32 channels (measured 1 thread, AVX-512).
CHUNK_BYTES = 2**20

# Smallest input channel count for which conv2d keeps the forward's input transforms for
# the weight gradient; None: never. On single layers (memory reused call after call)
# keeping them saved 1.3-1.7 ms of 16-17 on 32 and 64 channels, but in a whole training
# step their fresh pages cost as much: ResNet-20 b128 / ResNet-18 64x64 b16, 1 thread,
# 3 interleaved runs each (contended), step ratio to torch 1.39-1.43 / 1.22-1.24 keeping
# them from 32 channels, 1.34-1.40 / 1.18-1.21 keeping none; training working set 1.71 ->
# 1.27x and 2.74 -> 2.11x torch's.
REUSE_MIN_CHANNELS = None


def use_winograd(mode) -> object:
    """Winograd fast path: ``True`` wherever it applies, ``False`` never, ``"auto"`` (the
    default) where it applies and was measured faster. Returns the old setting."""
    global _mode
    if not (mode is True or mode is False or (isinstance(mode, str) and mode == "auto")):
        raise NormlabValueError(f"use_winograd: expected True, False or 'auto', got {mode!r}.")
    old, _mode = _mode, mode
    return old


# Smallest output height and width for which "auto" picks F(4x4, 3x3) (``_winograd4``).
# Measured (1 thread, batch 128, fwd+bwd): 16x32x32 -> 16 27.3 -> 19.6 ms and
# 32x16x16 -> 32 17.0 -> 13.9 ms with it.
F4_MIN_OUT = 16

# On outputs from ``F4_SMALL_OUT`` up to ``F4_MIN_OUT`` square, "auto" picks F(4x4) only
# with at least ``F4_MIN_TILES`` of its 4x4 tiles over the batch: each call transforms the
# weight into 36 planes (16 for F(2x2)), a cost only many tiles amortise. Measured (1
# thread, CPU time, best of 15, ms, F(2x2) -> F(4x4) forward / backward, batch x channels
# x 8x8, with the compiled weight transforms and the backward's shared V/dV buffer):
# 128 tiles: 32x64 1.9 -> 1.3 / 2.8 -> 2.2, 32x32 0.52 -> 0.42 / 0.92 -> 0.68, 32x128
# 4.3 -> 3.9 / 10.0 -> 8.6; 192: 48x64 2.0 -> 1.8 / 3.8 -> 2.9; but 64 tiles: 16x128 3.1 ->
# 2.9 / 5.6 -> 7.2, 16x256 8.5 -> 11.5 / 17.5 -> 22.9 (16x64 0.79 -> 0.84 / 1.5 -> 1.3).
# ResNet-20 b128, whole step: its 64-channel 8x8 convs took 5.75 / 10.8 ms against 7.05 /
# 13.5 with F(2x2).
F4_SMALL_OUT = 8
F4_MIN_TILES = 128


def use_tile(tile) -> object:
    """Winograd output tile: ``2`` (F(2x2, 3x3)), ``4`` (F(4x4, 3x3)) or ``"auto"`` (the
    default: 4 where the output is at least ``F4_MIN_OUT`` square, or ``F4_SMALL_OUT``
    square with ``F4_MIN_TILES`` tiles, see ``tile_for``). Returns the old setting."""
    global _tile
    if not (tile in (2, 4) and isinstance(tile, int) and not isinstance(tile, bool)
            or (isinstance(tile, str) and tile == "auto")):
        raise NormlabValueError(f"use_tile: expected 2, 4 or 'auto', got {tile!r}.")
    old, _tile = _tile, tile
    return old


def tile_for(OH: int, OW: int, N: int | None = None) -> int:
    """Output tile size (2 or 4) for a Winograd conv with output ``(OH, OW)`` over a batch
    of ``N`` (None: the batch is not considered, as for ``N`` too small)."""
    if _tile != "auto":
        return _tile
    side = min(OH, OW)
    many = N is not None and N * -(-OH // 4) * -(-OW // 4) >= F4_MIN_TILES
    return 4 if side >= F4_MIN_OUT or (side >= F4_SMALL_OUT and many) else 2


# Fewest output tiles (N * TH * TW over the batch) for which "auto" picks Winograd: each
# call transforms the whole weight (and the weight gradient back), a cost that only many
# tiles amortise. Measured (1 thread, CPU time, fwd+bwd vs im2col): 16x512x2x2 (16 tiles)
# 66 vs 12 ms, 16x256x4x4 (64) 17 vs 11, 8x128x8x8 (128) 4.9 vs 6.1, 16x128x8x8 (256)
# 7.4 vs 11.1.
MIN_TILES = 128


def chosen(C: int, F: int, kernel, stride, dilation, groups, tiles=None, gpu=False) -> bool:
    """Whether conv2d with these arguments runs through Winograd under the current mode;
    ``tiles``: the number of output tiles ``N * TH * TW`` (None: not considered); ``gpu``:
    the arrays are CuPy's, where "auto" never picks it: the transforms have no compiled
    kernel there and run as hundreds of tiny launches per conv, im2col as one cuBLAS
    product (H200, ResNet-20 b32 train step 504 ms with Winograd, 107-111 without)."""
    if _mode is False or tuple(kernel) != (3, 3) or tuple(stride) != (1, 1) \
            or tuple(dilation) != (1, 1) or groups != 1:
        return False
    if _mode is True:
        return True
    return not gpu and min(C, F) >= MIN_CHANNELS and (tiles is None or tiles >= MIN_TILES)


def compiled_into(op, a, shape):
    """The compiled kernel of ``op`` run on ``a`` into a new ``shape`` array of a's dtype
    (the weight transforms of both schemes), or ``None`` where none applies."""
    xp = backend.namespace(a)
    impl = dispatch.lookup(op, xp, a)
    if impl is None:
        return None
    out = xp.empty(shape, dtype=a.dtype)
    impl(a, out)
    return out


def _transform_weight(w):
    """``U = G w G^T`` per (f, c): (F, C, 3, 3) -> (16, F, C)."""
    xp = backend.namespace(w)
    F, C = w.shape[:2]
    U = compiled_into("winograd2_weight", w, (16, F, C))
    if U is not None:
        return U
    g0, g1, g2 = w[:, :, 0], w[:, :, 1], w[:, :, 2]  # rows, each (F, C, 3)
    # G along the kernel rows, then along the columns; 1/2 is exact in binary.
    rows = [g0, (g0 + g1 + g2) * 0.5, (g0 - g1 + g2) * 0.5, g2]
    U = xp.empty((4, 4, F, C), dtype=w.dtype)
    for a, r in enumerate(rows):
        c0, c1, c2 = r[..., 0], r[..., 1], r[..., 2]
        U[a, 0] = c0
        U[a, 1] = (c0 + c1 + c2) * 0.5
        U[a, 2] = (c0 - c1 + c2) * 0.5
        U[a, 3] = c2
    return U.reshape(16, F, C)


def _tile_pad(x, padding, TH, TW, m=2):
    """``x`` (n, C, H, W) zero-padded to (n, C, m TH + 2, m TW + 2) for output tiles of
    ``m``: ``padding`` before, the rest after. A negative padding crops instead (used by
    the transposed conv)."""
    xp = backend.namespace(x)
    n, C, H, W = x.shape
    ph, pw = padding
    out = xp.zeros((n, C, m * TH + 2, m * TW + 2), dtype=x.dtype)
    sh, sw = max(0, -ph), max(0, -pw)  # first source row/column used
    dh, dw = max(0, ph), max(0, pw)  # where it lands
    h = min(H - sh, out.shape[2] - dh)
    w = min(W - sw, out.shape[3] - dw)
    out[:, :, dh:dh + h, dw:dw + w] = x[:, :, sh:sh + h, sw:sw + w]
    return out


def _input_transform(x, padding, V):
    """``V[4a+b, n, c, th, tw] = (B^T d B)[a, b]`` of the tile at ``(2th, 2tw)`` of
    ``xt = _tile_pad(x, padding, TH, TW)``; ``V`` (16, n, C, TH, TW) is written in place."""
    TH, TW = V.shape[3:]
    impl = dispatch.lookup("winograd2_input", backend.namespace(x), x, V)
    if impl is not None:  # one pass, no padded copy, instead of 20 strided array operations
        impl(x, padding[0], padding[1], V)
        return
    xt = _tile_pad(x, padding, TH, TW)
    r = [xt[:, :, i:i + 2 * TH:2] for i in range(4)]  # tile row i: (n, C, TH, Wt)
    # B^T along rows on whole image rows (contiguous), then B along tile columns.
    t = [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]]
    xp = backend.namespace(xt)
    for a in range(4):
        c = [t[a][..., j:j + 2 * TW:2] for j in range(4)]  # (n, C, TH, TW)
        Va = V[4 * a:4 * a + 4]  # (4, n, C, TH, TW)
        xp.subtract(c[0], c[2], out=Va[0])
        xp.add(c[1], c[2], out=Va[1])
        xp.subtract(c[2], c[1], out=Va[2])
        xp.subtract(c[1], c[3], out=Va[3])


def _output_transform(M, out):
    """``out[n, f, 2th + i, 2tw + j] = (A^T M A)[i, j]``; ``M`` (16, n, F, TH, TW), ``out``
    (n, F, 2TH, 2TW) written in place."""
    xp = backend.namespace(M)
    impl = dispatch.lookup("winograd2_output", xp, M, out)
    if impl is not None:
        impl(M, out)
        return
    s = []
    for a in range(4):  # A along tile columns: s[a][j] (n, F, TH, TW)
        m0, m1, m2, m3 = M[4 * a], M[4 * a + 1], M[4 * a + 2], M[4 * a + 3]
        s0 = m0 + m1
        s0 += m2
        s1 = m1 - m2
        s1 -= m3
        s.append((s0, s1))
    for j in range(2):
        y0, y1 = out[:, :, 0::2, j::2], out[:, :, 1::2, j::2]  # (n, F, TH, TW)
        xp.add(s[0][j], s[1][j], out=y0)
        y0 += s[2][j]
        xp.subtract(s[1][j], s[2][j], out=y1)
        y1 -= s[3][j]


def _tiles(H, W, padding, m=2):
    """Output size and the number of ``m x m`` output tiles along each axis."""
    ph, pw = padding
    OH, OW = H + 2 * ph - 2, W + 2 * pw - 2
    return OH, OW, -(-OH // m), -(-OW // m)


def _chunks(x, C, TH, TW, k=16):
    """Batch chunks whose input transform (``k`` planes) stays near ``CHUNK_BYTES``."""
    return _kernels.batch_chunks(x, k * C * TH * TW * x.dtype.itemsize, CHUNK_BYTES)


class Scheme(NamedTuple):
    """One Winograd F(m x m, 3x3) algorithm: its tile size and its four transforms.

    ``transform_weight(w) -> U (k, F, C)``; ``input_transform(x, padding, V)``,
    ``output_transform(M, out)`` and ``dout_transform(d, D)`` write in place;
    ``weight_from_sum(M (k, F, C)) -> dw (F, C, 3, 3)`` applies ``G^T . G``. ``k`` is the
    number of tile positions ``(m + 2)^2``. The drivers below run any scheme.
    """

    m: int
    transform_weight: Callable
    input_transform: Callable
    output_transform: Callable
    dout_transform: Callable
    weight_from_sum: Callable

    @property
    def k(self) -> int:
        return (self.m + 2) ** 2


def run_conv3x3(s: Scheme, x, weight, padding, keep=False, out=None):
    """Stride-1 3x3 cross-correlation of ``x`` (N, C, H, W) with ``weight`` (F, C, 3, 3),
    zero padding ``(ph, pw)`` (negative crops), no bias -> (N, F, OH, OW), by scheme ``s``.

    With ``keep`` it returns ``(out, tiles)`` too: ``tiles`` is the list of ``(slice, V)``
    per batch chunk, the input transforms that ``run_weight_grad3x3`` needs again.
    ``out``: written into where it has the tiles' shape ``(N, F, m*TH, m*TW)``, even if it
    is ``x`` (each chunk's input is transformed first; ``conv._forward``).
    """
    xp = backend.namespace(x, weight)
    N, C, H, W = x.shape
    F = weight.shape[0]
    m, k = s.m, s.k
    OH, OW, TH, TW = _tiles(H, W, padding, m)
    U = s.transform_weight(weight)  # (k, F, C)
    if out is None or tuple(out.shape) != (N, F, m * TH, m * TW):
        out = xp.empty((N, F, m * TH, m * TW), dtype=x.dtype)
    chunks = _chunks(x, C, TH, TW, k)
    tiles = [None] * len(chunks)
    T = TH * TW
    threads = _parallel.threads_for(x, len(chunks))
    # kept: one buffer holding every chunk's V; else one V per thread, reused by its chunks
    Vbuf = scratch(xp, x.dtype, k, C * T, chunks, whole=keep, copies=threads)
    Mbuf = scratch(xp, x.dtype, k, F * T, chunks, copies=threads)

    def one(i, th):  # chunk i on thread th
        sl = chunks[i]
        n = sl.stop - sl.start
        # Channel-major V (k, C, n, TH, TW): one (F, C) @ (C, n*TH*TW) GEMM per tile
        # position, and the weight gradient's products get the inner dimension n*TH*TW.
        V = planes(Vbuf, k, (C, n, TH, TW),
                   offset(k, C * T, i, sl) if keep else slot(k, C * T, chunks, th))
        s.input_transform(x[sl], padding, V.transpose(0, 2, 1, 3, 4))
        M = xp.matmul(U, V.reshape(k, C, n * T),
                      out=planes(Mbuf, k, (F, n * T), slot(k, F * T, chunks, th)))
        s.output_transform(M.reshape(k, F, n, TH, TW).transpose(0, 2, 1, 3, 4), out[sl])
        tiles[i] = (sl, V)

    _parallel.run(len(chunks), one, threads)
    if (OH, OW) != (m * TH, m * TW):
        out = xp.ascontiguousarray(out[:, :, :OH, :OW])
    return (out, tiles) if keep else out


def run_weight_grad3x3(s: Scheme, x, dout, padding, tiles=None):
    """``dweight[f, c, i, j] = sum_{n, oh, ow} dout[n, f, oh, ow] xpad[n, c, oh + i, ow + j]``
    by the transposed algorithm F(3x3, m x m): x (N, C, H, W), dout (N, F, OH, OW) ->
    (F, C, 3, 3).

    ``tiles``: the forward's input transforms (``run_conv3x3(..., keep=True)``); computed
    here again when None.
    """
    xp = backend.namespace(x, dout)
    N, C, H, W = x.shape
    F = dout.shape[1]
    m, k = s.m, s.k
    OH, OW, TH, TW = _tiles(H, W, padding, m)
    if tiles is None:
        tiles = [(sl, None) for sl in _chunks(x, C, TH, TW, k)]
    chunks = [sl for sl, _ in tiles]
    T = TH * TW
    Vbuf = scratch(xp, x.dtype, k if tiles[0][1] is None else 0, C * T, chunks)
    Dbuf = scratch(xp, x.dtype, k, F * T, chunks)
    Msum = xp.zeros((k, F, C), dtype=x.dtype)
    for sl, V in tiles:
        n = sl.stop - sl.start
        if V is None:
            V = planes(Vbuf, k, (C, n, TH, TW))
            s.input_transform(x[sl], padding, V.transpose(0, 2, 1, 3, 4))
        D = planes(Dbuf, k, (F, n, TH, TW))
        d = dout[sl]
        if (OH, OW) != (m * TH, m * TW):  # zero-extend odd-sized dout to whole m x m blocks
            d = xp.zeros((n, F, m * TH, m * TW), dtype=x.dtype)
            d[:, :, :OH, :OW] = dout[sl]
        s.dout_transform(d, D.transpose(0, 2, 1, 3, 4))
        # one (F, n*T) @ (n*T, C) product per tile position: the chunk's sum is the GEMM's
        Msum += xp.matmul(D.reshape(k, F, -1), V.reshape(k, C, -1).swapaxes(-1, -2))
    return s.weight_from_sum(Msum)


def _dout_transform(d, D):
    """``D[4a+b, n, f, th, tw] = (A dY A^T)[a, b]`` of the 2x2 block at ``(2th, 2tw)``;
    ``d`` (n, F, 2TH, 2TW) zero-extended, ``D`` (16, n, F, TH, TW) written in place."""
    xp = backend.namespace(d)
    impl = dispatch.lookup("winograd2_dout", xp, d, D)
    if impl is not None:
        impl(d, D)
        return
    # A = [[1, 0], [1, 1], [1, -1], [0, -1]] along rows, then along columns.
    r0, r1 = d[:, :, 0::2], d[:, :, 1::2]  # (n, F, TH, 2TW)
    t = [r0, r0 + r1, r0 - r1, -r1]
    for a in range(4):
        c0, c1 = t[a][..., 0::2], t[a][..., 1::2]  # (n, F, TH, TW)
        Da = D[4 * a:4 * a + 4]  # (4, n, F, TH, TW)
        Da[0] = c0
        xp.add(c0, c1, out=Da[1])
        xp.subtract(c0, c1, out=Da[2])
        xp.negative(c1, out=Da[3])


def _weight_from_sum(Msum):
    """``dg = G^T M G`` per (f, c): (16, F, C) -> (F, C, 3, 3).

    G^T = [[1, 1/2, 1/2, 0], [0, 1/2, -1/2, 0], [0, 1/2, 1/2, 1]].
    """
    xp = backend.namespace(Msum)
    F, C = Msum.shape[1:]
    dw = compiled_into("winograd2_weight_grad", Msum, (F, C, 3, 3))
    if dw is not None:
        return dw
    M = Msum.reshape(4, 4, F, C)
    rows = [M[0] + (M[1] + M[2]) * 0.5, (M[1] - M[2]) * 0.5, (M[1] + M[2]) * 0.5 + M[3]]
    dw = xp.empty((F, C, 3, 3), dtype=Msum.dtype)
    for i, r in enumerate(rows):  # r (4, F, C) over the column index
        dw[:, :, i, 0] = r[0] + (r[1] + r[2]) * 0.5
        dw[:, :, i, 1] = (r[1] - r[2]) * 0.5
        dw[:, :, i, 2] = (r[1] + r[2]) * 0.5 + r[3]
    return dw


F2 = Scheme(2, _transform_weight, _input_transform, _output_transform, _dout_transform,
            _weight_from_sum)


def conv3x3(x, weight, padding, keep=False, out=None):
    """F(2x2, 3x3) ``run_conv3x3``: stride-1 3x3 correlation, (N, C, H, W) -> (N, F, OH, OW)."""
    return run_conv3x3(F2, x, weight, padding, keep, out)


def weight_grad3x3(x, dout, padding, tiles=None):
    """F(3x3, 2x2) ``run_weight_grad3x3``: gradient w.r.t. the weight, (F, C, 3, 3)."""
    return run_weight_grad3x3(F2, x, dout, padding, tiles)
