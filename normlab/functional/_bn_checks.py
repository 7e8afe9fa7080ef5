"""Argument checks of the batch-norm functions (``batchnorm.py``, ``batchnorm_stages.py``).

Every public batch-norm function validates here, before any statistic is computed or any
compiled kernel runs: the input (a floating ndarray with a channel axis), the reduced
``axes`` (ints in range, no repeats, never the channel axis; messages name the axes as
given), per-channel vectors of length C, ``eps > 0``, more than one value per channel when
training, and ``dout`` against the forward's cache.
"""

from __future__ import annotations

import math

import numpy as np

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.validation import (check_array, check_cache, check_dout, check_positive,
                                check_vector, describe, is_array)

__all__ = ["check_bn_input", "check_bn_axes", "check_bn_affine", "check_bn_eps",
           "check_training_count", "check_bn_dout", "check_running", "check_moment_shapes"]


def check_bn_input(x, owner: str):
    """``x`` as a floating ndarray ``(N, C, *)`` in native byte order."""
    return check_array(x, owner, name="x", min_ndim=2, layout="(N, C, *)", allow_empty=True)


def check_bn_axes(x, axes, owner: str) -> tuple:
    """The reduced ``axes`` as non-negative ints; reports the axes as the caller gave them.

    Raises
    ------
    NormlabTypeError
        ``axes`` not a tuple/list of ints.
    NormlabValueError
        An axis out of ``[-ndim, ndim)``, a repeated axis, the channel axis 1, or an input
        with fewer than 2 dims.
    """
    if not isinstance(axes, (tuple, list)) or not all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise NormlabTypeError(f"{owner}: expected axes to be a tuple of ints, got "
                               f"{describe(axes)} {axes!r}."[:300])
    given = tuple(int(a) for a in axes)
    nd = x.ndim
    if any(not -nd <= a < nd for a in given):
        raise NormlabValueError(f"{owner}: expected axes in [-{nd}, {nd}) for input of shape "
                                f"{tuple(x.shape)}, got axes={given}.")
    norm = tuple(a % nd for a in given)
    if len(set(norm)) != len(norm):
        raise NormlabValueError(f"{owner}: expected distinct axes, got axes={given} for input of "
                                f"shape {tuple(x.shape)}.")
    if 1 in norm or nd < 2:
        raise NormlabValueError(
            f"{owner}: expected reduced axes that exclude the channel axis 1 of an input with at "
            f"least 2 dims, got axes={given} for input of shape {tuple(x.shape)}."
        )
    return norm


def check_bn_affine(x, gamma, beta, owner: str) -> None:
    """``gamma``/``beta``: None or floating ``(C,)`` arrays on ``x``'s device."""
    C = x.shape[1]
    check_vector(gamma, C, owner, "gamma", like=x, allow_none=True)
    check_vector(beta, C, owner, "beta", like=x, allow_none=True)


def check_bn_eps(eps, owner: str) -> float:
    return check_positive(eps, "eps", owner, hint="eps keeps 1/sqrt(var + eps) finite.")


def check_training_count(x, axes, owner: str) -> None:
    """PyTorch's rule: training statistics need more than one value per channel."""
    if math.prod(x.shape[a] for a in axes) == 1:
        raise NormlabValueError(
            f"{owner}: expected more than 1 value per channel when training, got input shape "
            f"{tuple(x.shape)}. Use a larger batch, or eval mode."
        )


def check_bn_dout(dout, cache, cls, owner: str):
    """``dout`` of the forward's output shape (the cache's input ``x``), before any kernel."""
    cache = check_cache(cache, cls, owner)
    return check_dout(dout, cache.x.shape, owner, like=cache.x)


def check_running(x, running_mean, running_var, owner: str) -> None:
    """Running statistics: floating ``(C,)`` vectors; the variance finite and >= 0."""
    C = x.shape[1]
    check_vector(running_mean, C, owner, "running_mean", like=x)
    check_vector(running_var, C, owner, "running_var", like=x)
    if bool((running_var < 0).any()):
        raise NormlabValueError(f"{owner}: expected a non-negative running_var, got minimum "
                                f"{float(running_var.min())}.")


def check_moment_shapes(x, moments, owner: str) -> None:
    """``moments.mean``/``.var`` must be (C,) arrays for input ``x`` (N, C, *)."""
    for name in ("mean", "var"):
        v = getattr(moments, name, None)
        if not is_array(v):
            raise NormlabTypeError(f"{owner}: expected moments with (C,) arrays mean and var, "
                                   f"got {name} {describe(v)}.")
    C = x.shape[1]
    if tuple(moments.mean.shape) != (C,) or tuple(moments.var.shape) != (C,):
        raise NormlabValueError(
            f"{owner}: expected moments of shape ({C},) for input of shape "
            f"{tuple(x.shape)}, got mean {tuple(moments.mean.shape)} and var "
            f"{tuple(moments.var.shape)}."
        )
