"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from typing import Any

from normlab import backend
from normlab.errors import NormlabValueError
from normlab.optim.optimizer import Optimizer, _check_nonneg, _check_real, _kernel

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""SGD, PyTorch 2.13's single-tensor algorithm.

    ``g = ±grad + weight_decay * p``; with momentum ``mu``: ``b = g`` on the first step,
    then ``b = mu * b + (1 - dampening) * g``; ``g = g + mu * b`` (Nesterov) or ``g = b``;
    finally ``p -= lr * g``.

    Parameters
    ----------
    params : list of ParamRef or of param-group dicts
    lr : float, default 1e-3 (PyTorch 2.13's default)
    momentum, dampening, weight_decay : float, default 0
    nesterov : bool, default False
        Needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Ascend the objective (the gradient's sign is flipped).

    State
    -----
    ``momentum_buffer`` (shape of the parameter) once momentum is used.

    Raises
    ------
    ValueError
        On negative ``lr``, ``momentum`` or ``weight_decay``, or Nesterov without
        momentum / with dampening.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=bool(nesterov),
                        maximize=bool(maximize))
        super().__init__(params, defaults)

    _lazy_state = ("momentum_buffer",)

    def _check_hyper(self, hp: dict[str, Any]) -> None:
        _check_nonneg("SGD", hp, "lr", "momentum", "weight_decay")
        _check_real("SGD", hp, "dampening")
        if hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
            raise NormlabValueError(
                "SGD: expected momentum > 0 and dampening == 0 for nesterov=True, got "
                f"momentum={hp['momentum']!r}, dampening={hp['dampening']!r}. Set a momentum "
                "(e.g. 0.9) and dampening=0, or nesterov=False."
            )

    def _update(self, p, g, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, wd, mu = group["lr"], group["weight_decay"], group["momentum"]
        xp = backend.namespace(p)
        buf = state.get("momentum_buffer") if mu != 0 else None
        impl = _kernel("sgd_update", p, g, *(() if buf is None else (buf,)),
                       numbers=(lr, wd, mu, group["dampening"]))
        if impl is not None:  # one pass, the same bits (functional/compiled/numba_optim.py)
            first = mu != 0 and buf is None
            if first:
                buf = state["momentum_buffer"] = xp.empty_like(p)
            impl(p, g, buf, lr, wd, mu, group["dampening"],
                 maximize=group["maximize"], nesterov=group["nesterov"], first=first)
            return
        # The same operations as the formulas in the docstring, each rounded the same way,
        # but in place on one scratch array: a step over ResNet-18's 11M parameters made
        # five full-size temporaries.
        fresh = None  # a scratch array of p's shape that this step owns
        if group["maximize"]:
            g = fresh = -g
        if wd != 0:
            decay = p * wd
            decay += g  # g + wd * p
            g = fresh = decay
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = g.copy()
                state["momentum_buffer"] = buf
            else:
                buf *= mu
                if group["dampening"] == 0:
                    buf += g  # (1 - 0) * g is g exactly
                else:
                    buf += (1 - group["dampening"]) * g
            g = g + mu * buf if group["nesterov"] else buf
        if fresh is not None and fresh.dtype == g.dtype and fresh.shape == g.shape:
            step = xp.multiply(g, lr, out=fresh)
        else:
            step = lr * g
        p -= step
