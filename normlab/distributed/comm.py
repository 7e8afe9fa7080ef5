"""Communicators: the MPI world of an ``mpiexec`` launch, or a single process.

Both classes offer the same small API over NumPy arrays (``rank``, ``size``,
``allreduce`` (sum), ``allgather``, ``broadcast``, ``barrier``, ``abort``), so that
SyncBatchNorm and the data-parallel trainer run unchanged in one process. ``init()``
chooses: MPI when the process was started by ``mpiexec`` (the launcher's environment
says so), a :class:`SingleProcessCommunicator` otherwise. ``mpi4py`` is imported only
in the first case.

Determinism. Every rank must end a step with bit-identical parameters, so a reduction
must give the same bits on every rank. ``allreduce`` therefore reduces to rank 0 in
MPI's fixed order and broadcasts that one result (``MPI_Reduce`` + ``MPI_Bcast``); the
MPI standard only *recommends* that ``MPI_Allreduce`` return identical bits everywhere.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from normlab.errors import NormlabRuntimeError, NormlabTypeError, NormlabValueError
from normlab import backend

__all__ = ["Communicator", "SingleProcessCommunicator", "MPICommunicator", "init",
           "launched_by_mpiexec", "DistributedError"]

# Set by MPICH's hydra (PMI_*), Open MPI (OMPI_*), Intel MPI / MVAPICH (PMI_*, MPI_LOCAL*).
_LAUNCH_VARS = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS",
                "PMIX_RANK")

_world = None  # the communicator returned by init(), built once per process


class DistributedError(NormlabRuntimeError):
    """A distributed run cannot go on (MPI missing, ranks out of step)."""


def launched_by_mpiexec() -> bool:
    """True if the environment says this process was started by ``mpiexec``/``mpirun``."""
    return any(v in os.environ for v in _LAUNCH_VARS)


def _as_array(owner: str, array):
    if not hasattr(array, "dtype") or not hasattr(array, "shape"):
        raise NormlabTypeError(f"{owner}: expected a NumPy array, got {type(array).__name__}. "
                        "Wrap numbers with np.asarray(...).")
    if np.dtype(array.dtype).kind not in "biuf":
        raise NormlabTypeError(f"{owner}: expected a numeric array, got dtype {array.dtype}.")
    return array


class Communicator:
    """What every communicator offers; see the module docstring.

    Attributes
    ----------
    rank : int
        This process's index in ``[0, size)``.
    size : int
        Number of processes.
    """

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that logs and writes files."""
        return self.rank == 0

    def allreduce(self, array):
        """Elementwise sum over ranks; a new array, the same bits on every rank."""
        raise NotImplementedError

    def allgather(self, array):
        """``(size, *array.shape)`` array stacking every rank's ``array`` in rank order.

        Every rank must pass the same shape and dtype.
        """
        raise NotImplementedError

    def broadcast(self, obj, root: int = 0):
        """Rank ``root``'s ``obj`` (any picklable object) on every rank; others pass anything."""
        raise NotImplementedError

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        raise NotImplementedError

    def abort(self, code: int = 1) -> None:  # pragma: no cover - ends the process
        """End every rank of the job now with exit status ``code``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class SingleProcessCommunicator(Communicator):
    """The communicator of a run without ``mpiexec``: rank 0 of 1; collectives copy."""

    rank = 0
    size = 1

    def allreduce(self, array):
        return _as_array("allreduce", array).copy()

    def allgather(self, array):
        return _as_array("allgather", array)[None].copy()

    def broadcast(self, obj, root: int = 0):
        if root != 0:
            raise NormlabValueError(f"broadcast: expected root in [0, 1), got {root!r}.")
        return obj

    def barrier(self) -> None:
        return None

    def abort(self, code: int = 1) -> None:  # pragma: no cover - ends the process
        sys.stderr.flush()
        os._exit(int(code))


class MPICommunicator(Communicator):
    """An ``mpi4py`` communicator (``MPI.COMM_WORLD`` by default) for NumPy arrays.

    Arrays travel as contiguous buffers (the uppercase, pickle-free mpi4py calls);
    CuPy arrays are moved to the host first and the result back to the device.
    """

    def __init__(self, comm=None):
        try:
            from mpi4py import MPI  # noqa: PLC0415 (imported only when used)
        except ImportError as e:
            raise DistributedError(
                f"normlab.distributed: expected mpi4py with an MPI library, got {e}. Install "
                "it with pip install 'normlab[mpi]' (mpi4py and the mpich wheel).") from None
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = int(self.comm.Get_rank())
        self.size = int(self.comm.Get_size())

    def _host(self, owner: str, array):
        _as_array(owner, array)
        return np.ascontiguousarray(backend.to_numpy(array))

    def _back(self, result, like):
        return backend.to_device(result, backend.device_of(like))

    def allreduce(self, array):
        send = self._host("allreduce", array)
        out = np.empty_like(send)
        self.comm.Reduce(send, out if self.rank == 0 else None, op=self._MPI.SUM, root=0)
        self.comm.Bcast(out, root=0)
        return self._back(out, array)

    def allgather(self, array):
        send = self._host("allgather", array)
        out = np.empty((self.size,) + send.shape, dtype=send.dtype)
        self.comm.Allgather(send, out)
        return self._back(out, array)

    def broadcast(self, obj, root: int = 0):
        if not 0 <= int(root) < self.size:
            raise NormlabValueError(f"broadcast: expected root in [0, {self.size}), got {root!r}.")
        # pickled (arrays as out-of-band buffers): the other ranks may pass anything, e.g.
        # None, as in ``broadcast(arr if rank == 0 else None)``
        return self.comm.bcast(obj, root=root)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:  # pragma: no cover - ends the process
        sys.stdout.flush()
        sys.stderr.flush()
        # mpiexec forwards each rank's output through a pipe; once Abort starts it kills
        # the job, and a line still in that pipe is lost. A moment lets the error arrive.
        time.sleep(0.25)
        try:
            self.comm.Abort(int(code))
        finally:  # Abort may return while mpiexec is already tearing the job down
            os._exit(int(code))


def say(line: str) -> None:
    """Write one line to stderr in one call, so lines of several ranks do not interleave."""
    sys.stderr.flush()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _abort_on_uncaught(comm: Communicator) -> None:
    """Make an exception that escapes on one rank end the whole job (others would hang).

    Prints the traceback, then one line naming the rank and the error, then ``MPI_Abort``: ``mpiexec``
    then stops every other rank, whatever collective it is waiting in.
    """
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        line = str(value).splitlines()[0] if str(value) else ""
        say(f"normlab.distributed: rank {comm.rank} of {comm.size} failed: "
            f"{kind.__name__}: {line}")
        comm.abort(1)

    sys.excepthook = hook


def init(*, abort_on_error: bool = True) -> Communicator:
    """The communicator of this launch (built once; later calls return the same object).

    Under ``mpiexec`` (detected from the launcher's environment variables) it is an
    :class:`MPICommunicator` over ``MPI.COMM_WORLD``; otherwise a
    :class:`SingleProcessCommunicator`, and ``mpi4py`` is not imported.

    Parameters
    ----------
    abort_on_error : bool, default True
        With more than one process, an uncaught exception on any rank prints its error
        on one line and calls ``MPI_Abort``, so the other ranks stop instead of waiting
        forever in their next collective.

    Raises
    ------
    DistributedError
        Under ``mpiexec`` without a working ``mpi4py``.
    """
    global _world
    if _world is None:
        if launched_by_mpiexec():
            _world = MPICommunicator()
            if abort_on_error and _world.size > 1:
                _abort_on_uncaught(_world)
        else:
            _world = SingleProcessCommunicator()
    return _world
