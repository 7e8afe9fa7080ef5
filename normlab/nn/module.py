"""The Module base class: parameters, gradients, buffers, modes, state dicts, devices.

A Module is a thin stateful wrapper over a pure forward/backward pair of
``normlab.functional``. Subclasses implement ``forward(x)`` (storing the functional
cache in ``self._cache``) and ``backward(dout)`` (returning ``dx`` and *overwriting*
``self.grads``); the cache is freed when ``backward`` returns (``retain_caches``). Names and layouts follow PyTorch so that ``state_dict()`` keys equal
those of the PyTorch twin.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from normlab import backend
from normlab.errors import (CallOrderError, NormlabRuntimeError, NormlabTypeError,
                            NormlabValueError, StateError)
from normlab.nn._checked import _checked_backward, _checked_forward, no_grad, retain_caches
from normlab.validation import is_array

__all__ = ["Module", "ParamRef", "no_grad", "retain_caches"]


class ParamRef:
    """A handle on one learnable array: ``module.params[key]`` and ``module.grads[key]``.

    Optimizers hold ParamRefs rather than arrays, because ``backward`` replaces the
    arrays in ``grads`` and ``to()`` replaces those in ``params``.
    """

    __slots__ = ("module", "key", "name")

    def __init__(self, module: "Module", key: str, name: str):
        self.module = module
        self.key = key
        self.name = name

    @property
    def value(self):
        return self.module.params[self.key]

    @value.setter
    def value(self, new) -> None:
        self.module.params[self.key] = new

    @property
    def grad(self):
        return self.module.grads.get(self.key)

    def __repr__(self) -> str:
        shape = tuple(self.value.shape)
        return f"ParamRef({self.name!r}, shape={shape}, dtype={self.value.dtype})"


def _bad_state_value(key: str, v) -> str | None:
    """What is wrong with a state-dict value (non-numeric, NaN/inf, negative variance), or None."""
    a = backend.to_numpy(v) if is_array(v) or backend.is_cupy_array(v) else np.asarray(v)
    if a.dtype.kind not in "fiu":
        return f"{key!r}: expected a numeric array, got dtype {a.dtype}"
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        return f"{key!r}: expected finite values, got NaN or inf"
    name = key.rsplit(".", 1)[-1]
    if name == "running_var" and (a < 0).any():
        return (f"{key!r}: expected a non-negative variance, got minimum {float(a.min())}; a "
                "variance below 0 would make the eval-mode output NaN")
    if name == "num_batches_tracked" and (a.dtype.kind != "i" and a.dtype.kind != "u"
                                          or (a < 0).any()):
        return f"{key!r}: expected a non-negative integer count, got {a!r}"
    return None


class Module:
    """Base class of every layer, loss and model.

    ``forward`` and ``backward`` of every subclass are wrapped once (``__init_subclass__``):
    forward checks that its input is a floating ndarray and records the output's shape and
    device; backward checks ``dout`` against them before the subclass's code (and any
    compiled kernel) runs, raising ``normlab.errors.ShapeError`` / ``NormlabTypeError``,
    and frees the module's cache when it returns, as PyTorch frees its graph (a second
    ``backward`` of one forward raises ``CallOrderError``; ``normlab.nn.retain_caches()``
    keeps the caches).

    Attributes
    ----------
    params : dict[str, ndarray]
        Learnable arrays under PyTorch's names (``weight``, ``bias``).
    grads : dict[str, ndarray]
        Gradients with the same keys as ``params``; ``backward`` overwrites them.
    buffers : dict[str, ndarray]
        Non-learnable state saved in ``state_dict`` (``running_mean``, ...).
    training : bool
        Mode flag, set recursively by ``train()`` / ``eval()``.
    requires_dx : bool
        Whether ``backward`` must return the input gradient (default ``True``). With
        ``False`` (``set_requires_dx``) a module that knows how may skip computing it and
        return ``None``, still setting every parameter gradient: PyTorch skips the first
        layer's input gradient the same way, as nothing uses it (26 % of a small
        ConvNet's step). Modules that do not know how ignore the flag.
    """

    requires_dx = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _checked_forward(cls.__dict__["forward"])
        if "backward" in cls.__dict__:
            cls.backward = _checked_backward(cls.__dict__["backward"])

    def __init__(self) -> None:
        object.__setattr__(self, "_modules", {})
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.buffers: dict[str, Any] = {}
        self.training = True
        self._cache = None

    # ------------------------------------------------------------------ structure
    def __setattr__(self, name: str, value) -> None:
        modules = self.__dict__.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise NormlabRuntimeError(
                    f"{type(self).__name__}: expected Module.__init__() to run before "
                    f"assigning submodule {name!r}. Call super().__init__() first."
                )
            modules[name] = value
        elif modules is not None and name in modules:
            del modules[name]
        object.__setattr__(self, name, value)

    def add_module(self, name: str, module: "Module") -> None:
        """Register ``module`` as a child under ``name`` (used by containers)."""
        if not isinstance(module, Module):
            raise NormlabTypeError(
                f"{type(self).__name__}.add_module: expected a normlab Module, got "
                f"{type(module).__name__}."
            )
        self._modules[name] = module

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def children(self) -> Iterator["Module"]:
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """This module and all descendants, depth first, with dotted names."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def apply(self, fn) -> "Module":
        for m in self.modules():
            fn(m)
        return self

    # ------------------------------------------------------------------ compute
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dout):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def set_requires_dx(self, flag: bool) -> "Module":
        """Set ``requires_dx`` (containers pass it on to their first learnable child).
        Returns ``self``."""
        self.requires_dx = bool(flag)
        return self

    def _require_cache(self):
        """The cache saved by ``forward``; raises if ``backward`` came first."""
        if self._cache is None:
            raise CallOrderError(
                f"{type(self).__name__}: expected forward() before backward(), got "
                "backward() with no saved forward pass. Call the module on an input first."
            )
        return self._cache

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # ------------------------------------------------------------------ parameters
    def named_parameters(self, prefix: str = "") -> list[tuple[str, Any, Any]]:
        """``(dotted_name, param, grad)`` for every learnable array, PyTorch order."""
        out = []
        for mname, m in self.named_modules(prefix):
            for key, p in m.params.items():
                out.append((f"{mname}.{key}" if mname else key, p, m.grads.get(key)))
        return out

    def parameters(self) -> list[ParamRef]:
        """ParamRefs for every learnable array, in the order of ``named_parameters``."""
        out = []
        for mname, m in self.named_modules():
            for key in m.params:
                out.append(ParamRef(m, key, f"{mname}.{key}" if mname else key))
        return out

    def num_parameters(self) -> int:
        return int(sum(p.size for _, p, _ in self.named_parameters()))

    def zero_grad(self) -> None:
        for m in self.modules():
            xp = None
            for key, p in m.params.items():
                xp = xp or backend.namespace(p)
                m.grads[key] = xp.zeros_like(p)

    def named_generators(self, prefix: str = "") -> list[tuple[str, np.random.Generator]]:
        """``(dotted_name, rng)`` of every module holding a ``np.random.Generator`` as ``rng``."""
        return [
            (name, m.rng)
            for name, m in self.named_modules(prefix)
            if isinstance(getattr(m, "rng", None), np.random.Generator)
        ]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Flat dict of copies: each module's params, then its buffers, then children's.

        Keys equal those of the PyTorch equivalent (``0.weight``, ``bn.running_var``...).
        """
        out: dict[str, Any] = {}
        for mname, m in self.named_modules():
            pre = f"{mname}." if mname else ""
            for key, a in m.params.items():
                out[pre + key] = a.copy()
            for key, a in m.buffers.items():
                out[pre + key] = a.copy()
        return out

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays from ``state`` into params and buffers, keeping dtype and device.

        Raises
        ------
        StateError
            (a ValueError and KeyError) on missing or unexpected keys (when ``strict``),
            a shape mismatch, a non-numeric or non-finite value, a negative
            ``running_var`` or a negative ``num_batches_tracked``, naming every offending key.
        """
        if not hasattr(state, "items") or not hasattr(state, "__contains__"):
            raise StateError(f"{type(self).__name__}.load_state_dict: expected a dict of "
                             f"arrays from state_dict(), got {type(state).__name__}.")
        slots = {}
        for mname, m in self.named_modules():
            pre = f"{mname}." if mname else ""
            for store in (m.params, m.buffers):
                for key in store:
                    slots[pre + key] = (store, key)
        missing = [k for k in slots if k not in state]
        unexpected = [k for k in state if k not in slots]
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        for k, v in state.items():
            if k in slots:
                store, key = slots[k]
                want = tuple(store[key].shape)
                got = tuple(np.shape(v))
                if want != got:
                    problems.append(f"{k!r}: expected shape {want}, got {got}")
                else:
                    bad = _bad_state_value(k, v)
                    if bad:
                        problems.append(bad)
        if problems:
            raise StateError(
                f"{type(self).__name__}.load_state_dict: " + "; ".join(problems) + "."
            )
        for k, v in state.items():
            if k in slots:
                store, key = slots[k]
                old = store[key]
                xp = backend.namespace(old)
                store[key] = xp.asarray(backend.to_device(v, backend.device_of(old)),
                                        dtype=old.dtype).copy()
        self._invalidate_caches()

    def _invalidate_caches(self) -> None:
        for m in self.modules():
            m._cache = None
            m.__dict__["_out_meta"] = None
            m.__dict__["_cache_freed"] = False

    # ------------------------------------------------------------------ devices, dtypes
    def to(self, device: str | None = None, dtype=None) -> "Module":
        """Move every param, grad and buffer to ``device`` and/or cast floats to ``dtype``.

        Integer buffers (``num_batches_tracked``) keep their dtype. Returns ``self``.
        """
        if device is not None and device not in ("cpu", "cuda"):
            raise NormlabValueError(
                f"{type(self).__name__}.to: expected device 'cpu' or 'cuda', got {device!r}."
            )
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind != "f":
                raise NormlabTypeError(
                    f"{type(self).__name__}.to: expected a floating dtype, got {dtype}."
                )
        for m in self.modules():
            for store in (m.params, m.grads, m.buffers):
                for key, a in list(store.items()):
                    if a is None:
                        continue
                    if device is not None:
                        a = backend.to_device(a, device)
                    if dtype is not None and np.dtype(a.dtype).kind == "f":
                        a = a.astype(dtype)
                    store[key] = a
            m._on_to(device, dtype)
        self._invalidate_caches()
        return self

    def _on_to(self, device, dtype) -> None:
        """Hook for subclasses holding extra arrays outside params/grads/buffers."""

    @property
    def device(self) -> str:
        for _, p, _ in self.named_parameters():
            return backend.device_of(p)
        for m in self.modules():
            for b in m.buffers.values():
                return backend.device_of(b)
        return "cpu"

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"
