"""CS231n update rules: ``update(w, dw, config=None) -> (next_w, config)``.

Each rule fills in its defaults with ``config.setdefault`` and keeps its state (velocity,
caches, step count) in the same ``config`` dict, which it returns: the course's ``Solver``
keeps one config per parameter and passes it back in on the next step. The defaults are the
course's (``learning_rate`` 1e-2, except Adam's 1e-3).

These are course adapters; normlab's own optimizers live in :mod:`normlab.optim`.
"""

from __future__ import annotations

from normlab import backend
from normlab.errors import NormlabTypeError, NormlabValueError

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam"]


def _config(config):
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise NormlabTypeError(
            f"cs231n.optim: expected config to be a dict or None, got {type(config).__name__}."
        )
    return config


def _check_shapes(w, dw, rule):
    if w.shape != dw.shape:
        raise NormlabValueError(
            f"cs231n.optim.{rule}: expected dw with the shape of w {tuple(w.shape)}, "
            f"got {tuple(dw.shape)}."
        )


def sgd(w, dw, config=None):
    """Vanilla SGD: ``w <- w - learning_rate * dw``.

    config: ``learning_rate`` (1e-2).
    """
    config = _config(config)
    _check_shapes(w, dw, "sgd")
    config.setdefault("learning_rate", 1e-2)
    w = w - config["learning_rate"] * dw
    return w, config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: ``v <- momentum * v - learning_rate * dw``; ``w <- w + v``.

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), ``velocity`` (zeros like ``w``).
    """
    config = _config(config)
    _check_shapes(w, dw, "sgd_momentum")
    xp = backend.namespace(w, dw)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity")
    if v is None:
        v = xp.zeros_like(w)
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def rmsprop(w, dw, config=None):
    """RMSProp: ``cache <- decay * cache + (1 - decay) * dw**2``;
    ``w <- w - learning_rate * dw / (sqrt(cache) + epsilon)``.

    config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8),
    ``cache`` (zeros like ``w``).
    """
    config = _config(config)
    _check_shapes(w, dw, "rmsprop")
    xp = backend.namespace(w, dw)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    cache = config.get("cache")
    if cache is None:
        cache = xp.zeros_like(w)
    decay = config["decay_rate"]
    cache = decay * cache + (1 - decay) * dw * dw
    config["cache"] = cache
    next_w = w - config["learning_rate"] * dw / (xp.sqrt(cache) + config["epsilon"])
    return next_w, config


def adam(w, dw, config=None):
    """Adam with bias correction; the step count ``t`` is incremented BEFORE use.

    ``m <- b1 m + (1 - b1) dw``, ``v <- b2 v + (1 - b2) dw**2``,
    ``w <- w - lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + epsilon)``.

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999), ``epsilon`` (1e-8),
    ``m``, ``v`` (zeros like ``w``), ``t`` (0).
    """
    config = _config(config)
    _check_shapes(w, dw, "adam")
    xp = backend.namespace(w, dw)
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("t", 0)
    m = config.get("m")
    v = config.get("v")
    m = xp.zeros_like(w) if m is None else m
    v = xp.zeros_like(w) if v is None else v
    b1, b2 = config["beta1"], config["beta2"]
    t = config["t"] + 1
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * dw * dw
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    next_w = w - config["learning_rate"] * m_hat / (xp.sqrt(v_hat) + config["epsilon"])
    config.update(m=m, v=v, t=t)
    return next_w, config
