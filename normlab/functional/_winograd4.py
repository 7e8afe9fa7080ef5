"""Winograd F(4x4, 3x3) (Lavin & Gray 2016) for stride-1 3x3 convs with many channels.

1D F(4, 3) computes the 4 outputs ``y_i = sum_k d_{i+k} g_k`` of a 6-sample tile ``d``
with 6 products: evaluate the filter polynomial ``g(x) = g0 + g1 x + g2 x^2`` and the
data polynomial at the points 0, 1, -1, 2, -2 and infinity, multiply pointwise, and
interpolate back (Toom-Cook). ``y = A^T [(G g) * (B^T d)]`` with::

    B^T = [[4,  0, -5,  0, 1, 0],    G = [[ 1/4,     0,    0],    A^T = [[1, 1,  1, 1,  1, 0],
           [0, -4, -4,  1, 1, 0],         [-1/6,  -1/6, -1/6],           [0, 1, -1, 2, -2, 0],
           [0,  4, -4, -1, 1, 0],         [-1/6,   1/6, -1/6],           [0, 1,  1, 4,  4, 0],
           [0, -2, -1,  2, 1, 0],         [1/24,  1/12,  1/6],           [0, 1, -1, 8, -8, 1]]
           [0,  2, -1, -2, 1, 0],         [1/24, -1/12,  1/6],
           [0,  4,  0, -5, 0, 1]]         [   0,     0,    1]]

Row ``k`` of ``A^T`` holds the points' k-th powers (infinity contributes only to the
leading coefficient); row ``i`` of ``G`` is ``(1, p_i, p_i^2)`` over
``prod_{j != i} (p_i - p_j)`` (Lagrange); row ``i`` of ``B^T`` holds the coefficients of
``prod_{j != i} (x - p_j)`` and the last one those of ``prod_j (x - p_j)``.

2D: ``Y = A^T [(G g G^T) * (B^T d B)] A`` on 6x6 input tiles, 4x4 output tiles: 36
products per 16 outputs (144 for direct), i.e. 36 GEMMs ``U_k (F, C) @ V_k (C, tiles)``
with a quarter of im2col's FLOPs (F(2x2, 3x3): 4/9), and input/output transforms 2.25x
(F(2x2): 4x) the size of the activations. The weight gradient is the transposed algorithm
F(3x3, 4x4): ``dg = G^T [sum_tiles (A dY A^T) * (B^T d B)] G`` with the forward's ``V``.
The cost is float32 accuracy: the larger constants amplify rounding (measured in
``tests/functional/test_conv_winograd4.py``). Layout, chunking, ``keep`` and the
transposed conv for dx follow ``_winograd.py``.
"""

from __future__ import annotations

from normlab import backend
from normlab.functional import _kernels, _winograd
from normlab.functional._winograd import _offset, planes, scratch

__all__ = ["conv3x3", "conv3x3_transpose", "weight_grad3x3"]

BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
      (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
     (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))


def _lin(coefs, arrays):
    """``sum_k coefs[k] * arrays[k]`` over the nonzero coefficients (a new array)."""
    out = None
    for c, a in zip(coefs, arrays):
        if c == 0:
            continue
        term = a if c == 1 else (-a if c == -1 else a * float(c))
        out = term.copy() if out is None and term is a else (term if out is None else out + term)
    return out


def _numba():
    nb = _kernels.compiled()
    if nb is None:
        return None
    from normlab.functional import _numba_winograd4  # noqa: PLC0415 (optional, slow import)
    return _numba_winograd4


def _transform_weight(w):
    """``U = G w G^T`` per (f, c): (F, C, 3, 3) -> (36, F, C)."""
    xp = backend.namespace(w)
    F, C = w.shape[:2]
    rows = [_lin(g, [w[:, :, i] for i in range(3)]) for g in G]  # each (F, C, 3)
    U = xp.empty((6, 6, F, C), dtype=w.dtype)
    for a, r in enumerate(rows):
        for b, g in enumerate(G):
            U[a, b] = _lin(g, [r[..., j] for j in range(3)])
    return U.reshape(36, F, C)


def _tile_pad(x, padding, TH, TW):
    """``x`` (n, C, H, W) zero-padded (or cropped) to (n, C, 4TH + 2, 4TW + 2)."""
    xp = backend.namespace(x)
    n, C, H, W = x.shape
    ph, pw = padding
    out = xp.zeros((n, C, 4 * TH + 2, 4 * TW + 2), dtype=x.dtype)
    sh, sw = max(0, -ph), max(0, -pw)
    dh, dw = max(0, ph), max(0, pw)
    h = min(H - sh, out.shape[2] - dh)
    w = min(W - sw, out.shape[3] - dw)
    out[:, :, dh:dh + h, dw:dw + w] = x[:, :, sh:sh + h, sw:sw + w]
    return out


def _input_transform(x, padding, V):
    """``V[6a+b, n, c, th, tw] = (B^T d B)[a, b]`` of the 6x6 tile at ``(4th, 4tw)`` of
    ``xt = _tile_pad(x, padding, TH, TW)``; ``V`` (36, n, C, TH, TW), possibly a
    transposed view, written in place."""
    nb = _numba()
    if nb is not None and not backend.is_cupy_array(x):
        nb.input_transform(x, padding[0], padding[1], V)
        return
    xt = _tile_pad(x, padding, *V.shape[3:])
    TH, TW = V.shape[3:]
    r = [xt[:, :, i:i + 4 * TH:4] for i in range(6)]  # tile row i: (n, C, TH, Wt)
    for a in range(6):
        t = _lin(BT[a], r)
        c = [t[..., j:j + 4 * TW:4] for j in range(6)]  # (n, C, TH, TW)
        for b in range(6):
            V[6 * a + b] = _lin(BT[b], c)


def _output_transform(M, out):
    """``out[n, f, 4th + i, 4tw + j] = (A^T M A)[i, j]``; ``M`` (36, n, F, TH, TW)."""
    nb = _numba()
    if nb is not None and not backend.is_cupy_array(M):
        nb.output_transform(M, out)
        return
    s = [[_lin(AT[j], [M[6 * a + b] for b in range(6)]) for j in range(4)] for a in range(6)]
    for i in range(4):
        for j in range(4):
            out[:, :, i::4, j::4] = _lin(AT[i], [s[a][j] for a in range(6)])


def _dout_transform(d, D):
    """``D[6a+b, n, f, th, tw] = (A dY A^T)[a, b]`` of the 4x4 block at ``(4th, 4tw)``;
    ``d`` (n, F, 4TH, 4TW) zero-extended, ``D`` (36, n, F, TH, TW) written in place."""
    nb = _numba()
    if nb is not None and not backend.is_cupy_array(d):
        nb.dout_transform(d, D)
        return
    A = list(zip(*AT))  # (6, 4)
    r = [d[:, :, i::4] for i in range(4)]  # (n, F, TH, 4TW)
    for a in range(6):
        t = _lin(A[a], r)
        c = [t[..., j::4] for j in range(4)]
        for b in range(6):
            D[6 * a + b] = _lin(A[b], c)


def _tiles(H, W, padding):
    ph, pw = padding
    OH, OW = H + 2 * ph - 2, W + 2 * pw - 2
    return OH, OW, -(-OH // 4), -(-OW // 4)


def _chunks(x, C, TH, TW):
    return _kernels.batch_chunks(x, 36 * C * TH * TW * x.dtype.itemsize, _winograd.CHUNK_BYTES)


def conv3x3(x, weight, padding, keep=False):
    """Stride-1 3x3 cross-correlation by F(4x4, 3x3): as ``_winograd.conv3x3`` (same
    arguments, ``keep`` returns the (slice, V (36, C, n, TH, TW)) list too)."""
    xp = backend.namespace(x, weight)
    N, C, H, W = x.shape
    F = weight.shape[0]
    OH, OW, TH, TW = _tiles(H, W, padding)
    U = _transform_weight(weight)  # (36, F, C)
    out = xp.empty((N, F, 4 * TH, 4 * TW), dtype=x.dtype)
    tiles = []
    chunks = _chunks(x, C, TH, TW)
    T = TH * TW
    Vbuf = scratch(xp, x.dtype, 36, C * T, chunks, whole=keep)
    Mbuf = scratch(xp, x.dtype, 36, F * T, chunks)
    for i, sl in enumerate(chunks):
        n = sl.stop - sl.start
        V = planes(Vbuf, 36, (C, n, TH, TW), _offset(36, C * T, i, sl) if keep else 0)
        _input_transform(x[sl], padding, V.transpose(0, 2, 1, 3, 4))
        M = xp.matmul(U, V.reshape(36, C, n * T), out=planes(Mbuf, 36, (F, n * T)))
        _output_transform(M.reshape(36, F, n, TH, TW).transpose(0, 2, 1, 3, 4), out[sl])
        if keep:
            tiles.append((sl, V))
    if (OH, OW) != (4 * TH, 4 * TW):
        out = xp.ascontiguousarray(out[:, :, :OH, :OW])
    return (out, tiles) if keep else out


def conv3x3_transpose(dout, weight, padding):
    """Gradient w.r.t. the input of ``conv3x3(x, weight, padding)`` (see ``_winograd``)."""
    ph, pw = padding
    wt = weight[:, :, ::-1, ::-1].swapaxes(0, 1)
    return conv3x3(dout, wt, (2 - ph, 2 - pw))


def weight_grad3x3(x, dout, padding, tiles=None):
    """``dweight`` (F, C, 3, 3) by F(3x3, 4x4); ``tiles`` from ``conv3x3(..., keep=True)``
    or None (recomputed)."""
    xp = backend.namespace(x, dout)
    N, C, H, W = x.shape
    F = dout.shape[1]
    OH, OW, TH, TW = _tiles(H, W, padding)
    if tiles is None:
        tiles = [(sl, None) for sl in _chunks(x, C, TH, TW)]
    chunks = [sl for sl, _ in tiles]
    T = TH * TW
    Vbuf = scratch(xp, x.dtype, 36 if tiles[0][1] is None else 0, C * T, chunks)
    Dbuf = scratch(xp, x.dtype, 36, F * T, chunks)
    Msum = xp.zeros((36, F, C), dtype=x.dtype)
    for sl, V in tiles:
        n = sl.stop - sl.start
        if V is None:
            V = planes(Vbuf, 36, (C, n, TH, TW))
            _input_transform(x[sl], padding, V.transpose(0, 2, 1, 3, 4))
        D = planes(Dbuf, 36, (F, n, TH, TW))
        d = dout[sl]
        if (OH, OW) != (4 * TH, 4 * TW):  # zero-extend to whole 4x4 blocks
            d = xp.zeros((n, F, 4 * TH, 4 * TW), dtype=x.dtype)
            d[:, :, :OH, :OW] = dout[sl]
        _dout_transform(d, D.transpose(0, 2, 1, 3, 4))
        Msum += xp.matmul(D.reshape(36, F, -1), V.reshape(36, C, -1).swapaxes(-1, -2))
    # dg = G^T M G
    M = Msum.reshape(6, 6, F, C)
    rows = [_lin([g[i] for g in G], [M[a] for a in range(6)]) for i in range(3)]  # (6, F, C)
    dw = xp.empty((F, C, 3, 3), dtype=x.dtype)
    for i, r in enumerate(rows):
        for j in range(3):
            dw[:, :, i, j] = _lin([g[j] for g in G], [r[b] for b in range(6)])
    return dw
