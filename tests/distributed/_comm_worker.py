"""Worker of test_comm: every collective of MPICommunicator, results written per rank.

mpiexec -n K python -m tests.distributed._comm_worker DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from normlab.distributed import MPICommunicator, init, launched_by_mpiexec


def main(folder: str) -> None:
    comm = init()
    r = comm.rank
    rng = np.random.default_rng(r)
    mine = rng.standard_normal((4, 3))  # rank r's values, rebuilt by the test
    out = {
        "summed": comm.allreduce(mine),
        "summed_int": comm.allreduce(np.arange(5, dtype=np.int64) * (r + 1)),
        "gathered": comm.allgather(mine),
        "bcast_array": comm.broadcast(np.full(3, float(r)), root=comm.size - 1),
        "bcast_or_none": comm.broadcast(np.arange(4.0) if r == 0 else None),
    }
    obj = comm.broadcast({"from": r, "list": [1, 2]} if r == 0 else None)
    comm.barrier()
    meta = {"rank": r, "size": comm.size, "is_mpi": isinstance(comm, MPICommunicator),
            "launched": launched_by_mpiexec(), "obj": obj, "same": init() is comm,
            "is_main": comm.is_main}
    try:
        comm.broadcast(np.zeros(2), root=comm.size)
    except ValueError as e:
        meta["root_error"] = str(e)
    np.savez(Path(folder) / f"comm-{r}.npz", **out)
    (Path(folder) / f"comm-{r}.json").write_text(json.dumps(meta))


if __name__ == "__main__":
    main(sys.argv[1])
