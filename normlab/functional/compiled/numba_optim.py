"""Compiled (numba) optimizer updates: a whole step in one pass over each parameter
(SGD, Adam and AdamW, RMSprop, Adagrad).

The optimizers' ``_update`` spell each step as NumPy array operations, each a pass over
the parameter's size: SGD with momentum and weight decay ``p * wd``, ``+ g``, ``buf *=
mu``, ``buf += g``, ``g * lr``, ``p -= step`` (15 reads and writes of it), Adam about
twice as many. On ResNet-18's 11.2M parameters (64x64, batch 16, 1 thread) that made
SGD's step a memory-bound 24 ms, an eighth of the training step, and Adam's 60 ms
against PyTorch's 41. These kernels read the parameter, its gradient and its state once
and write the parameter and the state once, with the reference's operations in its order
per element, each rounded to the parameter's dtype as NumPy rounds it (no fused
multiply-add; the scalars converted to that dtype as NumPy converts a Python number): the
same bits as the reference, which the tests check per configuration.
"""

from __future__ import annotations

import numba
import numpy as np

from normlab.functional.compiled._threads import over_batch
from normlab.functional.compiled.numba_elementwise import _parallel_min
from normlab.functional.dispatch import register

__all__ = ["sgd_update", "adam_update", "rmsprop_update", "adagrad_update"]

PROVIDER = f"numba {numba.__version__}"
_jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")


@_jit
def _sgd(p, g, buf, lr, wd, mu, damp, maximize, decay, first, dampened, nesterov):
    """One SGD step on flat arrays (``SGD``'s docstring); ``buf`` None without momentum.
    The scalars come in ``p``'s dtype; the flags select the reference's branches."""
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if decay:
            d = p[i] * wd + d
        s = d
        if buf is not None:  # momentum
            if first:
                b = d
            elif dampened:
                b = buf[i] * mu + damp * d
            else:
                b = buf[i] * mu + d
            buf[i] = b
            s = d + mu * b if nesterov else b
        p[i] = p[i] - s * lr


_sgd_p = over_batch(_sgd, (0, 0, 0) + (None,) * 9, _parallel_min)


def sgd_update(p, g, buf, lr, weight_decay, momentum, dampening, *, maximize, nesterov,
               first):
    """``SGD._update``'s step in place on ``p`` and the momentum buffer ``buf`` (None
    without momentum; written whole when ``first``); C-contiguous arrays of one shape and
    float dtype. The hyperparameters are Python numbers, converted to ``p``'s dtype as
    NumPy converts a Python scalar in ``p * weight_decay``."""
    t = p.dtype.type
    _sgd_p(p.reshape(-1), g.reshape(-1), None if buf is None else buf.reshape(-1), t(lr),
           t(weight_decay), t(momentum), t(1 - dampening), bool(maximize), weight_decay != 0,
           bool(first), dampening != 0, bool(nesterov))


# The state that a setting does not store (AMSGrad's maximum, RMSprop's centered average
# and momentum buffer) is passed as None: numba compiles a loop per combination with the
# unused branches pruned. With runtime flags in one loop instead the compiler kept some
# settings' loops scalar (RMSprop, 2.36M float32 parameters: 2.35 -> 0.97 ms plain, 3.44
# -> 1.73 centered with momentum). The other flags only select values.
@_jit
def _adam(p, g, m, v, vmax, keep, wd, w, one_minus_w, beta2, one_minus_beta2, step_size,
          bc2, eps, maximize, coupled, decoupled, lerp_small):
    """One Adam / AdamW step on flat arrays (``optim.Adam._update``, op by op); ``vmax``
    None without AMSGrad."""
    for i in range(p.size):
        gi = -g[i] if maximize else g[i]
        pi = p[i]
        if coupled:  # g + wd * p, with the parameter before this step
            gi = gi + wd * pi
        if decoupled:  # p *= 1 - lr * wd
            pi = pi * keep
        mi = m[i]
        if lerp_small:  # _lerp_(m, g, w): torch.lerp's two branches
            mi = mi + w * (gi - mi)
        else:
            mi = gi - (gi - mi) * one_minus_w
        m[i] = mi
        vi = v[i] * beta2
        vi = vi + one_minus_beta2 * gi * gi
        v[i] = vi
        if vmax is not None:  # AMSGrad: maximum(vmax, v), NaN from either side
            a = vmax[i]
            vi = a if (a >= vi or a != a) else vi
            vmax[i] = vi
        denom = np.sqrt(vi) / bc2 + eps
        p[i] = pi - step_size * mi / denom


_adam_p = over_batch(_adam, (0, 0, 0, 0, 0) + (None,) * 13, _parallel_min)


def adam_update(p, g, m, v, vmax, *, lr, betas, eps, weight_decay, step, decoupled,
                maximize):
    """``Adam._update``'s step (after its ``step`` count went up) in place on ``p``, ``m``,
    ``v`` and ``vmax`` (AMSGrad's maximum; None without)."""
    t = p.dtype.type
    beta1, beta2 = betas
    w = 1 - beta1
    _adam_p(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
            None if vmax is None else vmax.reshape(-1), t(1 - lr * weight_decay),
            t(weight_decay), t(w), t(1 - w), t(beta2), t(1 - beta2),
            t(lr / (1 - beta1 ** step)), t((1 - beta2 ** step) ** 0.5), t(eps), bool(maximize),
            weight_decay != 0 and not decoupled, weight_decay != 0 and decoupled, abs(w) < 0.5)


@_jit
def _rmsprop(p, g, v, a, buf, lr, alpha, one_minus_alpha, w, one_minus_w, eps, wd, mu,
             maximize, decay, lerp_small):
    """One RMSprop step on flat arrays (``optim.RMSprop._update``, op by op); ``a`` None
    unless centered, ``buf`` None without momentum."""
    for i in range(p.size):
        gi = -g[i] if maximize else g[i]
        if decay:
            gi = gi + wd * p[i]
        vi = v[i] * alpha
        vi = vi + one_minus_alpha * gi * gi
        v[i] = vi
        if a is not None:  # centered
            ai = a[i]
            if lerp_small:
                ai = ai + w * (gi - ai)
            else:
                ai = gi - (gi - ai) * one_minus_w
            a[i] = ai
            avg = np.sqrt(vi + -ai * ai)  # v + (-1) * a * a
        else:
            avg = np.sqrt(vi)
        avg = avg + eps
        if buf is not None:  # momentum
            b = buf[i] * mu
            b = b + gi / avg
            buf[i] = b
            step = lr * b
        else:
            step = lr * gi / avg
        p[i] = p[i] - step


_rmsprop_p = over_batch(_rmsprop, (0, 0, 0, 0, 0) + (None,) * 11, _parallel_min)


def rmsprop_update(p, g, v, a, buf, *, lr, alpha, eps, weight_decay, momentum, maximize):
    """``RMSprop._update``'s step in place on ``p``, ``v``, ``a`` (the centered average;
    None when not centered) and ``buf`` (the momentum buffer; None without momentum)."""
    t = p.dtype.type
    w = 1 - alpha
    _rmsprop_p(p.reshape(-1), g.reshape(-1), v.reshape(-1),
               None if a is None else a.reshape(-1), None if buf is None else buf.reshape(-1),
               t(lr), t(alpha), t(1 - alpha), t(w), t(1 - w), t(eps), t(weight_decay),
               t(momentum), bool(maximize), weight_decay != 0, abs(w) < 0.5)


@_jit
def _adagrad(p, g, s, clr, wd, eps, maximize, decay):
    """One Adagrad step on flat arrays (``optim.Adagrad._update``, op by op)."""
    for i in range(p.size):
        gi = -g[i] if maximize else g[i]
        if decay:
            gi = gi + wd * p[i]
        si = s[i] + gi * gi
        s[i] = si
        p[i] = p[i] - clr * gi / (np.sqrt(si) + eps)


_adagrad_p = over_batch(_adagrad, (0, 0, 0) + (None,) * 5, _parallel_min)


def adagrad_update(p, g, s, *, clr, weight_decay, eps, maximize):
    """``Adagrad._update``'s step in place on ``p`` and the sum of squares ``s``; ``clr``
    the step's decayed learning rate (a Python number)."""
    t = p.dtype.type
    _adagrad_p(p.reshape(-1), g.reshape(-1), s.reshape(-1), t(clr), t(weight_decay), t(eps),
               bool(maximize), weight_decay != 0)


register("sgd_update", "numpy", sgd_update)
register("adam_update", "numpy", adam_update)
register("rmsprop_update", "numpy", rmsprop_update)
register("adagrad_update", "numpy", adagrad_update)
