"""Data-parallel training over MPI (``mpi4py`` with the ``mpich`` wheel).

``init()`` gives the communicator of the current launch: the MPI world under ``mpiexec``,
a single-process communicator otherwise (``mpi4py`` is imported only in the first case).
``nn.SyncBatchNorm`` merges batch statistics across its ranks;
``normlab.train.DataParallelTrainer`` shards each global batch, all-reduces gradients in
buckets and lets only rank 0 write. See ``docs/distributed.md``.

This package sits at the bottom of normlab (beside ``backend``): it imports only NumPy
and ``normlab.backend``, so ``nn`` and ``train`` may use it.
"""

from normlab.distributed.buckets import GradientBuckets, broadcast_module  # noqa: F401
from normlab.distributed.comm import (  # noqa: F401
    Communicator,
    DistributedError,
    MPICommunicator,
    SingleProcessCommunicator,
    init,
    launched_by_mpiexec,
)
from normlab.distributed.launch import (  # noqa: F401
    find_mpiexec,
    launch_env,
    mpi_problem,
    mpiexec_command,
    run_mpiexec,
)
from normlab.distributed.sampler import ShardedLoader, shard_bounds  # noqa: F401

__all__ = [
    "Communicator", "SingleProcessCommunicator", "MPICommunicator", "DistributedError",
    "init", "launched_by_mpiexec", "GradientBuckets", "broadcast_module", "ShardedLoader",
    "shard_bounds", "find_mpiexec", "mpi_problem", "launch_env", "mpiexec_command",
    "run_mpiexec",
]
