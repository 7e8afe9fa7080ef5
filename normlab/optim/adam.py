"""Adam and AdamW (decoupled weight decay), with AMSGrad."""

from __future__ import annotations

from typing import Any

from normlab import backend
from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.optim.optimizer import (Optimizer, _check_nonneg, _check_real, _kernel,
                                     _lazy_zeros)

__all__ = ["Adam", "AdamW"]


def _lerp_(a, b, w: float) -> None:
    """In place ``a = a + w * (b - a)``, with torch.lerp's two branches for accuracy."""
    if abs(w) < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


class Adam(Optimizer):
    r"""Adam, PyTorch 2.13's single-tensor algorithm.

    ``t += 1``; ``g = ±grad (+ weight_decay * p)``; ``m = lerp(m, g, 1 - beta1)``;
    ``v = beta2 * v + (1 - beta2) * g * g``; (AMSGrad: ``v_max = max(v_max, v)``, used
    for ``v``); ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.
    Note ``eps`` is added *after* the bias correction of ``sqrt(v)``, as in PyTorch.

    Parameters
    ----------
    params : list of ParamRef or of param-group dicts
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
        L2 penalty added to the gradient (coupled); AdamW decouples it.
    amsgrad : bool, default False
    maximize : bool, default False

    State
    -----
    ``step`` (int), ``exp_avg``, ``exp_avg_sq`` and, with AMSGrad, ``max_exp_avg_sq``.

    Raises
    ------
    ValueError
        On negative ``lr``, ``eps`` or ``weight_decay``, or betas outside ``[0, 1)``.
    TypeError
        If ``betas`` is not a pair of floats.
    """

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
                 *, maximize: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=bool(amsgrad), maximize=bool(maximize))
        super().__init__(params, defaults)

    def _check_hyper(self, hp: dict[str, Any]) -> None:
        owner = self._owner
        _check_nonneg(owner, hp, "lr", "eps", "weight_decay")
        betas = hp["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise NormlabTypeError(f"{owner}: expected betas to be a pair of floats, got {betas!r}.")
        hp["betas"] = tuple(betas)
        for j, b in enumerate(betas):
            _check_real(owner, {f"betas[{j}]": b}, f"betas[{j}]")
            if not 0.0 <= b < 1.0:
                raise NormlabValueError(
                    f"{owner}: expected betas[{j}] in [0, 1), got {b!r}. Typical values are "
                    "(0.9, 0.999)."
                )

    def _init_state(self, p, group: dict[str, Any]) -> dict[str, Any]:
        xp = backend.namespace(p)
        state = {"step": 0, "exp_avg": xp.zeros_like(p), "exp_avg_sq": xp.zeros_like(p)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = xp.zeros_like(p)
        return state

    def _update(self, p, g, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.namespace(p)
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # (AMSGrad may be switched on by load_state_dict: its maximum starts then)
        extra = (_lazy_zeros(state, "max_exp_avg_sq", p),) if group["amsgrad"] else ()
        impl = _kernel("adam_update", p, g, m, v, *extra, numbers=(lr, wd, eps, beta1, beta2))
        if impl is not None:  # one pass, the same bits (functional/compiled/numba_optim.py)
            impl(p, g, m, v, extra[0] if extra else None, lr=lr, betas=(beta1, beta2),
                 eps=eps, weight_decay=wd, step=t, decoupled=self._decoupled,
                 maximize=group["maximize"])
            return
        if group["maximize"]:
            g = -g
        if wd != 0:
            if self._decoupled:
                p *= 1 - lr * wd
            else:
                g = g + wd * p
        _lerp_(m, g, 1 - beta1)
        v *= beta2
        v += (1 - beta2) * g * g
        step_size = lr / (1 - beta1 ** t)
        bc2_sqrt = (1 - beta2 ** t) ** 0.5
        if group["amsgrad"]:
            vmax = extra[0]
            xp.maximum(vmax, v, out=vmax)
            denom = xp.sqrt(vmax) / bc2_sqrt + eps
        else:
            denom = xp.sqrt(v) / bc2_sqrt + eps
        p -= step_size * m / denom


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay ``p *= 1 - lr * weight_decay`` before the step.

    Same parameters, state and errors as :class:`Adam`, but ``weight_decay`` defaults to
    ``1e-2`` and is never added to the gradient (Loshchilov & Hutter, 2019).
    """

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 *, maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)
