"""Communicators: the MPI world on 3 real processes, and the single-process default."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from normlab.distributed import comm as comm_mod
from normlab.distributed import (DistributedError, MPICommunicator,
                                 SingleProcessCommunicator, init, launched_by_mpiexec)

from tests.distributed._mpi import ROOT, launch


def test_mpi_communicator_collectives_on_three_processes(tmp_path):
    K = 3
    launch(K, "_comm_worker", tmp_path)
    parts = [np.random.default_rng(r).standard_normal((4, 3)) for r in range(K)]
    outs = [dict(np.load(tmp_path / f"comm-{r}.npz")) for r in range(K)]
    metas = [json.loads((tmp_path / f"comm-{r}.json").read_text()) for r in range(K)]
    for r, (o, m) in enumerate(zip(outs, metas)):
        assert m == {"rank": r, "size": K, "is_mpi": True, "launched": True,
                     "obj": {"from": 0, "list": [1, 2]}, "same": True, "is_main": r == 0,
                     "root_error": "broadcast: expected root in [0, 3), got 3."}
        np.testing.assert_allclose(o["summed"], sum(parts), rtol=1e-15)
        np.testing.assert_array_equal(o["summed"], outs[0]["summed"])  # same bits everywhere
        np.testing.assert_array_equal(o["summed_int"], np.arange(5) * 6)
        np.testing.assert_array_equal(o["gathered"], np.stack(parts))
        np.testing.assert_array_equal(o["bcast_array"], np.full(3, K - 1.0))
        np.testing.assert_array_equal(o["bcast_or_none"], np.arange(4.0))


def test_single_process_communicator():
    comm = SingleProcessCommunicator()
    a = np.arange(6.0).reshape(2, 3)
    s = comm.allreduce(a)
    assert s is not a and np.array_equal(s, a)
    g = comm.allgather(a)
    assert g.shape == (1, 2, 3) and np.array_equal(g[0], a)
    assert comm.broadcast({"x": 1}) == {"x": 1}
    assert comm.barrier() is None
    assert (comm.rank, comm.size, comm.is_main) == (0, 1, True)
    assert repr(comm) == "SingleProcessCommunicator(rank=0, size=1)"
    with pytest.raises(ValueError, match="broadcast: expected root in \\[0, 1\\), got 1"):
        comm.broadcast(a, root=1)
    with pytest.raises(TypeError, match="allreduce: expected a NumPy array, got list"):
        comm.allreduce([1.0, 2.0])
    with pytest.raises(TypeError, match="allgather: expected a numeric array, got dtype"):
        comm.allgather(np.array(["a"]))


def test_init_without_mpiexec_is_single_process_and_imports_no_mpi():
    code = ("import sys; from normlab import nn, train, distributed; "
            "c = distributed.init(); assert type(c).__name__ == 'SingleProcessCommunicator'; "
            "assert distributed.init() is c; nn.SyncBatchNorm(2); "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'; print('ok')")
    env = {k: v for k, v in __import__("os").environ.items()
           if not k.startswith(("PMI_", "OMPI_", "PMIX_", "MPI_LOCAL"))}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_init_under_mpiexec_without_mpi4py_says_how_to_install(monkeypatch):
    monkeypatch.setattr(comm_mod, "_world", None)
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails as if not installed
    assert launched_by_mpiexec()
    with pytest.raises(DistributedError, match="expected mpi4py with an MPI library, got .*"
                                               "pip install 'normlab\\[mpi\\]'"):
        init()
    with pytest.raises(DistributedError, match="mpi4py"):
        MPICommunicator()
