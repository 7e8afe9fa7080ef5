"""Scratch buffers of the Winograd drivers (``_winograd.run_conv3x3``,
``run_weight_grad3x3``, ``_winograd_backward.backward3x3``): one flat allocation per call
for the transforms' planes (V, M, D), one copy per thread or one slot per batch chunk, with
the planes a little further apart than their size.
"""

from __future__ import annotations

__all__ = ["PLANE_PAD", "scratch", "slot", "planes", "offset"]

# Elements between the tile-position planes of V, M and D beyond their size: planes a
# multiple of 4 KiB apart (e.g. 32 channels x 14 samples x 16 tiles) all fall into the same
# L1 sets, and the transforms touch 4-6 planes at once (padding them measured 5-25%
# faster transforms).
PLANE_PAD = 16


def scratch(xp, dtype, k, per_sample, chunks, whole=False, copies=1):
    """One flat buffer for ``k`` planes of ``per_sample`` elements per sample, for the
    largest chunk (reused by every chunk through ``planes``; ``copies`` of it side by side,
    one per thread, see ``slot``) or, with ``whole``, for every chunk side by side. One
    allocation per call instead of one per chunk: freeing and reallocating ~1 MiB blocks
    made glibc return and re-fault the pages."""
    if whole:
        return xp.empty(k * (per_sample * chunks[-1].stop + PLANE_PAD * len(chunks)), dtype=dtype)
    return xp.empty(copies * slot(k, per_sample, chunks, 1), dtype=dtype)


def slot(k, per_sample, chunks, i):
    """Where thread ``i``'s copy starts in a ``scratch(..., copies=...)`` buffer."""
    n = chunks[0].stop - chunks[0].start  # the largest: batch_chunks makes the last shorter
    return i * k * (per_sample * n + PLANE_PAD)


def planes(buf, k, shape, offset=0):
    """``(k,) + shape`` view of ``buf[offset:]``: ``k`` contiguous planes, each
    ``PLANE_PAD`` elements further from the next than its size."""
    size = 1
    for d in shape:
        size *= d
    a = buf[offset:offset + k * (size + PLANE_PAD)].reshape(k, size + PLANE_PAD)
    return a[:, :size].reshape((k,) + tuple(shape))


def offset(k, per_sample, i, sl):
    """Where chunk ``i`` (slice ``sl``) starts in a ``scratch(..., whole=True)`` buffer."""
    return k * (per_sample * sl.start + PLANE_PAD * i)
