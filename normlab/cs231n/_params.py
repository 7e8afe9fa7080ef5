"""The course's hyperparameter dicts (``bn_param``, ``dropout_param``, ``conv_param``, ...).

The course passes hyperparameters in dicts, so a missing key or a value of the wrong type
would otherwise end in a bare ``KeyError`` or a NumPy message deep inside. These helpers
read one entry each and raise ``normlab.errors`` exceptions naming the dict and key.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

from normlab.errors import NormlabTypeError, NormlabValueError, StateError
from normlab.validation import check_real, describe

__all__ = ["param_dict", "real_entry", "int_entry"]

_MISSING = object()


def param_dict(d, owner: str, name: str, required=()) -> Mapping:
    """``d`` if it is a dict holding every key of ``required``.

    Raises
    ------
    StateError
        (a ValueError and a KeyError) for a non-dict or a missing key.
    """
    if not isinstance(d, Mapping):
        raise StateError(f"{owner}: expected {name} to be a dict, got {describe(d)}.")
    missing = [k for k in required if k not in d]
    if missing:
        raise StateError(f"{owner}: expected {name} with keys {list(required)}, got keys "
                         f"{sorted(map(str, d))} (missing {missing}).")
    return d


def real_entry(d, key: str, owner: str, name: str, default=_MISSING, **bounds) -> float:
    """``d[key]`` (or ``default``) as a float within ``bounds`` (see ``check_real``)."""
    value = d.get(key, default) if default is not _MISSING else d[key]
    return check_real(value, f"{name}[{key!r}]", owner, **bounds)


def int_entry(d, key: str, owner: str, name: str, default, low: int) -> int:
    """``d[key]`` (or ``default``) as an int >= ``low``; integer-valued floats are accepted."""
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise NormlabTypeError(f"{owner}: expected {name}[{key!r}] to be an int, got "
                               f"{describe(value)} {value!r}."[:300])
    if value != int(value) or value < low:
        raise NormlabValueError(f"{owner}: expected {name}[{key!r}] to be an int >= {low}, got "
                                f"{value!r}.")
    return int(value)
