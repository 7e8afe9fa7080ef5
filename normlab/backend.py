"""Array backend: one code path for NumPy (CPU) and CuPy (GPU).

Functional code never calls ``np.*`` on data arrays. It asks for the array module of
its inputs, ``xp = namespace(x)``, and calls ``xp.*``. Tricks that differ between the
two libraries (scatter-add, strided window views) live here, each with a NumPy and a
CuPy branch. CuPy is optional and imported lazily: importing normlab never imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from normlab.errors import NormlabRuntimeError, NormlabTypeError, NormlabValueError

__all__ = [
    "namespace",
    "is_cupy_array",
    "cupy_available",
    "device_of",
    "to_device",
    "to_numpy",
    "scatter_add",
    "sliding_window_view",
]

_cupy: Any = None
_cupy_checked = False


def _get_cupy():
    """Return the ``cupy`` module, or ``None`` if it cannot be imported."""
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            _cupy = importlib.import_module("cupy")
        except Exception:  # ImportError, or a CUDA driver error raised at import
            _cupy = None
    return _cupy


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    cp = _get_cupy()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def is_cupy_array(a) -> bool:
    """True for a ``cupy.ndarray``; never imports CuPy to find out."""
    return type(a).__module__.split(".")[0] == "cupy"


def namespace(*arrays):
    """Array module (``numpy`` or ``cupy``) of the given arrays.

    ``None`` and Python scalars are ignored. Mixing NumPy and CuPy arrays raises.

    Raises
    ------
    TypeError
        If NumPy and CuPy arrays are mixed.
    """
    for a in arrays:  # the hot path, every op asks: a loop, not all() over a generator
        if type(a) is not np.ndarray:
            break
    else:
        return np
    kinds = {is_cupy_array(a) for a in arrays if a is not None and hasattr(a, "shape")}
    if len(kinds) > 1:
        raise NormlabTypeError(
            "namespace: expected arrays on one device, got a mix of NumPy (CPU) and CuPy "
            "(GPU) arrays. Move them with normlab.backend.to_device(a, 'cuda'|'cpu')."
        )
    if kinds == {True}:
        return _get_cupy()
    return np


def device_of(a) -> str:
    """``"cuda"`` for a CuPy array, ``"cpu"`` otherwise."""
    return "cuda" if is_cupy_array(a) else "cpu"


def _check_device(device: str) -> str:
    if device not in ("cpu", "cuda"):
        raise NormlabValueError(f"to_device: expected device 'cpu' or 'cuda', got {device!r}.")
    return device


def to_device(a, device: str):
    """Copy ``a`` to ``device`` (``"cpu"`` or ``"cuda"``); no copy if it is already there."""
    _check_device(device)
    if a is None:
        return None
    if device == "cpu":
        return to_numpy(a)
    cp = _get_cupy()
    if cp is None:
        raise NormlabRuntimeError(
            "to_device: expected CuPy to be installed for device 'cuda', got ImportError. "
            "Install it with `pip install normlab[gpu]`."
        )
    return cp.asarray(a)


def to_numpy(a):
    """A NumPy array with the data of ``a`` (a NumPy or CuPy array, or array-like)."""
    if is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def scatter_add(target, indices, values) -> None:
    """In place: ``target[indices] += values`` with repeated indices accumulated.

    NumPy's fancy-index ``+=`` drops repeats; this is ``np.add.at`` on NumPy and
    ``cupyx.scatter_add`` on CuPy.
    """
    if is_cupy_array(target):
        import cupyx  # noqa: PLC0415 (lazy: CuPy is optional)

        cupyx.scatter_add(target, indices, values)
    else:
        np.add.at(target, indices, values)


def sliding_window_view(x, window_shape, axis):
    """Read-only strided view of all windows of ``window_shape`` along ``axis``.

    Same contract as ``numpy.lib.stride_tricks.sliding_window_view``: the window axes
    are appended at the end. No data is copied.
    """
    if is_cupy_array(x):
        from cupy.lib.stride_tricks import sliding_window_view as swv  # noqa: PLC0415
    else:
        swv = np.lib.stride_tricks.sliding_window_view
    return swv(x, window_shape, axis=axis)
