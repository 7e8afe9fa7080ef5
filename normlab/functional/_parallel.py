"""Batch chunks spread over threads, with results bit-identical for any thread count.

Conv on CPU already walks the batch in cache-sized chunks (``_kernels.batch_chunks``); each
chunk's work (transforms, products, output) depends on that chunk alone, and every chunk
is computed by the same code whichever thread runs it. ``run(n, fn, threads)`` calls
``fn(i, slot)`` for every chunk ``i``: the calling thread and ``threads - 1`` pool threads
take the next unclaimed chunk until none is left (dynamic: a thread the OS parks, say on a
machine shared with other work, delays at most the chunk it holds, never a fixed half of
the batch). ``slot`` (0 .. threads-1) names the thread, for its own scratch buffers. Sums
over chunks (the weight gradient) are made by the caller in chunk order afterwards, so
nothing depends on which thread ran what.

One synchronisation per conv call instead of one per compiled kernel per chunk
(``compiled._threads.over_batch``): measured on ResNet-20 (batch 128, 2 threads, 2 cores
busy with other work) the per-kernel split made a step 20-35 % slower than 1 thread.

Inside a region: NumPy's BLAS runs 1 thread (each chunk's products are small; two
threads each asking BLAS for two would oversubscribe the cores; ``blas_single``), and
``inside()`` is true, so batch-parallel compiled kernels run serially on the chunk they
are given. Plain Python threads: the compiled kernels and BLAS release the GIL.
"""

from __future__ import annotations

import itertools
import os
import threading

from normlab import backend

__all__ = ["thread_count", "threads_for", "inside", "run", "blas_single", "InOrderSum"]

_local = threading.local()
_pool = None
_pool_size = 0
_blas = None  # NumPy's BLAS controllers (threadpoolctl), found on first use


def _set_count():
    """``dispatch.get_num_threads()``; dispatch is above this module, so it is imported on
    first use (a function-level import on every call cost 2-3 us: every kernel asks)."""
    global _set_count
    from normlab.functional import dispatch  # noqa: PLC0415

    _set_count = dispatch.get_num_threads
    return _set_count()


def thread_count() -> int:
    """Threads normlab's own parallel work uses: ``normlab.set_num_threads``'s count; else
    ``NUMBA_NUM_THREADS`` or ``OMP_NUM_THREADS`` from the environment (so a process started
    with ``OMP_NUM_THREADS=1``, as for torch, stays on one thread); else every CPU."""
    n = _set_count()
    if n is not None:
        return int(n)
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def inside() -> bool:
    """Whether the calling thread is running a chunk of a ``run`` region."""
    return getattr(_local, "inside", False)


def threads_for(a, n_chunks: int) -> int:
    """Threads a ``run`` over ``n_chunks`` chunks of array ``a`` uses: 1 for CuPy arrays
    (the GPU takes the whole batch) and inside a region (no nesting)."""
    if n_chunks <= 1 or inside() or backend.is_cupy_array(a):
        return 1
    return max(1, min(thread_count(), n_chunks))


def executor(workers: int):
    """The process's one worker pool (at least ``workers`` threads), shared with
    ``compiled._threads.over_batch``."""
    global _pool, _pool_size
    if _pool is None or _pool_size < workers:
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="normlab")
        _pool_size = workers
    return _pool


def _blas_controllers():
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415

            libs = [lib for lib in ThreadpoolController().lib_controllers
                    if lib.user_api == "blas"]
            ours = [lib for lib in libs if "numpy" in str(lib.filepath).lower()]
            _blas = ours or libs
        except Exception:  # noqa: BLE001 (no threadpoolctl: BLAS keeps its count)
            _blas = []
    return _blas


# Fewest elements for which a memory-bound pass (batch norm's, the ReLU selects) is split
# over threads: starting the threads costs 70-150 us (a ``run`` region or a numba prange
# launch), and below about a million elements one thread is done sooner. Measured, 2
# threads, warm arrays: ReLU backward's select 131072 elements 77 us (17 serial), 524288
# 315 (224), 1048576 344 (433), 2097152 490 (856); batch norm's normalize 131072 73 (19),
# 524288 216 (163), 1048576 279 (289), 2097152 422 (589).
MIN_ELEMENTS = 1 << 20


class _BlasHold:
    """The one ``blas_single()`` context (see there): reentrant, across threads."""

    def __init__(self):
        self.depth = 0  # nested blocks open (any thread)
        self.restore: list = []  # (BLAS library, its count) the outermost block set to 1
        self.lock = threading.Lock()

    def __enter__(self):
        with self.lock:
            self.depth += 1
            if self.depth == 1 and thread_count() > 1:
                counts = [(lib, lib.get_num_threads()) for lib in _blas_controllers()]
                self.restore = [(lib, k) for lib, k in counts if k != 1]
                for lib, _ in self.restore:
                    lib.set_num_threads(1)
        return self

    def __exit__(self, *exc) -> bool:
        with self.lock:
            self.depth -= 1
            if self.depth == 0:
                for lib, k in self.restore:
                    lib.set_num_threads(k)
                self.restore = []
        return False


_hold = _BlasHold()


def blas_single() -> _BlasHold:
    """NumPy's BLAS on one thread for the ``with`` block, its count restored when the
    outermost block ends (reentrant; a no-op where normlab's ``thread_count()`` is 1).

    Every ``run`` region is one: its chunks' products are small and run side by side on
    normlab's threads. Each module's outermost ``forward``/``backward`` is one too
    (``nn._checked``), so a whole model pass sets the count once instead of once per
    region: OpenBLAS wakes its workers when its count goes back up, and they spin on the
    cores normlab's threads need. Measured (ResNet-20 batch 128, 2 threads, wall): the
    1 -> 2 -> 1 toggle around each of a step's ~40 regions cost 45 ms of ~430, and
    products run on 2 BLAS threads between regions (the 1x1 downsample convs) left a
    worker spinning: 16 % of the step's CPU samples in ``blas_thread_server``. Every
    module call enters it, so it is a plain object, not a generator (1.2 -> 0.5 us a
    nested block).
    """
    return _hold


class InOrderSum:
    """``parts[0] + parts[1] + ...`` added into ``parts[0]`` (a fresh array the caller
    owns) in chunk order, as the parts arrive from any thread: ``add(i, part)`` keeps only
    the parts that came before their turn, so at most a few are alive at once (they were
    all kept to the end: ResNet-20's 64-channel F(4x4) weight gradients are 0.6 MiB per
    chunk, ResNet-18's 512-channel ones 9.4 MiB). The additions are the same, in the same
    order, whichever thread made each part: the same bits. ``total``: ``None`` for no parts.
    No zeroed buffer besides the parts."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next = 0  # the index whose turn it is
        self._early: dict = {}
        self.total = None

    def add(self, i: int, part) -> None:
        with self._lock:
            self._early[i] = part
            while self._next in self._early:
                p = self._early.pop(self._next)
                if self.total is None:
                    self.total = p
                else:
                    self.total += p
                self._next += 1


def run(n: int, fn, threads: int) -> None:
    """``fn(i, slot)`` for ``i`` in ``range(n)`` on ``threads`` threads (see the module
    docstring); exceptions from any thread propagate once every thread has stopped."""
    if threads <= 1:
        for i in range(n):
            fn(i, 0)
        return
    counter = itertools.count()  # next() is atomic under the GIL

    def work(slot):
        _local.inside = True
        try:
            for i in iter(counter.__next__, None):
                if i >= n:
                    return
                fn(i, slot)
        finally:
            _local.inside = False

    with blas_single():
        futures = [executor(threads - 1).submit(work, s) for s in range(1, threads)]
        try:
            work(0)
        finally:
            for f in futures:
                f.exception()  # wait for every thread before raising
        for f in futures:
            f.result()
