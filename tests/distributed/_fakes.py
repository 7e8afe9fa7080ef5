"""Stand-in communicators for single-process tests of the collectives' users."""

from __future__ import annotations

import numpy as np

from normlab.distributed import Communicator


class CountingComm(Communicator):
    """``copies`` identical ranks seen from rank ``rank``: sums are ``copies * x``.

    Counts the calls, so tests can check how many messages a step sends.
    """

    def __init__(self, size: int = 1, rank: int = 0):
        self.size, self.rank = size, rank
        self.calls = {"allreduce": 0, "allgather": 0, "broadcast": 0, "barrier": 0}

    def allreduce(self, array):
        self.calls["allreduce"] += 1
        return np.asarray(array) * self.size

    def allgather(self, array):
        self.calls["allgather"] += 1
        return np.stack([np.asarray(array)] * self.size)

    def broadcast(self, obj, root=0):
        self.calls["broadcast"] += 1
        return obj

    def barrier(self):
        self.calls["barrier"] += 1
