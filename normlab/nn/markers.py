"""Marker base classes: normalization layers are recognised by type, never by class name.

``NormLayer`` is the base of every normalization layer in ``normlab.nn`` (batch, layer,
group, instance, RMS norm and the BN family). Code that asks "is this a norm layer?"
(``normlab.optim.param_groups``, ``normlab.models.make_norm`` callers, the Trainer) uses
``isinstance(m, NormLayer)``. A user's own layer opts in by subclassing it (or, for a
layer that cannot, by setting the class attribute ``is_norm = True``).
"""

from __future__ import annotations

from normlab.nn.module import Module

__all__ = ["NormLayer"]


class NormLayer(Module):
    """Base class of every normalization layer (adds no state and no behaviour)."""

    is_norm = True
