"""Cases for SyncBatchNorm (single-process communicator: it must then be BatchNorm).

Kept apart from ``norm.py`` so that the contract suite and ``normlab gradcheck`` cover
the distributed layer's forward/backward code path without MPI.
"""

from __future__ import annotations

from normlab import nn
from normlab.distributed import SingleProcessCommunicator
from normlab.nn.cases.norm import _case


def _sync(C, **kw):
    return lambda: nn.SyncBatchNorm(C, comm=SingleProcessCommunicator(), **kw)


CASES = [
    _case("SyncBatchNorm(2D input)", _sync(5), (4, 5), pre_bias=False),
    _case("SyncBatchNorm(3D input, momentum=None)", _sync(3, momentum=None), (3, 3, 4)),
    _case("SyncBatchNorm(4D input)", _sync(2), (3, 2, 3, 3)),
    _case("SyncBatchNorm(5D input, affine=False)", _sync(2, affine=False), (2, 2, 2, 2, 3)),
]
