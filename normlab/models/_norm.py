"""The one factory that turns ``norm="batch"|"layer"|"group"|"instance"|None`` into a layer.

``norm`` may also be any callable that makes a norm layer for a channel count,
``norm(C) -> Module`` (a class, a ``functools.partial``, a lambda), e.g.
``norm=partial(nn.GhostBatchNorm2d, virtual_batch_size=16)`` or ``norm=nn.BatchRenorm2d``.
The layer is cast to the model's dtype. A rank-specific batch-norm class
(``BatchNorm*``, ``GhostBatchNorm*``, ``BatchRenorm*``, ``FrozenBatchNorm*``) is turned
into its sibling for the features' rank, so one ``partial(nn.GhostBatchNorm2d, ...)``
serves both the conv (``...2d``) and the linear (``...1d``) norms of LeNet; the siblings
differ only in the input ranks they accept. Other callables must fit the rank themselves.

Every builder in ``normlab.models`` asks ``make_norm`` for its normalisation layers, so
that one keyword swaps BatchNorm for its alternatives everywhere. The mapping, by the
number of spatial dimensions of the features being normalised:

=============  ========================  ========================  ==========================
kind           (N, C)  spatial_dims=0    (N, C, L)  spatial_dims=1  (N, C, H, W) spatial_dims=2
=============  ========================  ========================  ==========================
``"batch"``    ``BatchNorm1d(C)``        ``BatchNorm1d(C)``        ``BatchNorm2d(C)``
``"layer"``    ``LayerNorm(C)``          ``GroupNorm(1, C)``       ``GroupNorm(1, C)``
``"group"``    ``GroupNorm(G, C)``       ``GroupNorm(G, C)``       ``GroupNorm(G, C)``
``"instance"`` refused (ValueError)      ``InstanceNorm1d(C)`` *     ``InstanceNorm2d(C)`` *
``None``       no layer                  no layer                  no layer
=============  ========================  ========================  ==========================

(*) built with ``affine=True``.

Decisions, documented because they differ between libraries:

- "layer" on feature maps is ``GroupNorm(1, C)``: it normalises each sample over
  ``(C, H, W)`` like ``LayerNorm([C, H, W])`` but with a per-channel ``(C,)`` affine, so the
  model does not depend on the input's spatial size (Wu & He 2018, Fig. 2).
- "group" uses ``G = group_count(C, min_group_size)``: the largest divisor of ``C`` not
  above 32 whose groups hold at least ``min_group_size`` channels (``G = 1`` if none).
  On feature maps ``min_group_size = 2`` (each channel already has ``H*W`` values;
  one channel per group would be instance norm). On ``(N, C)`` vectors (PyTorch's
  GroupNorm accepts them) a group normalises only its own few values: one value
  becomes 0 and two become +-1 whatever the input, erasing the features, so there
  ``min_group_size = 8``.
- "instance" needs spatial positions to average over: on ``(N, C)`` vectors it would
  normalise single values, so it is refused there. It is built with ``affine=True``
  (PyTorch's default is False) so that every norm kind has a learnable scale and shift.
"""

from __future__ import annotations

import numpy as np

from normlab import nn
from normlab.errors import NormlabTypeError, NormlabValueError

__all__ = ["NORM_KINDS", "make_norm", "group_count", "check_norm_kind"]

NORM_KINDS = ("batch", "layer", "group", "instance", None)


def check_norm_kind(owner: str, kind) -> None:
    """Raise ``ValueError`` unless ``kind`` is one of ``NORM_KINDS`` or a callable."""
    if callable(kind) and not isinstance(kind, str):
        return
    if kind not in NORM_KINDS:
        raise NormlabValueError(
            f"{owner}: expected norm in {NORM_KINDS} or a callable that makes a norm layer "
            f"for a channel count, got {kind!r}. Use None for no normalisation."
        )


def _rank_families():
    return ((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d),
            (nn.GhostBatchNorm1d, nn.GhostBatchNorm2d),
            (nn.BatchRenorm1d, nn.BatchRenorm2d),
            (nn.FrozenBatchNorm1d, nn.FrozenBatchNorm2d, nn.FrozenBatchNorm3d))


def _fit_rank(layer, spatial_dims: int):
    """Switch a rank-specific BN-family layer to its sibling accepting ``spatial_dims + 2``-D."""
    ndim = spatial_dims + 2
    for family in _rank_families():
        if type(layer) in family and ndim not in type(layer)._ranks:
            for cls in family:
                if ndim in cls._ranks:
                    layer.__class__ = cls  # same state; only the accepted ranks differ
            break
    return layer


def group_count(num_channels: int, min_group_size: int = 2) -> int:
    """Largest divisor ``G <= 32`` of ``num_channels`` with ``num_channels // G >= min_group_size``.

    Returns 1 when no such divisor exists (fewer than ``min_group_size`` channels).
    """
    cap = max(1, min(32, num_channels // min_group_size))
    return max(g for g in range(1, cap + 1) if num_channels % g == 0)


def make_norm(kind, num_features: int, spatial_dims: int, dtype=np.float32):
    """Normalisation layer of ``kind`` for ``num_features`` channels (table in the module doc).

    Parameters
    ----------
    kind : {"batch", "layer", "group", "instance", None} or callable
        A callable is called as ``kind(num_features)`` and must return a normlab Module.
    num_features : int
        Channels ``C`` (axis 1 of the input).
    spatial_dims : {0, 1, 2}
        0 for ``(N, C)`` vectors, 1 for ``(N, C, L)`` signals, 2 for ``(N, C, H, W)`` maps.
    dtype : default float32

    Returns
    -------
    Module or None
        ``None`` when ``kind`` is None (callers then add no layer at all, so the
        state_dict keys equal those of the PyTorch twin without a norm).

    Raises
    ------
    ValueError
        For an unknown kind or spatial_dims, or "instance" on ``(N, C)`` vectors.
    TypeError
        When a callable ``kind`` returns something other than a normlab Module.
    """
    check_norm_kind("make_norm", kind)
    if spatial_dims not in (0, 1, 2):
        raise NormlabValueError(
            f"make_norm: expected spatial_dims in (0, 1, 2), got {spatial_dims!r}. Use 0 for "
            "(N, C), 1 for (N, C, L) and 2 for (N, C, H, W) features."
        )
    if kind is None:
        return None
    C = int(num_features)
    if callable(kind) and not isinstance(kind, str):
        layer = kind(C)
        if not isinstance(layer, nn.Module):
            raise NormlabTypeError(
                f"make_norm: expected norm(num_features) to return a normlab Module, got "
                f"{type(layer).__name__} from {kind!r}. Pass a layer class or a "
                "functools.partial of one, e.g. partial(nn.GhostBatchNorm2d, "
                "virtual_batch_size=16)."
            )
        return _fit_rank(layer, spatial_dims).to(dtype=dtype)
    if kind == "batch":
        return (nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm1d)(C, dtype=dtype)
    if kind == "layer":
        return nn.LayerNorm(C, dtype=dtype) if spatial_dims == 0 else nn.GroupNorm(1, C, dtype=dtype)
    if kind == "group":
        return nn.GroupNorm(group_count(C, 8 if spatial_dims == 0 else 2), C, dtype=dtype)
    if spatial_dims == 0:
        raise NormlabValueError(
            "make_norm: expected (N, C, L) or (N, C, H, W) features for norm='instance', got "
            "(N, C) vectors (spatial_dims=0). Instance norm needs spatial positions; use "
            "norm='layer' or 'group' here."
        )
    cls = nn.InstanceNorm2d if spatial_dims == 2 else nn.InstanceNorm1d
    return cls(C, affine=True, dtype=dtype)
