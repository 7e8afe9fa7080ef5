"""Worker of test_faults: rank 1 fails at step 2 while the others keep communicating.

mpiexec -n K python -m tests.distributed._fault_worker raise|die|exit

``raise``: an uncaught exception (init() installed the abort-on-error hook);
``die``: SIGKILL; ``exit``: os._exit(3) without finalising MPI. Without the fault the
other ranks would wait forever in their next all-reduce.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np

from normlab.distributed import init


def main(mode: str) -> None:
    comm = init()
    for step in range(1000):
        if comm.rank == 1 and step == 2:
            if mode == "raise":
                raise RuntimeError("boom at step 2\nsecond line of the message")
            if mode == "die":
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "exit":
                os._exit(3)
        comm.allreduce(np.ones(3))
    print(f"rank {comm.rank} finished all steps", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
