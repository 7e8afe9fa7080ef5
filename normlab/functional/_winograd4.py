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
gradients (``_winograd_backward.py``) follow ``_winograd.py``.
"""

from __future__ import annotations

from normlab import backend
from normlab.functional import _winograd, dispatch

__all__ = ["conv3x3", "weight_grad3x3"]

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


def _transform_weight(w):
    """``U = G w G^T`` per (f, c): (F, C, 3, 3) -> (36, F, C)."""
    xp = backend.namespace(w)
    F, C = w.shape[:2]
    U = _winograd.compiled_into("winograd4_weight", w, (36, F, C))
    if U is not None:
        return U
    rows = [_lin(g, [w[:, :, i] for i in range(3)]) for g in G]  # each (F, C, 3)
    U = xp.empty((6, 6, F, C), dtype=w.dtype)
    for a, r in enumerate(rows):
        for b, g in enumerate(G):
            U[a, b] = _lin(g, [r[..., j] for j in range(3)])
    return U.reshape(36, F, C)


def _tile_pad(x, padding, TH, TW):
    """``x`` (n, C, H, W) zero-padded (or cropped) to (n, C, 4TH + 2, 4TW + 2)."""
    return _winograd._tile_pad(x, padding, TH, TW, 4)


def _input_transform(x, padding, V):
    """``V[6a+b, n, c, th, tw] = (B^T d B)[a, b]`` of the 6x6 tile at ``(4th, 4tw)`` of
    ``xt = _tile_pad(x, padding, TH, TW)``; ``V`` (36, n, C, TH, TW), possibly a
    transposed view, written in place."""
    impl = dispatch.lookup("winograd4_input", backend.namespace(x), x, V)
    if impl is not None:
        impl(x, padding[0], padding[1], V)
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
    impl = dispatch.lookup("winograd4_output", backend.namespace(M), M, out)
    if impl is not None:
        impl(M, out)
        return
    s = [[_lin(AT[j], [M[6 * a + b] for b in range(6)]) for j in range(4)] for a in range(6)]
    for i in range(4):
        for j in range(4):
            out[:, :, i::4, j::4] = _lin(AT[i], [s[a][j] for a in range(6)])


def _dout_transform(d, D):
    """``D[6a+b, n, f, th, tw] = (A dY A^T)[a, b]`` of the 4x4 block at ``(4th, 4tw)``;
    ``d`` (n, F, 4TH, 4TW) zero-extended, ``D`` (36, n, F, TH, TW) written in place."""
    impl = dispatch.lookup("winograd4_dout", backend.namespace(d), d, D)
    if impl is not None:
        impl(d, D)
        return
    A = list(zip(*AT))  # (6, 4)
    r = [d[:, :, i::4] for i in range(4)]  # (n, F, TH, 4TW)
    for a in range(6):
        t = _lin(A[a], r)
        c = [t[..., j::4] for j in range(4)]
        for b in range(6):
            D[6 * a + b] = _lin(A[b], c)


def _weight_from_sum(Msum):
    """``dg = G^T M G`` per (f, c): (36, F, C) -> (F, C, 3, 3)."""
    xp = backend.namespace(Msum)
    F, C = Msum.shape[1:]
    dw = _winograd.compiled_into("winograd4_weight_grad", Msum, (F, C, 3, 3))
    if dw is not None:
        return dw
    M = Msum.reshape(6, 6, F, C)
    rows = [_lin([g[i] for g in G], [M[a] for a in range(6)]) for i in range(3)]  # (6, F, C)
    dw = xp.empty((F, C, 3, 3), dtype=Msum.dtype)
    for i, r in enumerate(rows):
        for j in range(3):
            dw[:, :, i, j] = _lin([g[j] for g in G], [r[b] for b in range(6)])
    return dw


F4 = _winograd.Scheme(4, _transform_weight, _input_transform, _output_transform,
                      _dout_transform, _weight_from_sum)


def conv3x3(x, weight, padding, keep=False, out=None):
    """F(4x4, 3x3) ``_winograd.run_conv3x3`` (same arguments; ``keep`` returns the
    (slice, V (36, C, n, TH, TW)) list too)."""
    return _winograd.run_conv3x3(F4, x, weight, padding, keep, out)


def weight_grad3x3(x, dout, padding, tiles=None):
    """``dweight`` (F, C, 3, 3) by F(3x3, 4x4); ``tiles`` from ``conv3x3(..., keep=True)``
    or None (recomputed)."""
    return _winograd.run_weight_grad3x3(F4, x, dout, padding, tiles)
