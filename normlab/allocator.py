"""glibc's malloc thresholds for a training process: keep freed activations for reuse.

A training step allocates and frees the same large arrays (activations, caches,
gradients, conv columns) every step. glibc serves each allocation above its mmap
threshold with a fresh ``mmap`` and returns it with ``munmap`` when freed, and gives
the top of its heap back to the kernel past its trim threshold; both thresholds start
at 128 KiB and then move with what the process has freed (up to 32 MiB). So, depending
on what the process happened to free earlier, each step page-faults and zeroes its
working set again, and with two threads the faults queue on the process's memory map.
Measured here (2-core Xeon, one process per figure, best of 15 steps, wall clock, ms,
glibc's default -> ``tune_allocator()``'s thresholds): ResNet-20 b128 train step at 2
threads 354.5 -> 306.5, at 1 thread 505.8 -> 466.1; LeNet b256 at 2 threads 26.3 ->
20.5, at 1 thread 30.2 -> 25.8. PyTorch's steps gain as much in the same process (its
CPU allocator uses malloc too: ResNet-20 351.0 -> 317.5, LeNet 29.1 -> 20.4). Only the
two together pay: a high mmap threshold alone left LeNet at 38 ms (the heap's top was
trimmed and faulted back), a high trim threshold alone made ResNet-20 494 ms (every large
array still mmapped).

The cost is memory kept: up to ``trim_threshold`` of freed heap stays with the process.
A library should not change a process-wide allocator behind its user's back, so importing
normlab changes nothing: the ``normlab`` command calls ``tune_allocator()`` at start, and
a script may call it too. Environment variables win: where ``MALLOC_MMAP_THRESHOLD_`` or
``MALLOC_TRIM_THRESHOLD_`` is set (``benchmarks/bench_models.py --memory`` sets one to
measure working sets), nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from normlab.errors import NormlabValueError

__all__ = ["tune_allocator", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 32 * 2**20  # glibc's largest on 64-bit systems
TRIM_THRESHOLD = 64 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _libc():
    """glibc's shared library, or None (another C library, or none found)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return None
    return libc


def tune_allocator(mmap_threshold: int = MMAP_THRESHOLD,
                   trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds (bytes) so that freed arrays are reused.

    Returns True where both were set; False where nothing was changed: not glibc, or the
    environment sets either threshold (its values stand).
    """
    for name, v, top in (("mmap_threshold", mmap_threshold, MMAP_THRESHOLD),
                         ("trim_threshold", trim_threshold, 2**31 - 1)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top:
            raise NormlabValueError(f"tune_allocator: expected {name} to be an int of bytes "
                                    f"in [0, {top}], got {v!r}.")
    if any(name in os.environ for name in _ENV):
        return False
    libc = _libc()
    if libc is None:
        return False
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and \
        bool(libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
