"""The checks every Module's ``forward``/``backward`` runs (``Module.__init_subclass__``
wraps them), and the release of the forward's cache after ``backward``."""

from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np

from normlab import backend
from normlab.errors import CallOrderError
from normlab.validation import check_array, check_dout, is_array

__all__ = ["retain_caches"]


def _checked_forward(forward):
    """Wrap a subclass's ``forward``: check the input is a floating ndarray, record the output.

    The output's shape and device are what ``backward`` later checks ``dout`` against.
    """
    if getattr(forward, "_normlab_checked", False):
        return forward

    @functools.wraps(forward)
    def wrapper(self, x, *args, **kwargs):
        check_array(x, type(self).__name__, allow_empty=True)
        out = forward(self, x, *args, **kwargs)
        self.__dict__["_out_meta"] = ((out.shape, "cpu" if isinstance(out, np.ndarray)
                                       else backend.device_of(out)) if is_array(out) else None)
        self.__dict__["_cache_freed"] = False
        return out

    wrapper._normlab_checked = True
    return wrapper


class _Retain(threading.local):
    flag = False  # inside ``retain_caches()`` on this thread


_retain = _Retain()


@contextlib.contextmanager
def retain_caches():
    """Keep the forward caches through ``backward`` (PyTorch's ``retain_graph=True``).

    By default a module's ``backward`` frees the cache its ``forward`` saved once it has
    used it, as PyTorch frees its graph: the activations of the layers already done leave
    memory while the backward runs on, and a second ``backward`` of one forward raises.
    Inside this block (on this thread) caches stay, so ``backward`` may run again.
    """
    old = _retain.flag
    _retain.flag = True
    try:
        yield
    finally:
        _retain.flag = old


def _checked_backward(backward):
    """Wrap a subclass's ``backward``: ``dout`` must match the forward output before any
    kernel; afterwards the module's cache is freed (``retain_caches``)."""
    if getattr(backward, "_normlab_checked", False):
        return backward

    @functools.wraps(backward)
    def wrapper(self, dout=1.0, *args, **kwargs):
        d = self.__dict__
        if d.get("_cache_freed"):
            raise CallOrderError(
                f"{type(self).__name__}: expected a forward() before each backward(), got a "
                "second backward() of one forward pass; backward() frees the forward's cache "
                "(as PyTorch frees its graph). Call forward() again, or run the first "
                "backward() inside normlab.nn.retain_caches()."
            )
        meta = d.get("_out_meta")
        if meta is None:
            self._require_cache()  # backward before forward: the call-order error
        else:
            dout = check_dout(dout, meta[0], type(self).__name__, device=meta[1])
        depth = d.get("_backward_depth", 0)  # > 0: a subclass's backward calling super()'s
        d["_backward_depth"] = depth + 1
        try:
            result = backward(self, dout, *args, **kwargs)
        finally:
            d["_backward_depth"] = depth
        if depth == 0 and not _retain.flag:
            self._cache = None
            d["_cache_freed"] = True
        return result

    wrapper._normlab_checked = True
    return wrapper
