"""numba's threading layer for normlab's parallel kernels.

numba picks OpenMP by default where its GNU OpenMP runtime loads; in a process that also
runs PyTorch (which ships its own libgomp) the two runtimes fight: measured, a 1-thread
torch MLP step went from 5 ms to 230 ms once numba's OpenMP pool had started. The
``workqueue`` layer has no such conflict, so it is chosen here unless the user picked a
layer (``NUMBA_THREADING_LAYER``). Imported by every provider module with parallel kernels,
before any of them runs.
"""

from __future__ import annotations

import os

import numba

from normlab.functional import _parallel

if "NUMBA_THREADING_LAYER" not in os.environ and numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"


# ---------------------------------------------------------------- batch-parallel kernels
# numba's serial kernels release the GIL (``nogil=True``), so Python threads can run one
# kernel on disjoint slices of the batch at once: each sample's values are computed by
# the same code as on one thread, so results are bit-identical for any thread count.


thread_count = _parallel.thread_count  # one rule for every parallel kernel


def _part(a, axis, lo, hi):
    if axis is None or a is None:  # passed whole; None: an argument the kernel may omit
        return a
    index = [slice(None)] * a.ndim
    index[axis] = slice(lo, hi)
    return a[tuple(index)]


def over_batch(kernel, axes, least=None):
    """``kernel`` run on ``thread_count()`` slices of the batch at once.

    ``axes[i]`` is the batch axis of positional argument ``i`` (``None``: passed whole,
    e.g. a scalar). The kernel must write only the batch slice it is given. ``least``: a
    function giving the fewest elements (of the first batched argument) worth splitting,
    asked on every call; ``None``: split whatever the size.
    """
    first = next(i for i, ax in enumerate(axes) if ax is not None)

    def run(*args):
        N = args[first].shape[axes[first]]
        k = min(thread_count(), N) if least is None or args[first].size >= least() else 1
        if k <= 1 or _parallel.inside():  # a chunk of a _parallel region: its thread only
            return kernel(*args)
        bounds = [N * i // k for i in range(k + 1)]

        def part(i):
            kernel(*[_part(a, ax, bounds[i], bounds[i + 1]) for a, ax in zip(args, axes)])

        futures = [_parallel.executor(k - 1).submit(part, i) for i in range(1, k)]
        part(0)
        for f in futures:
            f.result()
        return None

    run.__name__ = getattr(kernel, "__name__", "kernel")
    run.__doc__ = getattr(kernel, "__doc__", None)
    run.kernel = kernel
    return run
