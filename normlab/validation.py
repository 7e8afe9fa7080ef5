"""One validation module for functional code, modules, optimizers, state dicts and the course API.

Modelled on scikit-learn's ``check_array``: each ``check_*`` either returns its (possibly
converted) argument or raises a ``normlab.errors`` exception whose message reads
``"{owner}: expected {what}, got {actual}. {hint}"``. ``owner`` is the public function or
module the user called.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Mapping

import numpy as np

from normlab import backend
from normlab.errors import NormlabTypeError, NormlabValueError, ShapeError, StateError

__all__ = ["is_array", "describe", "check_array", "check_vector", "check_dout", "check_real",
           "check_positive", "check_int", "check_mapping_keys", "native_byteorder",
           "check_same_device", "check_float_dtype", "check_cache"]


def is_array(x) -> bool:
    """True for a NumPy or CuPy ndarray (not lists, scalars or strings)."""
    return isinstance(x, np.ndarray) or backend.is_cupy_array(x) and hasattr(x, "shape")


def _device(a) -> str:
    """``backend.device_of`` with a fast path for NumPy arrays (checks run on every call)."""
    return "cpu" if isinstance(a, np.ndarray) else backend.device_of(a)


def describe(x) -> str:
    """Short description of ``x`` for messages: ``float32 array of shape (2, 3)``, ``list``."""
    if is_array(x):
        return f"{x.dtype} array of shape {tuple(x.shape)}"
    if isinstance(x, (str, bytes)):
        return f"{type(x).__name__} {x[:40]!r}"
    return type(x).__name__


def native_byteorder(x):
    """``x`` in native byte order (a copy only when it is not): compiled kernels need it."""
    if isinstance(x, np.ndarray) and not x.dtype.isnative:
        return x.astype(x.dtype.newbyteorder("="))
    return x


def check_array(x, owner: str, *, name: str = "input", ndim=None, min_ndim: int | None = None,
                layout: str = "", floating: bool = True, finite: bool = False,
                allow_empty: bool = False):
    """Check that ``x`` is an ndarray with the given rank and a floating dtype; return it.

    Parameters
    ----------
    ndim : int, tuple of ints or None
        Accepted ranks.
    layout : str
        Shape letters for the message, e.g. ``"(N, C, H, W)"``.
    floating : bool
        Require a real floating dtype (float16/32/64).
    finite : bool
        Require every value to be finite (costs one pass over ``x``).

    Returns
    -------
    ``x`` in native byte order.

    Raises
    ------
    NormlabTypeError
        Not an ndarray, or not floating when ``floating``.
    ShapeError
        Wrong rank, or an empty array unless ``allow_empty``.
    NormlabValueError
        NaN/inf when ``finite``.
    """
    if not is_array(x):
        raise NormlabTypeError(
            f"{owner}: expected {name} to be an ndarray, got {describe(x)}. Convert it with "
            "np.asarray(x, dtype=np.float32)."
        )
    if floating and np.dtype(x.dtype).kind != "f":
        what = "array" if name == "input" else name
        raise NormlabTypeError(
            f"{owner}: expected a floating-point {what}, got {x.dtype}. Cast it with "
            "x.astype(np.float32)."
        )
    if ndim is not None:
        ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in ranks:
            want = " or ".join(f"{r}D" for r in ranks)
            raise ShapeError(
                f"{owner}: expected {want} {name} {layout}".rstrip() + f", got {x.ndim}D "
                f"{name} of shape {tuple(x.shape)}."
            )
    if min_ndim is not None and x.ndim < min_ndim:
        raise ShapeError(
            f"{owner}: expected {name} with at least {min_ndim} dimensions {layout}".rstrip()
            + f", got shape {tuple(x.shape)}."
        )
    if not allow_empty and x.size == 0:
        raise ShapeError(f"{owner}: expected a non-empty {name}, got shape {tuple(x.shape)}.")
    if finite and x.size and not bool(backend.namespace(x).isfinite(x).all()):
        raise NormlabValueError(
            f"{owner}: expected finite values in {name}, got NaN or inf. Check the data."
        )
    return native_byteorder(x)


def check_vector(v, size: int, owner: str, name: str, *, like=None, allow_none: bool = False):
    """Check a per-channel array (``gamma``, ``beta``, running statistics): shape ``(size,)``.

    ``like`` (an input array) fixes the device that ``v`` must live on.

    Raises
    ------
    NormlabTypeError
        Not an ndarray (or None when not allowed), or not floating.
    ShapeError
        Shape other than ``(size,)``.
    """
    if v is None:
        if allow_none:
            return None
        raise NormlabTypeError(f"{owner}: expected {name} of shape ({size},), got None.")
    if not is_array(v):
        raise NormlabTypeError(f"{owner}: expected {name} to be an ndarray of shape ({size},), "
                               f"got {describe(v)}.")
    if np.dtype(v.dtype).kind != "f":
        raise NormlabTypeError(f"{owner}: expected a floating {name}, got dtype {v.dtype}.")
    if tuple(v.shape) != (size,):
        raise ShapeError(
            f"{owner}: expected {name} of shape ({size},) (one value per channel), got shape "
            f"{tuple(v.shape)}."
        )
    if like is not None:
        check_same_device(v, like, owner, name)
    return v


def check_same_device(a, like, owner: str, name: str) -> None:
    """Raise NormlabTypeError when ``a`` and ``like`` live on different devices."""
    if _device(a) != _device(like):
        raise NormlabTypeError(
            f"{owner}: expected {name} on device {_device(like)!r} like the input, "
            f"got device {_device(a)!r}. Move it with normlab.backend.to_device."
        )


def check_dout(dout, shape, owner: str, *, like=None, device: str | None = None):
    """Check an upstream gradient against the forward output's ``shape`` and device.

    The device is ``device`` (``"cpu"``/``"cuda"``) or that of the array ``like``.

    A Python or NumPy real number is accepted for a 0-d output (losses: ``backward(1.0)``).

    Returns
    -------
    ``dout`` (native byte order).

    Raises
    ------
    NormlabTypeError
        Not an ndarray, not floating, or on another device.
    ShapeError
        Shape other than ``shape``.
    """
    shape = tuple(shape)
    if shape == () and isinstance(dout, numbers.Real) and not isinstance(dout, bool):
        return dout
    if not is_array(dout):
        raise NormlabTypeError(
            f"{owner}: expected dout to be an ndarray of shape {shape} (the forward output's), "
            f"got {describe(dout)}."
        )
    if np.dtype(dout.dtype).kind != "f":
        raise NormlabTypeError(f"{owner}: expected a floating dout, got dtype {dout.dtype}.")
    if tuple(dout.shape) != shape and shape == ():
        raise ShapeError(f"{owner}: expected a scalar dout (float or 0-d array), got shape "
                         f"{tuple(dout.shape)}. The loss is a scalar.")
    if tuple(dout.shape) != shape:
        raise ShapeError(
            f"{owner}: expected dout of shape {shape} (the forward output's), got shape "
            f"{tuple(dout.shape)}."
        )
    device = _device(like) if like is not None else device
    if device is not None and _device(dout) != device:
        raise NormlabTypeError(
            f"{owner}: expected dout on device {device!r} like the forward output, got device "
            f"{_device(dout)!r}. Move it with normlab.backend.to_device."
        )
    return native_byteorder(dout)


def check_real(value, name: str, owner: str, *, low=None, high=None, low_open: bool = False,
               high_open: bool = False, hint: str = "") -> float:
    """``value`` as a Python float inside ``[low, high]`` (``(`` / ``)`` when open); finite.

    Raises
    ------
    NormlabTypeError
        Not a real number (bools, strings and arrays are refused).
    NormlabValueError
        NaN/inf, or outside the range.
    """
    if type(value) is not float and (isinstance(value, bool)
                                     or not isinstance(value, numbers.Real)):
        raise NormlabTypeError(f"{owner}: expected {name} to be a real number, got "
                               f"{describe(value)} {value!r}."[:300])
    v = float(value)
    lo_bad = low is not None and (v <= low if low_open else v < low)
    hi_bad = high is not None and (v >= high if high_open else v > high)
    if not math.isfinite(v) or lo_bad or hi_bad:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        rng = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise NormlabValueError(
            f"{owner}: expected {name} in {rng}, got {name}={value!r}." + (f" {hint}" if hint else "")
        )
    return v


def check_positive(value, name: str, owner: str, hint: str = "") -> float:
    """``value`` as a float > 0 (``eps``, ``h``, learning rates)."""
    return check_real(value, name, owner, low=0.0, low_open=True, hint=hint)


def overwritable(a, shape, dtype) -> bool:
    """Whether a result of ``shape`` and ``dtype`` may be written over array ``a`` (that
    the caller has handed over): ``a`` has them, holds values, is C-contiguous and
    writable (CuPy arrays have no writeable flag: always writable)."""
    return (tuple(a.shape) == tuple(shape) and a.dtype == dtype and a.size > 0
            and a.flags.c_contiguous and getattr(a.flags, "writeable", True))


def check_bool(value, name: str, owner: str, hint: str = "") -> bool:
    """``value`` as a Python bool (NumPy bools accepted; ints, strings and None refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise NormlabTypeError(f"{owner}: expected {name} to be a bool, got {value!r}."[:300]
                               + (f" {hint}" if hint else ""))
    return bool(value)


def check_int(value, name: str, owner: str, *, low: int | None = None) -> int:
    """``value`` as a Python int (NumPy ints accepted, bools refused), at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise NormlabTypeError(f"{owner}: expected {name} to be an int, got {describe(value)} "
                               f"{value!r}."[:300])
    if low is not None and value < low:
        raise NormlabValueError(f"{owner}: expected {name} >= {low}, got {name}={value!r}.")
    return int(value)


def check_mapping_keys(d, required: Iterable[str], owner: str, what: str = "state") -> Mapping:
    """Check that ``d`` is a dict holding every key of ``required``; return it.

    Raises
    ------
    StateError
        (a ValueError and a KeyError) naming every missing key, or when ``d`` is no dict.
    """
    if not isinstance(d, Mapping):
        raise StateError(f"{owner}: expected {what} to be a dict, got {describe(d)}.")
    missing = [k for k in required if k not in d]
    if missing:
        raise StateError(
            f"{owner}: expected {what} with keys {sorted(required)}, got {sorted(map(str, d))} "
            f"(missing {missing})."
        )
    return d


def check_float_dtype(dtype, owner: str):
    """``dtype`` as a NumPy floating dtype; integer/bool/complex dtypes are refused.

    Raises
    ------
    NormlabTypeError
        For a non-floating or unknown dtype (``dtype=int`` would give all-zero weights).
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind != "f":
        raise NormlabTypeError(f"{owner}: expected a floating dtype (np.float32 or np.float64), "
                               f"got {dtype!r}.")
    return dt


def check_cache(cache, cls, owner: str):
    """``cache`` if it is the ``cls`` NamedTuple a forward returned; NormlabTypeError otherwise."""
    if not isinstance(cache, cls):
        raise NormlabTypeError(f"{owner}: expected the {cls.__name__} returned by the forward, "
                               f"got {describe(cache)}.")
    return cache
