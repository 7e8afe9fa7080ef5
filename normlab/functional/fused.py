"""Fused forwards: batch norm, a residual add and an activation in BN's output pass.

``act(batch_norm(x) + residual)`` is what the BN-activation pairs of a CNN compute
(ResNet's blocks add their shortcut between BN and ReLU). Run as separate ops, the
activation is written and read again by each; fused, BN's output pass (eval: its only
pass; training: the one after the statistics) writes the result once (1 thread, float32,
separate -> fused: 128x16x32x32 eval BN + ReLU 1.34 -> 0.68 ms, with the add 2.29 ->
1.32; training 2.90 -> 2.33, with the add 3.72 -> 3.14; 256x6x28x28 eval BN + Sigmoid
1.48-1.56 -> 1.25-1.29).

Activations: ``"relu"`` (with or without a residual, one compiled pass) and
``"sigmoid"`` (without a residual one compiled pass, in blocks as ``sigmoid_forward``;
with one, op by op), in eval and in training.

The op is defined as that composition: the reference path runs it op by op
(``batch_norm_eval_forward`` or ``batch_norm_forward``, ``+``, the activation's forward),
and the compiled kernels do the same arithmetic in the same order per element, so both
give the same bits. Its cache holds each part's own cache, so the backward is the parts'
backwards, and ``normlab.nn`` hands each module its own cache (``nn._fusion``).
"""

from __future__ import annotations

from typing import NamedTuple

from normlab import backend
from normlab.errors import NormlabValueError, ShapeError
from normlab.functional import batchnorm as _bn
from normlab.functional._bn_checks import (check_bn_affine, check_bn_eps, check_bn_input,
                                           check_training_count)
from normlab.functional.activation import BY_NAME
from normlab.functional.batchnorm_stages import check_axes, residual_fits
from normlab.validation import check_array, check_bool, check_cache, describe, overwritable

__all__ = ["ACTIVATIONS", "BatchNormEvalActCache", "batch_norm_eval_act_forward",
           "batch_norm_eval_act_backward", "BatchNormActCache", "batch_norm_act_forward",
           "batch_norm_act_backward"]

#: activation name -> (forward, backward, cache class) (``activation.BY_NAME``)
ACTIVATIONS = BY_NAME


class BatchNormEvalActCache(NamedTuple):
    bn: _bn.BatchNormEvalCache  # batch norm's own cache (its input)
    act: tuple  # the activation's own cache (ReluCache, SigmoidCache: the output)
    activation: str
    residual: bool  # a residual was added between the two


class BatchNormActCache(NamedTuple):
    bn: _bn.BatchNormCache  # batch norm's own cache (its input and batch statistics)
    act: tuple  # the activation's own cache
    activation: str
    residual: bool


def _checked_activation(activation, owner):
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise NormlabValueError(f"{owner}: expected activation to be one of "
                                f"{sorted(ACTIVATIONS)}, got {activation!r}.")
    return activation


def _checked_residual(residual, x, owner):
    if residual is None:
        return None
    residual = check_array(residual, owner, name="residual", allow_empty=True)
    if residual.shape != x.shape:
        raise ShapeError(f"{owner}: expected a residual of x's shape {tuple(x.shape)}, "
                         f"got {describe(residual)}.")
    backend.namespace(x, residual)  # one array library: a clear error otherwise
    return residual


def _then(cls, bn_cache, y, residual, activation):
    """The rest of the composition, op by op: ``act(y + residual)``; ``(out, cls cache)``."""
    if residual is not None:
        y = y + residual
    out, act_cache = ACTIVATIONS[activation][0](y)
    return out, cls(bn_cache, act_cache, activation, residual is not None)


def batch_norm_eval_act_forward(x, gamma, beta, running_mean, running_var, *, axes,
                                eps: float = 1e-5, activation: str = "relu",
                                residual=None, overwrite_x: bool = False):
    """``out = act(batch_norm_eval_forward(x, ...) + residual)`` in one pass.

    Parameters
    ----------
    x, gamma, beta, running_mean, running_var, axes, eps
        As ``batch_norm_eval_forward``.
    activation : {"relu", "sigmoid"}
    residual : ndarray of ``x``'s shape, or None
        Added after the normalisation, before the activation (ResNet's shortcut).
    overwrite_x : bool
        For inference: ``x``'s memory may hold the result (its values are then lost, and
        ``cache`` is None: nothing may run backward). It does where a compiled pass runs
        (ReLU; Sigmoid without a residual); elsewhere a new array is returned, as without
        it. The values are the same bits either way.

    Returns
    -------
    out : ndarray, shape of ``x`` (dtype of ``x``, or of ``x + residual``)
    cache : BatchNormEvalActCache, or None where ``x`` was overwritten

    Raises
    ------
    ValueError, TypeError
        As ``batch_norm_eval_forward``; an unknown activation; a ``residual`` that is not
        an array of ``x``'s shape.
    """
    owner = "batch_norm_eval_act_forward"
    activation = _checked_activation(activation, owner)
    overwrite_x = check_bool(overwrite_x, "overwrite_x", owner)
    x, mean, inv_std, scale, axes = _bn._eval_setup(x, gamma, beta, running_mean,
                                                    running_var, axes, eps, owner)
    residual = _checked_residual(residual, x, owner)
    bn_cache = _bn.BatchNormEvalCache(x, mean, inv_std, scale, gamma is not None,
                                      beta is not None, axes)
    # a compiled pass's out (CuPy arrays have no writeable flag: validation.overwritable)
    target = x if overwrite_x and overwritable(x, x.shape, x.dtype) else None
    out = None
    if activation == "relu" and residual_fits(residual, x):
        impl = _bn._eval_kernel(x, axes, mean, scale)
        if impl is not None:
            out = impl(x, mean, scale, beta, residual=residual, relu=True, out=target)
    elif activation == "sigmoid" and residual is None:
        impl = _bn._eval_kernel(x, axes, mean, scale, "bn_eval_sigmoid")
        if impl is not None:
            out = impl(x, mean, scale, beta, out=target)
    if out is not None:
        if out is x:  # overwritten: nothing may run backward
            return out, None
        return out, BatchNormEvalActCache(bn_cache, ACTIVATIONS[activation][2](out),
                                          activation, residual is not None)
    y = _bn._eval_affine(x, mean, scale, beta, axes)  # the composition, op by op
    return _then(BatchNormEvalActCache, bn_cache, y, residual, activation)


def batch_norm_act_forward(x, gamma, beta, *, axes, eps: float = 1e-5,
                           activation: str = "relu", residual=None):
    """Training mode: ``out = act(batch_norm_forward(x, ...) + residual)``, the output
    written in the normalising pass (the statistics pass comes first, as alone; a sigmoid
    in blocks, as in eval, and after the residual op by op).

    Parameters
    ----------
    x, gamma, beta, axes, eps
        As ``batch_norm_forward``.
    activation : {"relu", "sigmoid"}
    residual : ndarray of ``x``'s shape, or None
        Added after the normalisation, before the activation.

    Returns
    -------
    out : ndarray, shape of ``x``
    cache : BatchNormActCache (``cache.bn`` holds the batch mean and variance for the
        running statistics)

    Raises
    ------
    ValueError, TypeError
        As ``batch_norm_forward``; an unknown activation; a ``residual`` that is not an
        array of ``x``'s shape.
    """
    owner = "batch_norm_act_forward"
    activation = _checked_activation(activation, owner)
    x = check_bn_input(x, owner)
    axes = check_axes(x, axes, owner)
    check_bn_affine(x, gamma, beta, owner)
    eps = check_bn_eps(eps, owner)
    check_training_count(x, axes, owner)
    residual = _checked_residual(residual, x, owner)
    out, bn_cache = _bn._forward(x, gamma, beta, axes, eps, residual, activation)
    return out, BatchNormActCache(bn_cache, ACTIVATIONS[activation][2](out), activation,
                                  residual is not None)


def batch_norm_act_backward(dout, cache):
    """Gradients of ``batch_norm_act_forward`` or ``batch_norm_eval_act_forward`` (either
    cache): the activation's backward, then batch norm's (training or eval); the
    residual's gradient is the activation's.

    Returns
    -------
    dx : shape of x; dgamma, dbeta : (C,) or None; dresidual : shape of x, or None
    """
    if isinstance(cache, BatchNormEvalActCache):
        bn_backward = _bn.batch_norm_eval_backward
    else:
        cache = check_cache(cache, BatchNormActCache, "batch_norm_act_backward")
        bn_backward = _bn.batch_norm_backward
    dsum = ACTIVATIONS[cache.activation][1](dout, cache.act)
    dx, dgamma, dbeta = bn_backward(dsum, cache.bn)
    return dx, dgamma, dbeta, (dsum if cache.residual else None)


#: the eval op's backward is the same function (it takes either cache)
batch_norm_eval_act_backward = batch_norm_act_backward
