"""Cases for the BN family: BatchRenorm1d/2d, GhostBatchNorm1d/2d, FrozenBatchNorm1d/2d/3d,
InstanceNorm3d, WSConv2d and BatchNorm with the d2l/Keras running variance.

Batch Renorm treats ``r`` and ``d`` as constants in backward, which is the true gradient
only where both are clipped; its cases start from running statistics far from the batch
(``running_mean`` 3, ``running_var`` 16) with ``momentum=0`` so every check runs in the
clipped regime with ``r != 1`` and ``d != 0``.
"""

from __future__ import annotations

import numpy as np

from normlab import nn
from normlab.nn.catalog import ElementwiseAffine, ModuleCase, norm_case
from normlab.nn.frozen_batchnorm import _FrozenBatchNorm
from normlab.nn.module import Module

CONV_TOL = 1e-6  # conv gradcheck threshold (STYLE)


def _randomized(module: Module, rng: np.random.Generator) -> Module:
    """Weight near 1, bias near 0, and (frozen layers) non-trivial statistics."""
    for store in (module.params, module.buffers):
        for key, a in store.items():
            if key in ("weight", "bias"):
                centre = 1.0 if key == "weight" else 0.0
                store[key] = (centre + 0.5 * rng.standard_normal(a.shape)).astype(a.dtype)
    if isinstance(module, _FrozenBatchNorm):
        b = module.buffers
        b["running_mean"] = (0.3 * rng.standard_normal(b["running_mean"].shape)).astype(
            b["running_mean"].dtype)
        b["running_var"] = rng.uniform(0.5, 2.0, b["running_var"].shape).astype(
            b["running_var"].dtype)
    return module


def _far_stats(module: Module) -> Module:
    b = module.buffers
    b["running_mean"] = b["running_mean"] + 3.0
    b["running_var"] = b["running_var"] * 16.0
    return module


def _case(name: str, build, input_shape: tuple, pre_bias: bool = True) -> ModuleCase:
    """``norm_case`` with this file's ``_randomized``."""
    return norm_case(name, build, input_shape, _randomized, pre_bias)


CASES = [
    _case("BatchRenorm1d(clipped r, d)",
          lambda: _far_stats(nn.BatchRenorm1d(4, r_max=1.5, d_max=0.5, momentum=0.0)), (6, 4),
          pre_bias=False),
    _case("BatchRenorm1d(r_max=1, d_max=0)", lambda: nn.BatchRenorm1d(3, r_max=1.0, d_max=0.0),
          (3, 3, 4)),
    _case("BatchRenorm2d(clipped r, d)",
          lambda: _far_stats(nn.BatchRenorm2d(2, r_max=2.0, d_max=0.25, momentum=0.0)),
          (3, 2, 2, 3)),
    _case("BatchRenorm2d(affine=False)",
          lambda: _far_stats(nn.BatchRenorm2d(2, r_max=2.0, d_max=0.25, momentum=0.0,
                                              affine=False)), (2, 2, 2, 3)),
    _case("GhostBatchNorm1d(virtual_batch_size=4)",
          lambda: nn.GhostBatchNorm1d(4, virtual_batch_size=4), (11, 4), pre_bias=False),
    _case("GhostBatchNorm1d(3D input, momentum=None)",
          lambda: nn.GhostBatchNorm1d(3, virtual_batch_size=2, momentum=None), (5, 3, 4)),
    _case("GhostBatchNorm2d(virtual_batch_size=2)",
          lambda: nn.GhostBatchNorm2d(2, virtual_batch_size=2), (5, 2, 2, 3)),
    _case("GhostBatchNorm2d(bias=False)",
          lambda: nn.GhostBatchNorm2d(2, virtual_batch_size=2, bias=False), (4, 2, 2, 2)),
    _case("FrozenBatchNorm2d", lambda: nn.FrozenBatchNorm2d(3), (2, 3, 2, 3)),
    _case("FrozenBatchNorm2d(affine_trainable=True)",
          lambda: nn.FrozenBatchNorm2d(3, affine_trainable=True), (2, 3, 2, 2)),
    _case("FrozenBatchNorm1d", lambda: nn.FrozenBatchNorm1d(4), (3, 4)),
    _case("FrozenBatchNorm3d", lambda: nn.FrozenBatchNorm3d(2), (2, 2, 2, 2, 2)),
    _case("BatchNorm1d(unbiased_running_var=False)",
          lambda: nn.BatchNorm1d(4, unbiased_running_var=False), (5, 4), pre_bias=False),
    _case("BatchNorm2d(unbiased_running_var=False, momentum=None)",
          lambda: nn.BatchNorm2d(2, momentum=None, unbiased_running_var=False), (3, 2, 2, 2)),
    _case("InstanceNorm3d", lambda: nn.InstanceNorm3d(2), (2, 2, 3, 3, 2)),
    _case("InstanceNorm3d(affine, track_running_stats)",
          lambda: nn.InstanceNorm3d(2, affine=True, track_running_stats=True), (2, 2, 2, 2, 3)),
    _case("InstanceNorm3d(unbatched)", lambda: nn.InstanceNorm3d(2, affine=True), (2, 2, 3, 2)),
    ModuleCase("WSConv2d", lambda rng: nn.WSConv2d(3, 4, 3, padding=1, rng=rng),
               (2, 3, 5, 5), (2, 4, 5, 5),
               pre=lambda rng: ElementwiseAffine((3, 1, 1), rng), tol=CONV_TOL),
    ModuleCase("WSConv2d(stride, groups, bias=False, eps=1e-3)",
               lambda rng: nn.WSConv2d(4, 4, 2, stride=2, groups=2, bias=False, eps=1e-3,
                                       rng=rng),
               (2, 4, 4, 4), (2, 4, 2, 2),
               pre=lambda rng: ElementwiseAffine((4, 1, 1), rng), tol=CONV_TOL),
]
