"""The one kernel dispatch: which implementation of an op runs, per op and array backend.

Every op has a readable reference implementation in its topic file (``batchnorm_stages.py``,
``pool.py``, ``_kernels.py``, ``_winograd.py``, ...): written with ``xp.*``, it runs on
NumPy and CuPy and is the ground truth the tests check. Faster implementations of some
ops live apart, in ``normlab/functional/compiled/`` (numba CPU kernels today; CuPy and
parallel CPU kernels fit the same slot), and register themselves here with
``register(op, backend, impl)``. A call site asks ``lookup(op, xp)``; it gets the compiled
``impl``, or ``None`` and runs its reference code. ``None`` comes back when the setting is
``"reference"``, when nothing is registered for ``(op, backend)``, or when the provider
cannot be imported (numba missing or broken).

One public switch, ``normlab.kernels``::

    normlab.kernels("reference")            # from now on (process-wide)
    with normlab.kernels("reference"): ...  # inside the block only, then the old setting
    normlab.get_kernels()                   # -> "compiled" | "reference"

The default is ``"compiled"``, or the environment variable ``NORMLAB_KERNELS`` at import.
Algorithm choices are separate knobs: Winograd vs im2col (``_winograd.use_winograd``,
``use_tile``) picks *which maths* a conv runs; this switch picks *which code* runs each
op of that maths (the Winograd transforms have compiled twins here).
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Callable

from normlab.errors import NormlabTypeError, NormlabValueError

__all__ = ["SETTINGS", "kernels", "get_kernels", "register", "lookup", "kernel_ready", "describe",
           "blas_info", "set_num_threads", "get_num_threads"]

SETTINGS = ("compiled", "reference")

# Modules that register compiled kernels for a backend; imported on the first lookup
# for that backend under the "compiled" setting (numba's import takes ~0.5 s).
_PROVIDERS: dict[str, tuple[str, ...]] = {
    "numpy": ("normlab.functional.compiled.numba_bn",
              "normlab.functional.compiled.numba_conv",
              "normlab.functional.compiled.numba_pool",
              "normlab.functional.compiled.numba_flatconv",
              "normlab.functional.compiled.numba_winograd4",
              "normlab.functional.compiled.numba_winograd2",
              "normlab.functional.compiled.numba_winograd_weight",
              "normlab.functional.compiled.numba_elementwise",
              "normlab.functional.compiled.numba_sigmoid",
              "normlab.functional.compiled.numba_optim"),
    "cupy": (),
}

_registry: dict[tuple[str, str], Callable] = {}
_loaded: set[str] = set()
_ok: dict[str, str] = {}  # provider module -> what it is built with ("numba 0.61.2")
_failed: dict[str, str] = {}  # provider module -> why it could not be imported
_names: dict[int, tuple] = {}  # id(array module) -> (module, backend name), providers loaded


def _check_setting(setting) -> str:
    if not isinstance(setting, str) or setting not in SETTINGS:
        raise NormlabValueError(f"kernels: expected 'compiled' or 'reference', got {setting!r}. "
                         "'reference' runs the readable xp code of every op, 'compiled' "
                         "the registered fast kernels where they apply.")
    return setting


def _from_environment() -> str:
    value = os.environ.get("NORMLAB_KERNELS", "compiled")
    if value not in SETTINGS:
        raise NormlabValueError(f"NORMLAB_KERNELS: expected 'compiled' or 'reference', got {value!r}. "
                         "Unset it to get the default 'compiled'.")
    return value


_setting = _from_environment()


class kernels:  # noqa: N801 (used like a function: normlab.kernels("reference"))
    """Select the kernels every op runs: ``"compiled"`` or ``"reference"``.

    Takes effect at once and stays until changed; used as a context manager it restores
    the previous setting on exit (also on an exception).

    Parameters
    ----------
    setting : {"compiled", "reference"}

    Raises
    ------
    ValueError
        If ``setting`` is not one of ``SETTINGS``.
    """

    def __init__(self, setting: str):
        global _setting
        self.setting = _check_setting(setting)
        self.previous = _setting
        _setting = self.setting

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        global _setting
        _setting = self.previous
        return False

    def __repr__(self) -> str:
        return f"kernels({self.setting!r})"


def get_kernels() -> str:
    """The current kernel setting, ``"compiled"`` or ``"reference"``."""
    return _setting


def _backend_name(xp) -> str:
    name = getattr(xp, "__name__", None)  # "numpy", "cupy" (a module's name)
    return (name if isinstance(name, str) else str(xp)).partition(".")[0]


def register(op: str, backend: str, impl: Callable) -> None:
    """Make ``impl`` the compiled implementation of ``op`` for arrays of ``backend``.

    Parameters
    ----------
    op : str
        The op's name, e.g. ``"col2im"``, ``"bn_moments"``.
    backend : str
        Array module name: ``"numpy"`` or ``"cupy"``.
    impl : callable
        Same arguments and results as the call site documents for the op.

    Raises
    ------
    TypeError
        If ``op`` or ``backend`` is not a string or ``impl`` is not callable.
    """
    if not isinstance(op, str) or not isinstance(backend, str):
        raise NormlabTypeError(f"register: expected op and backend names (str), got {op!r} and "
                        f"{backend!r}.")
    if not callable(impl):
        raise NormlabTypeError(f"register: expected a callable impl for {op!r}, got "
                        f"{type(impl).__name__}.")
    _registry[(op, backend)] = impl


# Held while a backend's providers import: a lookup from another thread (conv's chunk
# threads, functional/_parallel) waits for the whole registry instead of finding it half
# filled and running the reference code for one chunk. Re-entrant: a provider's import may
# look up on the same thread.
_load_lock = threading.RLock()


def _load(backend: str) -> None:
    with _load_lock:
        if backend in _loaded:
            return
        _loaded.add(backend)
        for name in _PROVIDERS.get(backend, ()):
            try:
                module = importlib.import_module(name)
            except Exception as exc:  # ImportError, or numba/LLVM failing at import
                _failed[name] = f"{type(exc).__name__}: {exc}"
            else:
                _ok[name] = getattr(module, "PROVIDER", name)
        _apply_threads()


_KERNEL_FLOATS = ("float32", "float64")
_dtype_ready: dict = {}  # dtype -> verdict (dtypes compare and hash by byte order too)


def kernel_ready(*arrays) -> bool:
    """Whether compiled kernels may take ``arrays``: floating ones float32/float64, all native.

    numba kernels are compiled for those types; float16 (no numba type) or a big-endian
    array (wrong values) must run the reference code instead. This is the dispatch
    boundary's type check; shapes are checked by the public functions before they get here.
    """
    for a in arrays:
        dt = getattr(a, "dtype", None)
        if dt is None:
            continue
        ok = _dtype_ready.get(dt)
        if ok is None:  # every op call asks: the verdict is kept per dtype
            ok = _dtype_ready[dt] = bool(
                dt.isnative and dt.kind in "fiub" and (dt.kind != "f" or dt.name in _KERNEL_FLOATS))
        if not ok:
            return False
    return True


def lookup(op: str, xp, *arrays):
    """The compiled implementation of ``op`` for array module ``xp``, or ``None``.

    ``None`` means: run the reference code (setting ``"reference"``, nothing registered
    for this op and backend, its provider failed to import, or one of ``arrays`` (the
    op's array arguments) has a dtype or byte order the kernel was not compiled for).
    """
    if _setting == "reference" or (arrays and not kernel_ready(*arrays)):
        return None
    known = _names.get(id(xp))  # hot path: every op call asks
    if known is not None and known[0] is xp:
        backend = known[1]
    else:
        backend = _backend_name(xp)
        _load(backend)
        _names[id(xp)] = (xp, backend)  # holds xp, so its id is not reused
    return _registry.get((op, backend))


def describe() -> dict:
    """The kernel setting and, per backend, the compiled ops available (JSON-able).

    ``{"setting": "compiled", "numpy": {"provider": "numba 0.61.2", "ops": [...],
    "failed": {...}}, "cupy": {...}}``; imports the NumPy providers (not CuPy).
    """
    _load("numpy")
    info: dict = {"setting": _setting}
    for backend, providers in _PROVIDERS.items():
        versions = sorted({_ok[p] for p in providers if p in _ok})
        entry: dict = {"provider": ", ".join(versions) or None,
                       "ops": sorted(op for op, b in _registry if b == backend)}
        failed = {p: _failed[p] for p in providers if p in _failed}
        if failed:
            entry["failed"] = failed
        info[backend] = entry
    return info


def blas_info() -> dict | None:
    """The BLAS library NumPy calls: ``{"library", "version", "core", "threads",
    "filepath"}`` from threadpoolctl (``core`` is OpenBLAS/BLIS's kernel architecture,
    e.g. ``"SkylakeX"``; MKL reports its threading layer instead). ``None`` if none is found.
    """
    import numpy as np  # noqa: PLC0415 (make sure NumPy's BLAS is loaded)
    from threadpoolctl import threadpool_info  # noqa: PLC0415

    del np
    libs = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    if not libs:
        return None
    # NumPy's own BLAS ships inside numpy.libs / numpy/.dylibs; other packages (torch,
    # scipy) may load a second one into the process.
    ours = [lib for lib in libs if "numpy" in str(lib.get("filepath", "")).lower()]
    lib = (ours or libs)[0]
    core = lib.get("architecture") or lib.get("threading_layer")
    return {"library": lib.get("internal_api"), "version": lib.get("version"),
            "core": core, "threads": lib.get("num_threads"),
            "filepath": lib.get("filepath")}


# ---------------------------------------------------------------- threads
_threads: int | None = None  # set by set_num_threads; None: every library's own default


def _apply_threads() -> None:
    """Give numba's parallel kernels the thread count of ``set_num_threads`` (once numba
    is loaded: importing it only to set a count would cost its import time)."""
    import sys  # noqa: PLC0415

    numba = sys.modules.get("numba")
    if _threads is None or numba is None:
        return
    try:
        import normlab.functional.compiled._threads  # noqa: F401, PLC0415 (layer first)

        numba.set_num_threads(min(_threads, numba.config.NUMBA_NUM_THREADS))
    except Exception:  # noqa: BLE001 (a broken numba only loses the setting)
        pass


def set_num_threads(n: int) -> None:
    """Run normlab's work on ``n`` threads: its own thread pool, which runs conv's batch
    chunks, batch norm's channels and the elementwise kernels' parts side by side
    (``functional/_parallel.py``); numba's thread count (capped at ``NUMBA_NUM_THREADS``)
    is set too.

    Process-wide, like ``torch.set_num_threads``. NumPy's BLAS (through threadpoolctl) is
    set to one thread: normlab's threads run the products of conv's chunks, and an OpenBLAS
    worker woken for a product spins for a while after it on the cores they need (ResNet-20,
    batch 128, 2 threads: 16 % of a step's CPU samples were OpenBLAS spinning). Without a
    call, BLAS keeps its own default (held at one thread only while a model pass runs)
    and normlab's threads follow ``NUMBA_NUM_THREADS`` or ``OMP_NUM_THREADS`` if set, else
    every CPU.

    Raises
    ------
    NormlabValueError
        If ``n`` is not a positive int.
    """
    global _threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise NormlabValueError(f"set_num_threads: expected a positive int, got {n!r}.")
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    threadpool_limits(limits=1, user_api="blas")
    _threads = n
    _apply_threads()


def get_num_threads() -> int | None:
    """The count given to ``set_num_threads``, or ``None`` if it was never called."""
    return _threads
