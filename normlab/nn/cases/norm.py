"""Cases for BatchNorm1d/2d/3d, LayerNorm, GroupNorm, InstanceNorm1d/2d and RMSNorm.

Parameters are drawn at random (weight around 1, bias around 0) so gradient checks see
a non-trivial gamma; a layer runs before each norm so ``dx`` flows through a real chain.
"""

from __future__ import annotations

import numpy as np

from normlab import nn
from normlab.nn.catalog import ModuleCase, norm_case
from normlab.nn.module import Module


def _randomized(module: Module, rng: np.random.Generator) -> Module:
    """Draw ``weight`` near 1 and ``bias`` near 0 (the defaults would hide gamma bugs)."""
    for key, p in module.params.items():
        centre = 1.0 if key == "weight" else 0.0
        module.params[key] = (centre + 0.5 * rng.standard_normal(p.shape)).astype(p.dtype)
    return module


def _case(name: str, build, input_shape: tuple, pre_bias: bool = True) -> ModuleCase:
    """``norm_case`` with this file's ``_randomized``."""
    return norm_case(name, build, input_shape, _randomized, pre_bias)


CASES = [
    _case("BatchNorm1d", lambda: nn.BatchNorm1d(5), (4, 5), pre_bias=False),
    _case("BatchNorm1d(affine=False)", lambda: nn.BatchNorm1d(5, affine=False), (4, 5), pre_bias=False),
    _case("BatchNorm1d(momentum=None)", lambda: nn.BatchNorm1d(5, momentum=None), (4, 5), pre_bias=False),
    _case("BatchNorm1d(3D input)", lambda: nn.BatchNorm1d(3), (3, 3, 4)),
    _case("BatchNorm2d", lambda: nn.BatchNorm2d(2), (3, 2, 3, 3)),
    _case("BatchNorm2d(track_running_stats=False)",
          lambda: nn.BatchNorm2d(2, track_running_stats=False), (3, 2, 2, 3)),
    _case("BatchNorm2d(bias=False)", lambda: nn.BatchNorm2d(2, bias=False), (2, 2, 2, 3)),
    _case("BatchNorm3d", lambda: nn.BatchNorm3d(2), (2, 2, 2, 2, 3)),
    _case("LayerNorm", lambda: nn.LayerNorm(5), (4, 5)),
    _case("LayerNorm((3, 4))", lambda: nn.LayerNorm((3, 4)), (2, 3, 4)),
    _case("LayerNorm(bias=False)", lambda: nn.LayerNorm(4, bias=False), (3, 2, 4)),
    _case("LayerNorm(elementwise_affine=False)",
          lambda: nn.LayerNorm(5, elementwise_affine=False), (4, 5)),
    _case("GroupNorm", lambda: nn.GroupNorm(2, 4), (2, 4, 2, 2)),
    _case("GroupNorm(2D input)", lambda: nn.GroupNorm(2, 6), (3, 6)),
    _case("GroupNorm(affine=False)", lambda: nn.GroupNorm(1, 3, affine=False), (2, 3, 4)),
    _case("InstanceNorm1d", lambda: nn.InstanceNorm1d(3), (2, 3, 5)),
    _case("InstanceNorm1d(affine, track_running_stats)",
          lambda: nn.InstanceNorm1d(3, affine=True, track_running_stats=True), (2, 3, 4)),
    _case("InstanceNorm2d(affine=True)", lambda: nn.InstanceNorm2d(2, affine=True),
          (2, 2, 3, 3)),
    _case("InstanceNorm2d(unbatched)", lambda: nn.InstanceNorm2d(2, affine=True), (2, 3, 3)),
    _case("RMSNorm", lambda: nn.RMSNorm(5), (4, 5)),
    _case("RMSNorm((3, 4), eps=1e-6)", lambda: nn.RMSNorm((3, 4), eps=1e-6), (2, 3, 4)),
    _case("RMSNorm(elementwise_affine=False)",
          lambda: nn.RMSNorm(4, elementwise_affine=False), (3, 4)),
]
