"""Compiled (numba) elementwise activations: one pass each, see ``activation.py``.

NumPy's ``where(mask, dout, 0)`` on a ~50 % random mask (ReLU's backward) runs a
data-dependent branch per element that the CPU mispredicts half the time: 79 ms of
ResNet-20's ~380 ms step (batch 128, 1 thread). These loops compute the same values with
selects the compiler turns into branch-free vector code (ReLU backward 8.8 -> 1.9 ms on a
128x16x32x32 float32 array, leaky ReLU forward 11 -> 3.4, sigmoid forward 20 -> 11; CPU
time, 1 thread; sigmoid: see ``sigmoid_forward``). Same semantics as the reference, NaN included: the backward keeps a NaN
gradient where the mask is set and gives 0 where it is not. ReLU's forward is NumPy's
``maximum`` on one thread (branch-free already; a compiled loop measured no faster) and a
compiled loop over the blocks on more (``maximum`` is serial: at 2 threads ResNet-20's
ReLU forwards took 19.5 ms of a step, as on one).

The arrays are cut into blocks spread over numba's threads (``prange``); the count follows
``normlab.set_num_threads``. A smaller array (under ``_parallel.MIN_ELEMENTS``; sigmoid's:
one block or less), or any array on one numba thread, runs the same block loop serially
(``*_one``): the parallel launch alone cost ~100 us. Call sites pass C-contiguous float
arrays of one shape (``activation._flat_pair``) and run the reference code otherwise.
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional import _parallel
from normlab.functional.compiled import _threads  # noqa: F401 (threading layer first)
from normlab.functional.dispatch import register

__all__ = ["bn_eval_affine", "relu_forward", "relu_backward", "leaky_relu_forward",
           "leaky_relu_backward", "sigmoid_forward", "sigmoid_backward"]

PROVIDER = f"numba {numba.__version__}"
_pjit = numba.njit(cache=True, nogil=True, fastmath=False, parallel=True)

# (the zero is passed in the data's dtype: a literal 0 would make the select float64)

# elements per parallel block: large enough that a block's start-up cost vanishes
BLOCK = 1 << 15

def _parallel_pays(n: int, least: int | None = None) -> bool:
    """Whether an ``n``-element pass runs the prange kernel: at least ``least`` elements
    and more than one numba thread (on one thread the prange launch and per-block
    scheduling still cost: sigmoid's select on 1.2M float32 0.96 ms vs 0.53 serial).
    ``least`` defaults to ``_parallel.MIN_ELEMENTS`` (the memory-bound kernels: the
    selects, ReLU, the channel affine); sigmoid's, an exp per element, pay from BLOCK on."""
    return n >= (_parallel.MIN_ELEMENTS if least is None else least) and \
        numba.get_num_threads() > 1


_ijit = numba.njit(cache=True, nogil=True, fastmath=False, inline="always")


# Each kernel is a serial loop over one block (inlined) run by a prange over the blocks:
# written as one prange loop with the block bounds inside, the same select measured
# 2.7x slower on one thread (its inner loop no longer vectorised).
@_ijit
def _select_block(out, dout, dx, zero):
    for i in range(dout.size):
        dx[i] = dout[i] if out[i] > zero else zero


@_ijit
def _relu_block(x, out, zero):
    for i in range(x.size):
        v = x[i]
        out[i] = v if v > zero or v != v else zero  # as maximum(x, 0): NaN kept, -0.0 -> 0


@_ijit
def _select_scaled_block(positive, a, slope, out):
    for i in range(a.size):
        v = a[i]
        out[i] = v if positive[i] else v * slope


@_ijit
def _positive_block(x, positive):
    for i in range(x.size):
        positive[i] = x[i] > 0


@_ijit
def _sigmoid_block(x, e, out, one):
    for i in range(x.size):
        d = one + e[i]
        out[i] = one / d if x[i] >= 0 else e[i] / d


@_ijit
def _neg_abs_block(x, e):
    for i in range(x.size):
        e[i] = -abs(x[i])  # np.negative(np.abs(x)): the same bits, NaN's sign included


@_ijit
def _sigmoid_grad_block(s, dout, dx, one):
    for i in range(dout.size):
        dx[i] = dout[i] * (one - s[i]) * s[i]


@_pjit
def _sigmoid_grad(s, dout, dx, one):
    n = dout.size
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)
        _sigmoid_grad_block(s[lo:hi], dout[lo:hi], dx[lo:hi], one)


@_pjit
def _select(out, dout, dx, zero):
    n = dout.size
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)
        _select_block(out[lo:hi], dout[lo:hi], dx[lo:hi], zero)


@_pjit
def _relu(x, out, zero):
    n = x.size
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)
        _relu_block(x[lo:hi], out[lo:hi], zero)


@_pjit
def _select_scaled(positive, a, slope, out):
    n = a.size
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)
        _select_scaled_block(positive[lo:hi], a[lo:hi], slope, out[lo:hi])


@_pjit
def _positive(x, positive):
    n = x.size
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)
        _positive_block(x[lo:hi], positive[lo:hi])


@_pjit
def _sigmoid(x, e, out, one):
    n = x.size
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)
        _sigmoid_block(x[lo:hi], e[lo:hi], out[lo:hi], one)


# Small arrays (see _parallel_pays): the same block loop without the parallel launch,
# which cost ~100 us per call (ReLU backward on 100x100 floats: 128 us vs NumPy's 32).
_sjit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")


@_sjit
def _select_one(out, dout, dx, zero):
    _select_block(out, dout, dx, zero)


@_sjit
def _select_scaled_one(positive, a, slope, out):
    _select_scaled_block(positive, a, slope, out)


@_sjit
def _positive_one(x, positive):
    _positive_block(x, positive)


@_sjit
def _neg_abs_one(x, e):
    _neg_abs_block(x, e)


@_sjit
def _sigmoid_one(x, e, out, one):
    _sigmoid_block(x, e, out, one)


@_sjit
def _sigmoid_grad_one(s, dout, dx, one):
    _sigmoid_grad_block(s, dout, dx, one)


@_ijit
def _affine_row(x, m, s, t, out):
    for b in range(x.size):
        out[b] = (x[b] - m) * s + t


@_pjit
def _channel_affine(x, mean, scale, shift, out):  # (A, C, B) views, (C,) vectors
    A, C, B = x.shape
    for r in numba.prange(A * C):
        a, c = r // C, r % C
        _affine_row(x[a, c], mean[c], scale[c], shift[c], out[a, c])


@_sjit
def _channel_affine_one(x, mean, scale, shift, out):  # small arrays: no parallel launch
    A, C, B = x.shape
    for r in range(A * C):
        a, c = r // C, r % C
        _affine_row(x[a, c], mean[c], scale[c], shift[c], out[a, c])


def bn_eval_affine(x, mean, scale, beta):
    """``(x - mean) * scale + beta`` per channel of a C-contiguous (N, C, *) array, one pass
    (batch norm in eval mode); ``mean``, ``scale`` (keepdims) and ``beta`` in x's dtype."""
    A, C = x.shape[0], x.shape[1]
    xv = x.reshape(A, C, -1)
    shift = np.zeros(C, x.dtype) if beta is None else np.ascontiguousarray(beta, x.dtype)
    out = np.empty_like(x)
    affine = _channel_affine if _parallel_pays(x.size) else _channel_affine_one
    affine(xv, np.ascontiguousarray(mean.reshape(C)), np.ascontiguousarray(scale.reshape(C)),
           shift, out.reshape(xv.shape))
    return out


def relu_forward(x):
    """``maximum(x, 0)`` on numba's threads; NumPy's own (serial, as fast on one thread)
    on one thread or under ``_parallel.MIN_ELEMENTS`` elements."""
    if not _parallel_pays(x.size):
        return np.maximum(x, 0)
    out = np.empty_like(x)
    _relu(x.reshape(-1), out.reshape(-1), x.dtype.type(0))
    return out


def relu_backward(out, dout):
    """``where(out > 0, dout, 0)`` (``out``: ReLU's output, of dout's dtype)."""
    dx = np.empty_like(dout)
    select = _select if _parallel_pays(dout.size) else _select_one
    select(out.reshape(-1), dout.reshape(-1), dx.reshape(-1), dout.dtype.type(0))
    return dx


def leaky_relu_forward(x, slope):
    """``(where(x > 0, x, x * slope), x > 0)``."""
    positive = np.empty(x.shape, dtype=np.bool_)
    one = not _parallel_pays(x.size)
    (_positive_one if one else _positive)(x.reshape(-1), positive.reshape(-1))
    out = np.empty_like(x)
    (_select_scaled_one if one else _select_scaled)(positive.reshape(-1), x.reshape(-1),
                                                    x.dtype.type(slope), out.reshape(-1))
    return out, positive


def leaky_relu_backward(positive, dout, slope):
    """``where(positive, dout, dout * slope)``."""
    dx = np.empty_like(dout)
    select = _select_scaled if _parallel_pays(dout.size) else _select_scaled_one
    select(positive.reshape(-1), dout.reshape(-1), dout.dtype.type(slope), dx.reshape(-1))
    return dx


def sigmoid_forward(x):
    """``1 / (1 + exp(-x))`` by the same two stable branches as the reference, and the
    same ``exp``: NumPy's vectorised one (numba's scalar ``expf`` in the loop measured
    4-5x slower than PyTorch's sigmoid); one loop makes ``-|x|`` before it (NumPy's
    abs then negative: 0.59 -> 0.35 ms on 256x6x28x28 float32), one fuses the rest into
    a select."""
    e = np.empty_like(x)
    # serial at any thread count: in a model pass a second prange launch per call cost
    # more than it saved (LeNet's 256x16x10x10 sigmoid, 2 threads: 0.75 -> 1.27 ms)
    _neg_abs_one(x.reshape(-1), e.reshape(-1))
    np.exp(e, out=e)
    out = np.empty_like(x)  # (written over e instead, the select measured 1.8x slower)
    sigmoid = _sigmoid if _parallel_pays(x.size, BLOCK + 1) else _sigmoid_one
    sigmoid(x.reshape(-1), e.reshape(-1), out.reshape(-1), x.dtype.type(1))
    return out


def sigmoid_backward(s, dout):
    """``dout * (1 - s) * s`` in one pass, the reference's operations in its order
    (``s``: the forward's output, of dout's dtype)."""
    dx = np.empty_like(dout)
    (_sigmoid_grad if _parallel_pays(dout.size, BLOCK + 1) else _sigmoid_grad_one)(
        s.reshape(-1), dout.reshape(-1), dx.reshape(-1), dout.dtype.type(1))
    return dx


register("relu_forward", "numpy", relu_forward)
register("relu_backward", "numpy", relu_backward)
register("bn_eval_affine", "numpy", bn_eval_affine)
register("leaky_relu_forward", "numpy", leaky_relu_forward)
register("leaky_relu_backward", "numpy", leaky_relu_backward)
register("sigmoid_forward", "numpy", sigmoid_forward)
register("sigmoid_backward", "numpy", sigmoid_backward)
