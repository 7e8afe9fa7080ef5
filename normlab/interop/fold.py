"""Fold eval-mode BatchNorm into the Linear/Conv layer right before it.

In eval mode BatchNorm is the per-channel affine map
``y = gamma * (z - running_mean) / sqrt(running_var + eps) + beta``. When ``z = W x + b``
comes from a Linear or Conv layer, with ``s = gamma / sqrt(running_var + eps)``::

    W' = W * s   (scaling output channel o, axis 0 of the weight, by s[o])
    b' = (b - running_mean) * s + beta        (b = 0 when the layer has no bias)

gives the same function with one layer fewer. ``fold_batchnorm`` finds the pairs in
every ``Sequential`` (a Linear/Conv child directly followed by a BatchNorm child) and in
modules that name them in a class attribute ``fold_pairs = (("conv1", "bn1"), ...)``
(ResNet blocks, MNIST-1D models). A folded BatchNorm is replaced by ``Identity`` so
the other children keep their names and indices; BatchNorms that do not directly
follow such a layer stay as they are. "BatchNorm" means, by type, every layer whose eval
map is batch norm's: ``BatchNorm1d/2d/3d``, ``GhostBatchNorm*``, ``BatchRenorm*`` and
``FrozenBatchNorm*`` (and their subclasses). ``WSConv2d`` is never folded into: it
re-standardises its weight at every call, so a scaled weight would be undone.
"""

from __future__ import annotations

import copy

import numpy as np

from normlab import backend, nn
from normlab.errors import NormlabRuntimeError, NormlabValueError
from normlab.nn.batchnorm import _BatchNorm, _check_running_stats
from normlab.nn.frozen_batchnorm import _FrozenBatchNorm

__all__ = ["fold_batchnorm"]


# Recognised by type: every layer whose eval map is batch norm's (BatchNorm*, the BN
# family: GhostBatchNorm*, BatchRenorm*, FrozenBatchNorm*), subclasses included.
_BN_TYPES = (_BatchNorm, _FrozenBatchNorm)
_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _fold_pair(layer, bn, where: str) -> None:
    """Rewrite ``layer``'s weight and bias in place so that it includes ``bn``."""
    _check_running_stats("fold_batchnorm", bn, where,
                         "Such a layer normalises with batch statistics even in eval mode, "
                         "so it cannot be folded.")
    W = layer.params["weight"]
    xp = backend.namespace(W)
    rm, rv = bn.buffers["running_mean"], bn.buffers["running_var"]
    if W.shape[0] != rm.shape[0]:
        raise NormlabValueError(
            f"fold_batchnorm: expected the BatchNorm at {where!r} to have as many features as "
            f"the layer before it has outputs ({W.shape[0]}), got {rm.shape[0]}."
        )
    rv_host = backend.to_numpy(rv)
    if not (np.isfinite(rv_host).all() and (rv_host >= 0).all()):
        raise NormlabValueError(
            f"fold_batchnorm: expected a finite, non-negative running_var at {where!r}, got "
            f"minimum {float(rv_host.min())}. The statistics are corrupt; re-estimate them."
        )
    gamma = bn.params.get("weight", bn.buffers.get("weight"))  # FrozenBatchNorm: buffers
    beta = bn.params.get("bias", bn.buffers.get("bias"))
    scale = 1.0 / xp.sqrt(rv + float(bn.eps))
    if gamma is not None:  # affine=False: gamma = 1, beta = 0
        scale = gamma * scale
    b = layer.params.get("bias")
    bias = -rm * scale if b is None else (b - rm) * scale
    if beta is not None:
        bias = bias + beta
    layer.params["weight"] = (W * scale.reshape((-1,) + (1,) * (W.ndim - 1))).astype(W.dtype)
    layer.params["bias"] = bias.astype(W.dtype)
    layer.grads["weight"] = xp.zeros_like(layer.params["weight"])
    layer.grads["bias"] = xp.zeros_like(layer.params["bias"])
    if hasattr(layer, "bias") and isinstance(getattr(layer, "bias"), bool):
        layer.bias = True


def fold_batchnorm(model):
    """A copy of the eval-mode ``model`` with each BatchNorm folded into its preceding layer.

    Parameters
    ----------
    model : normlab.nn.Module
        Must be in eval mode (every submodule); it is deep-copied, never modified.

    Returns
    -------
    Module
        Same outputs in eval mode (up to rounding); folded BatchNorms replaced by
        ``Identity``; layers that had no bias gain one.

    Raises
    ------
    RuntimeError
        If the model (or any submodule) is in training mode.
    ValueError
        For a BatchNorm with ``track_running_stats=False`` that would be folded, or one
        whose size differs from the preceding layer's outputs.
    """
    if any(m.training for m in model.modules()):
        raise NormlabRuntimeError(
            "fold_batchnorm: expected a model in eval mode, got training mode. "
            "Call model.eval() first."
        )
    folded = copy.deepcopy(model)
    for name, m in list(folded.named_modules()):
        pre = f"{name}." if name else ""
        pairs = list(getattr(type(m), "fold_pairs", ()))
        if isinstance(m, nn.Sequential):
            keys = list(m._modules)
            pairs += list(zip(keys[:-1], keys[1:]))
        for lname, bname in pairs:
            layer, bn = m._modules.get(lname), m._modules.get(bname)
            if isinstance(layer, _LAYER_TYPES) and not isinstance(layer, nn.WSConv2d) and \
                    isinstance(bn, _BN_TYPES):
                _fold_pair(layer, bn, pre + bname)
                identity = nn.Identity()
                identity.training = False
                m._modules[bname] = identity
                if bname in m.__dict__:
                    object.__setattr__(m, bname, identity)
    folded._invalidate_caches()
    return folded
