"""The one reader of pickles in normlab: a restricted unpickler that cannot run code.

CIFAR-10's python batches are pickles (that is the official format). ``restricted_load``
accepts only plain containers and the NumPy array reconstruction those files use and refuses
every other global, so a crafted file cannot import and call arbitrary objects. Any failure
(hostile globals, truncation, garbage) is one ``normlab.errors.DataError``.
"""

from __future__ import annotations

import pickle

from normlab.errors import DataError

__all__ = ["ALLOWED_GLOBALS", "restricted_load"]

# The only globals the official CIFAR-10 pickles (and NumPy array pickles) reference.
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
})


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, fh, owner: str, encoding: str):
        super().__init__(fh, encoding=encoding)
        self._owner = owner

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise DataError(
                f"{self._owner}: expected only NumPy arrays and plain containers in a "
                f"CIFAR-10 batch, got a reference to {module}.{name}. The file is not an "
                "official CIFAR-10 python batch; refusing to load it."
            )
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray"  # NumPy 2 name, avoids the deprecation shim
        return super().find_class(module, name)


def restricted_load(fh, owner: str, path, encoding: str = "bytes"):
    """Unpickle ``fh`` allowing only plain containers and NumPy arrays.

    Raises
    ------
    DataError
        On a forbidden global or a truncated/corrupt pickle (``path`` names the file).
    """
    try:
        return _RestrictedUnpickler(fh, owner, encoding).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, OverflowError) as e:
        raise DataError(
            f"{owner}: expected a CIFAR-10 python batch (a pickle) in {path}, got an unreadable "
            f"file ({type(e).__name__}: {str(e)[:120]}). The file is truncated or corrupt; "
            "download it again."
        ) from None
