"""Split a model's parameters into a weight-decay group and a no-decay group."""

from __future__ import annotations

from typing import Any

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.nn.markers import NormLayer
from normlab.nn.module import Module

__all__ = ["param_groups", "is_norm_module"]

def is_norm_module(module: Module) -> bool:
    """True if ``module`` is a normalization layer, recognised by type.

    A module counts as one if it is an instance of ``normlab.nn.NormLayer`` (every
    batch, layer, group, instance and RMS norm and the BN family derive from it) or if
    its class sets ``is_norm = True`` (for a user's layer that cannot subclass it). The
    class name plays no part.
    """
    return isinstance(module, NormLayer) or getattr(module, "is_norm", False) is True


def param_groups(model: Module, weight_decay: float,
                 exclude_norm_and_bias: bool = True) -> list[dict[str, Any]]:
    """Param groups for an optimizer, excluding biases and norm parameters from decay.

    Rule: a parameter goes to the no-decay group if it has at most one dimension (every
    bias, every BatchNorm/GroupNorm/InstanceNorm ``weight``) or belongs to a
    normalization module (:func:`is_norm_module`, which also catches multi-dimensional
    LayerNorm/RMSNorm weights). Everything else (Linear/Conv weights) is decayed.

    Parameters
    ----------
    model : Module
    weight_decay : float
        Decay of the first group (>= 0).
    exclude_norm_and_bias : bool, default True
        If False, return a single group with every parameter decayed.

    Returns
    -------
    list of dict
        ``[{"params": decayed, "weight_decay": weight_decay},
        {"params": not_decayed, "weight_decay": 0.0}]`` (both always present, possibly
        empty, so the group layout of a saved optimizer does not depend on the model),
        or ``[{"params": all, "weight_decay": weight_decay}]``.

    Raises
    ------
    TypeError
        If ``model`` is not a normlab Module or ``weight_decay`` is not a float.
    ValueError
        If ``weight_decay`` is negative.
    """
    if not isinstance(model, Module):
        raise NormlabTypeError(
            f"param_groups: expected a normlab Module, got {type(model).__name__}. "
            "Pass the model itself, not model.parameters()."
        )
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)):
        raise NormlabTypeError(
            f"param_groups: expected weight_decay to be a float, got "
            f"{type(weight_decay).__name__}."
        )
    if not weight_decay >= 0:
        raise NormlabValueError(f"param_groups: expected weight_decay >= 0, got {weight_decay!r}.")
    refs = model.parameters()
    if not exclude_norm_and_bias:
        return [{"params": refs, "weight_decay": float(weight_decay)}]
    decay, no_decay = [], []
    for ref in refs:
        if ref.value.ndim <= 1 or is_norm_module(ref.module):
            no_decay.append(ref)
        else:
            decay.append(ref)
    return [{"params": decay, "weight_decay": float(weight_decay)},
            {"params": no_decay, "weight_decay": 0.0}]
