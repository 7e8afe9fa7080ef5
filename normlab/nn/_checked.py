"""The checks every Module's ``forward``/``backward`` runs (``Module.__init_subclass__``
wraps them), and the release of the forward's cache after ``backward``."""

from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np

from normlab import backend
from normlab.errors import CallOrderError
from normlab.functional import _parallel
from normlab.validation import check_array, check_dout, is_array

__all__ = ["no_grad", "retain_caches"]


def _checked_forward(forward):
    """Wrap a subclass's ``forward``: check the input is a floating ndarray, record the output.

    The output's shape and device are what ``backward`` later checks ``dout`` against.
    Under ``no_grad()`` the module's cache is dropped when its (outermost) forward returns.
    """
    if getattr(forward, "_normlab_checked", False):
        return forward

    @functools.wraps(forward)
    def wrapper(self, x, *args, **kwargs):
        check_array(x, type(self).__name__, allow_empty=True)
        d = self.__dict__
        depth = d.get("_forward_depth", 0)  # > 0: a subclass's forward calling super()'s
        d["_forward_depth"] = depth + 1
        try:
            with _parallel.blas_single():  # one BLAS setting per model pass, not per conv
                out = forward(self, x, *args, **kwargs)
        finally:
            d["_forward_depth"] = depth
        _forward_done(self, out, depth)
        return out

    wrapper._normlab_checked = True
    return wrapper


def _forward_done(module, out, depth: int = 0) -> None:
    """What a checked ``forward`` records when it returns ``out``: the output's shape and
    device for ``backward``; under ``no_grad()`` (outermost call) the cache is dropped.
    Also called for the modules a fused forward ran (``nn._fusion``)."""
    d = module.__dict__
    d["_out_meta"] = ((out.shape, "cpu" if isinstance(out, np.ndarray)
                       else backend.device_of(out)) if is_array(out) else None)
    if _flags.no_grad and depth == 0:  # nothing will run backward: the cache goes now
        module._cache = None
        d["_cache_freed"] = "no_grad"
    else:
        d["_cache_freed"] = False


class _Flags(threading.local):
    retain = False  # inside ``retain_caches()`` on this thread
    no_grad = False  # inside ``no_grad()`` on this thread


_flags = _Flags()


@contextlib.contextmanager
def no_grad():
    """Forward passes that keep no cache (PyTorch's ``torch.no_grad()``), for inference.

    Each module's cache is dropped as its ``forward`` returns, so every activation leaves
    memory as soon as the next layer has used it (and the allocator hands the same, warm
    pages to the next layer); ``backward`` after such a forward raises. Independent of
    ``train()``/``eval()``, as in PyTorch: eval forward under ``no_grad`` is inference.
    """
    old = _flags.no_grad
    _flags.no_grad = True
    try:
        yield
    finally:
        _flags.no_grad = old


@contextlib.contextmanager
def retain_caches():
    """Keep the forward caches through ``backward`` (PyTorch's ``retain_graph=True``).

    By default a module's ``backward`` frees the cache its ``forward`` saved once it has
    used it, as PyTorch frees its graph: the activations of the layers already done leave
    memory while the backward runs on, and a second ``backward`` of one forward raises.
    Inside this block (on this thread) caches stay, so ``backward`` may run again.
    """
    old = _flags.retain
    _flags.retain = True
    try:
        yield
    finally:
        _flags.retain = old


def _checked_backward(backward):
    """Wrap a subclass's ``backward``: ``dout`` must match the forward output before any
    kernel; afterwards the module's cache is freed (``retain_caches``)."""
    if getattr(backward, "_normlab_checked", False):
        return backward

    @functools.wraps(backward)
    def wrapper(self, dout=1.0, *args, **kwargs):
        d = self.__dict__
        if d.get("_cache_freed") == "no_grad":
            raise CallOrderError(
                f"{type(self).__name__}: expected a forward() outside normlab.nn.no_grad() "
                "before backward(), got a forward under no_grad(), which keeps no cache. Run "
                "the forward again outside the no_grad() block."
            )
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
            with _parallel.blas_single():
                result = backward(self, dout, *args, **kwargs)
        finally:
            d["_backward_depth"] = depth
        if depth == 0 and not _flags.retain:
            self._cache = None
            d["_cache_freed"] = True
        return result

    wrapper._normlab_checked = True
    return wrapper
