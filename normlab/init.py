"""Weight initialisation (PyTorch formulas). Every initialiser takes a Generator or seed.

Minimal core for now: fan computation and PyTorch's default Linear/Conv initialisation.
"""

from __future__ import annotations

import math

import numpy as np

from normlab._random import as_generator

__all__ = ["calculate_fan_in_and_fan_out", "pytorch_default_uniform"]


def calculate_fan_in_and_fan_out(shape) -> tuple[int, int]:
    """Fans of a weight of ``shape`` as PyTorch counts them.

    ``(out, in)`` for Linear and ``(out, in/groups, *kernel)`` for Conv: fan_in is
    ``in * prod(kernel)``, fan_out is ``out * prod(kernel)``.

    Raises
    ------
    ValueError
        For fewer than 2 dimensions.
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(
            f"calculate_fan_in_and_fan_out: expected a weight with at least 2 dimensions, "
            f"got shape {shape}."
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def pytorch_default_uniform(shape, fan_in: int, rng=None, dtype=np.float32):
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's default for Linear/Conv.

    This equals ``kaiming_uniform_(a=sqrt(5))`` for the weight and the bias rule.
    """
    rng = as_generator(rng)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype)
