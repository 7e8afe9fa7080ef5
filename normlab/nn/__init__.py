"""Stateful modules (PyTorch names, signatures and state_dict keys) over normlab.functional."""

from normlab.nn.container import Sequential  # noqa: F401
from normlab.nn.linear import Flatten, Identity, Linear  # noqa: F401
from normlab.nn.module import Module, ParamRef, no_grad, retain_caches  # noqa: F401
from normlab.nn.activation import LeakyReLU, ReLU, Sigmoid, Tanh  # noqa: F401
from normlab.nn.dropout import Dropout  # noqa: F401
from normlab.nn.loss import CrossEntropyLoss, MSELoss, MultiMarginLoss  # noqa: F401
from normlab.nn.conv import Conv1d, Conv2d  # noqa: F401
from normlab.nn.pool import (  # noqa: F401
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from normlab.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d  # noqa: F401
from normlab.nn.sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm  # noqa: F401
from normlab.nn.normalization import (  # noqa: F401
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LayerNorm,
    RMSNorm,
)
from normlab.nn.markers import NormLayer  # noqa: F401
from normlab.nn.batchrenorm import BatchRenorm1d, BatchRenorm2d  # noqa: F401
from normlab.nn.ghost_batchnorm import GhostBatchNorm1d, GhostBatchNorm2d  # noqa: F401
from normlab.nn.frozen_batchnorm import (  # noqa: F401
    FrozenBatchNorm1d,
    FrozenBatchNorm2d,
    FrozenBatchNorm3d,
    freeze_batchnorm,
)
from normlab.nn.wsconv import WSConv2d  # noqa: F401
