"""Stateful modules (PyTorch names, signatures and state_dict keys) over normlab.functional."""

from normlab.nn.container import Sequential  # noqa: F401
from normlab.nn.linear import Flatten, Identity, Linear  # noqa: F401
from normlab.nn.module import Module, ParamRef  # noqa: F401
from normlab.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d  # noqa: F401
from normlab.nn.normalization import (  # noqa: F401
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    LayerNorm,
    RMSNorm,
)
