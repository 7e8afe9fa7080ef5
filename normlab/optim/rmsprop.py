"""RMSprop (optionally centered, with momentum) and Adagrad."""

from __future__ import annotations

from typing import Any

from normlab import backend
from normlab.errors import NormlabValueError
from normlab.optim.adam import _lerp_
from normlab.optim.optimizer import Optimizer, _check_nonneg, _kernel, _lazy_zeros

__all__ = ["RMSprop", "Adagrad"]


class RMSprop(Optimizer):
    r"""RMSprop, PyTorch 2.13's single-tensor algorithm.

    ``g = ±grad + weight_decay * p``; ``v = alpha * v + (1 - alpha) * g * g``;
    centered: ``a = lerp(a, g, 1 - alpha)``, ``d = sqrt(v - a * a) + eps``, else
    ``d = sqrt(v) + eps``; momentum ``mu > 0``: ``b = mu * b + g / d``, ``p -= lr * b``;
    otherwise ``p -= lr * g / d``.

    Parameters
    ----------
    params : list of ParamRef or of param-group dicts
    lr : float, default 1e-2
    alpha : float, default 0.99
        Smoothing constant of the squared-gradient average.
    eps : float, default 1e-8
    weight_decay, momentum : float, default 0
    centered : bool, default False
    maximize : bool, default False

    State
    -----
    ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered).

    Raises
    ------
    ValueError
        On a negative ``lr``, ``eps``, ``momentum``, ``weight_decay`` or ``alpha``.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 *, maximize: bool = False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=bool(centered), maximize=bool(maximize))
        super().__init__(params, defaults)

    def _check_hyper(self, hp: dict[str, Any]) -> None:
        _check_nonneg("RMSprop", hp, "lr", "eps", "momentum", "weight_decay", "alpha")
        if hp["alpha"] > 1:
            raise NormlabValueError(
                f"RMSprop: expected alpha in [0, 1] (the smoothing weight of the old average), "
                f"got alpha={hp['alpha']!r}."
            )

    def _init_state(self, p, group: dict[str, Any]) -> dict[str, Any]:
        xp = backend.namespace(p)
        state = {"step": 0, "square_avg": xp.zeros_like(p)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = xp.zeros_like(p)
        if group["centered"]:
            state["grad_avg"] = xp.zeros_like(p)
        return state

    def _update(self, p, g, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.namespace(p)
        lr, alpha, wd, mu = group["lr"], group["alpha"], group["weight_decay"], group["momentum"]
        state["step"] += 1
        v = state["square_avg"]
        # OneCycleLR may switch momentum on after the first step: the buffer starts then
        a = _lazy_zeros(state, "grad_avg", p) if group["centered"] else None
        buf = _lazy_zeros(state, "momentum_buffer", p) if mu > 0 else None
        extra = tuple(x for x in (a, buf) if x is not None)
        impl = _kernel("rmsprop_update", p, g, v, *extra,
                       numbers=(lr, alpha, wd, mu, group["eps"]))
        if impl is not None:  # one pass, the same bits (functional/compiled/numba_optim.py)
            impl(p, g, v, a, buf, lr=lr, alpha=alpha, eps=group["eps"], weight_decay=wd,
                 momentum=mu, maximize=group["maximize"])
            return
        if group["maximize"]:
            g = -g
        if wd != 0:
            g = g + wd * p
        v *= alpha
        v += (1 - alpha) * g * g
        if group["centered"]:
            _lerp_(a, g, 1 - alpha)
            avg = xp.sqrt(v + (-1) * a * a)
        else:
            avg = xp.sqrt(v)
        avg += group["eps"]
        if mu > 0:
            buf *= mu
            buf += g / avg
            p -= lr * buf
        else:
            p -= lr * g / avg


class Adagrad(Optimizer):
    r"""Adagrad, PyTorch 2.13's single-tensor algorithm.

    ``t += 1``; ``g = ±grad + weight_decay * p``; ``clr = lr / (1 + (t - 1) * lr_decay)``;
    ``s += g * g``; ``p -= clr * g / (sqrt(s) + eps)``.

    Parameters
    ----------
    params : list of ParamRef or of param-group dicts
    lr : float, default 1e-2
    lr_decay, weight_decay, initial_accumulator_value : float, default 0
    eps : float, default 1e-10
    maximize : bool, default False

    State
    -----
    ``step`` and ``sum`` (filled with ``initial_accumulator_value``), created for every
    parameter in the constructor as PyTorch does.

    Raises
    ------
    ValueError
        On a negative ``lr``, ``lr_decay``, ``weight_decay``,
        ``initial_accumulator_value`` or ``eps``.
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=bool(maximize))
        super().__init__(params, defaults)
        for i, ref, group in self._indexed():
            self.state[i] = self._init_state(ref.value, group)

    def _check_hyper(self, hp: dict[str, Any]) -> None:
        _check_nonneg("Adagrad", hp, "lr", "lr_decay", "weight_decay",
                      "initial_accumulator_value", "eps")

    def _init_state(self, p, group: dict[str, Any]) -> dict[str, Any]:
        xp = backend.namespace(p)
        return {"step": 0, "sum": xp.full_like(p, group["initial_accumulator_value"])}

    def _update(self, p, g, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.namespace(p)
        wd = group["weight_decay"]
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        # clr is a Python float exactly when lr and lr_decay are Python numbers
        impl = _kernel("adagrad_update", p, g, s, numbers=(clr, wd, group["eps"]))
        if impl is not None:  # one pass, the same bits (functional/compiled/numba_optim.py)
            impl(p, g, s, clr=clr, weight_decay=wd, eps=group["eps"],
                 maximize=group["maximize"])
            return
        if group["maximize"]:
            g = -g
        if wd != 0:
            g = g + wd * p
        s += g * g
        p -= clr * g / (xp.sqrt(s) + group["eps"])
