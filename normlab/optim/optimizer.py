"""The Optimizer base class: parameter groups, in-place steps, PyTorch-shaped state dicts.

An optimizer holds ``normlab.nn.ParamRef`` handles (``model.parameters()``), never raw
arrays: ``backward`` replaces the arrays in ``module.grads`` and ``Module.to`` replaces
those in ``module.params``, and a ref always reads the current one. ``step()`` writes
into ``ref.value`` in place, so every holder of the parameter array sees the update.

State dict layout (PyTorch's)::

    {"state": {index: {"step": int, "exp_avg": ndarray, ...}},
     "param_groups": [{"lr": ..., "weight_decay": ..., ..., "params": [index, ...]}]}

``index`` counts parameters across groups in order. Arrays are copies on the parameter's
device; everything else is a plain number, bool, string or list. To save it as ``.npz``
+ JSON use :func:`state_dict_to_arrays` / :func:`state_dict_from_arrays`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from normlab import backend
from normlab.errors import NormlabTypeError, NormlabValueError, StateError
from normlab.functional import dispatch
from normlab.nn.module import ParamRef

__all__ = ["Optimizer", "state_dict_to_arrays", "state_dict_from_arrays"]


def _ref_key(ref: ParamRef) -> tuple[int, str]:
    # Module.parameters() builds fresh ParamRefs on every call, so identity is the slot.
    return id(ref.module), ref.key


class Optimizer:
    """Base class: subclasses implement ``_init_state`` and ``_update``.

    Parameters
    ----------
    params : list of ParamRef, or list of dict
        ``model.parameters()``, or param groups ``{"params": [...], "lr": ...}``
        whose missing hyperparameters are taken from ``defaults``.
    defaults : dict
        Hyperparameters under PyTorch's names, stored verbatim in every group.

    Raises
    ------
    TypeError
        If ``params`` holds something other than ParamRefs (e.g. raw arrays).
    ValueError
        On an empty parameter list, a group without ``"params"``, a parameter given
        twice, or an invalid hyperparameter (checked by the subclass).
    """

    def __init__(self, params, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self._check_hyper(self.defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        self._seen: set[tuple[int, str]] = set()
        if isinstance(params, (ParamRef, dict)):
            params = [params]
        try:
            params = list(params)
        except TypeError:
            raise NormlabTypeError(
                f"{self._owner}: expected params to be a list of ParamRef or of param-group "
                f"dicts, got {type(params).__name__}. Pass model.parameters()."
            ) from None
        if not params:
            raise NormlabValueError(
                f"{self._owner}: expected a non-empty parameter list, got an empty one. "
                "Pass model.parameters() of a model with learnable parameters."
            )
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _owner(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ hooks
    def _check_hyper(self, hp: dict[str, Any]) -> None:
        """Validate hyperparameters (the defaults and every group); raise ValueError."""

    # state keys a subclass adds after ``_init_state`` (SGD's momentum_buffer)
    _lazy_state: tuple[str, ...] = ()

    def _init_state(self, p, group: dict[str, Any]) -> dict[str, Any]:
        """Fresh per-parameter state for array ``p``."""
        return {}

    def _update(self, p, g, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Update ``p`` in place from gradient ``g``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ groups
    def add_param_group(self, group: dict[str, Any]) -> None:
        """Append a param group; missing hyperparameters come from ``defaults``.

        Raises
        ------
        TypeError, ValueError
            As the constructor.
        """
        if not isinstance(group, dict):
            raise NormlabTypeError(
                f"{self._owner}: expected every param group to be a dict, got "
                f"{type(group).__name__}. Mixing ParamRefs and dicts is not supported."
            )
        if "params" not in group:
            raise NormlabValueError(
                f"{self._owner}: expected a 'params' key in every param group, got keys "
                f"{sorted(group)}."
            )
        refs = group["params"]
        refs = [refs] if isinstance(refs, ParamRef) else list(refs)
        keys = set()
        for ref in refs:
            if isinstance(ref, ParamRef) and _ref_key(ref) in keys:
                raise NormlabValueError(
                    f"{self._owner}: expected each parameter once, got {ref.name!r} twice in "
                    "one param group. Remove the duplicate."
                )
            keys.add(_ref_key(ref) if isinstance(ref, ParamRef) else None)
            if not isinstance(ref, ParamRef):
                raise NormlabTypeError(
                    f"{self._owner}: expected params to be normlab ParamRefs, got "
                    f"{type(ref).__name__}. Pass model.parameters(), not arrays."
                )
            if _ref_key(ref) in self._seen:
                raise NormlabValueError(
                    f"{self._owner}: expected each parameter in one group only, got "
                    f"{ref.name!r} twice. Remove the duplicate."
                )
        new = {k: v for k, v in group.items() if k != "params"}
        for k, v in self.defaults.items():
            new.setdefault(k, v)
        self._check_hyper(new)
        new["params"] = refs
        self._seen.update(_ref_key(r) for r in refs)
        self.param_groups.append(new)

    def _indexed(self):
        """``(index, ref, group)`` for every parameter, in state-dict order."""
        i = 0
        for group in self.param_groups:
            for ref in group["params"]:
                yield i, ref, group
                i += 1

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        """One update of every parameter whose ``grad`` is not None, in place."""
        for i, ref, group in self._indexed():
            g = ref.grad
            if g is None:
                continue
            p = ref.value
            if i not in self.state or not self.state[i]:
                self.state[i] = self._init_state(p, group)
            state = self.state[i]
            self._follow(p, state)
            self._update(p, g, state, group)

    @staticmethod
    def _follow(p, state: dict[str, Any]) -> None:
        # After model.to(device/dtype) the state must follow the parameter.
        dev = backend.device_of(p)
        for k, a in state.items():
            if hasattr(a, "shape") and (backend.device_of(a) != dev or a.dtype != p.dtype):
                xp = backend.namespace(p)
                state[k] = xp.asarray(backend.to_device(a, dev), dtype=p.dtype)

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zero every parameter's gradient (``set_to_none=True`` removes it instead).

        normlab's default is zeros (the Module contract keeps ``grads`` keyed like
        ``params``); PyTorch's default is ``set_to_none=True``.
        """
        for _, ref, _ in self._indexed():
            if set_to_none:
                ref.module.grads.pop(ref.key, None)
            else:
                xp = backend.namespace(ref.value)
                ref.module.grads[ref.key] = xp.zeros_like(ref.value)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """PyTorch-shaped state: ``{"state": {i: {...}}, "param_groups": [...]}`` (copies)."""
        state = {}
        for i, s in self.state.items():
            state[i] = {k: (v.copy() if hasattr(v, "shape") else v) for k, v in s.items()}
        groups = []
        start = 0
        for group in self.param_groups:
            n = len(group["params"])
            g = {k: v for k, v in group.items() if k != "params"}
            g["params"] = list(range(start, start + n))
            start += n
            groups.append(g)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore state and hyperparameters; arrays move to each parameter's device/dtype.

        Raises
        ------
        ValueError
            If the number of groups, the parameters per group, a state index or a state
            array's shape does not match this optimizer.
        """
        owner = f"{self._owner}.load_state_dict"
        if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
            got = (sorted(state_dict) if isinstance(state_dict, Mapping)
                   else type(state_dict).__name__)
            raise StateError(
                f"{owner}: expected a dict with keys 'state' and 'param_groups', got {got}."
            )
        saved, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved, (list, tuple)) or not all(
                isinstance(g, Mapping) and isinstance(g.get("params"), (list, tuple))
                for g in saved):
            raise StateError(f"{owner}: expected param_groups to be a list of dicts with a "
                             f"'params' list, got {str(saved)[:120]}.")
        if not isinstance(saved_state, Mapping):
            raise StateError(f"{owner}: expected state to be a dict keyed by parameter index, "
                             f"got {type(saved_state).__name__}.")
        if len(saved) != len(self.param_groups):
            raise NormlabValueError(
                f"{owner}: expected {len(self.param_groups)} param groups, got {len(saved)}. "
                "Build the optimizer with the same param groups as the saved one."
            )
        for j, (mine, theirs) in enumerate(zip(self.param_groups, saved)):
            if len(mine["params"]) != len(theirs["params"]):
                raise NormlabValueError(
                    f"{owner}: expected {len(mine['params'])} params in param group {j}, got "
                    f"{len(theirs['params'])}. The saved optimizer was built for another model."
                )
        # hyperparameters first: the state's expected keys depend on them (amsgrad, momentum)
        groups = [{k: (tuple(v) if isinstance(v, list) else v)
                   for k, v in theirs.items() if k != "params"} for theirs in saved]
        merged = []
        for j, g in enumerate(groups):
            missing = sorted(set(self.defaults) - set(g))
            if missing:
                raise StateError(
                    f"{owner}: expected param group hyperparameters {sorted(self.defaults)}, got "
                    f"group {j} without {missing}. Was it saved by another optimizer class?"
                )
            hyper = {**self.defaults, **g}
            self._check_hyper(hyper)
            merged.append(hyper)
        refs = {i: (ref, group) for i, ref, group in self._indexed()}
        gidx = {id(g): j for j, g in enumerate(self.param_groups)}
        new_state: dict[int, dict[str, Any]] = {}
        for key, s in saved_state.items():
            try:
                i = int(key)
            except (TypeError, ValueError):
                i = None
            if i not in refs:
                raise StateError(
                    f"{owner}: expected state indices in 0..{len(refs) - 1}, got {key!r}."
                )
            if not isinstance(s, Mapping):
                raise StateError(f"{owner}: expected state[{i}] to be a dict, got "
                                 f"{type(s).__name__}.")
            ref, group = refs[i]
            p = ref.value
            xp = backend.namespace(p)
            hyper = merged[gidx[id(group)]]
            fresh = self._init_state(p, hyper)
            allowed = set(fresh) | set(self._lazy_state)
            unexpected = sorted(set(s) - allowed)
            missing = sorted(set(fresh) - set(s)) if s else []
            if unexpected or missing:
                raise StateError(
                    f"{owner}: expected state[{i}] to hold {sorted(allowed)}, got keys "
                    f"{sorted(s)}. Was it saved by another optimizer class?"
                )
            entry = {}
            for k, v in s.items():
                if k == "step":
                    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                        raise StateError(f"{owner}: expected state[{i}]['step'] to be an int "
                                         f">= 0, got {v!r}.")
                    v = int(v)
                elif hasattr(v, "shape"):
                    if tuple(v.shape) != tuple(p.shape):
                        raise NormlabValueError(
                            f"{owner}: expected state[{i}][{k!r}] of shape {tuple(p.shape)} "
                            f"(param {ref.name!r}), got {tuple(v.shape)}."
                        )
                    v = xp.asarray(backend.to_device(v, backend.device_of(p)),
                                   dtype=p.dtype).copy()
                else:
                    raise StateError(f"{owner}: expected state[{i}][{k!r}] to be an array of "
                                     f"shape {tuple(p.shape)}, got {type(v).__name__}.")
                entry[k] = v
            new_state[i] = entry
        for mine, theirs in zip(self.param_groups, groups):
            mine.update(theirs)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{self._owner} ("]
        for j, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {j}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


def state_dict_to_arrays(state_dict: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict]:
    """Split an optimizer state dict into NumPy arrays (for ``np.savez``) and JSON-able meta.

    Array keys are ``"state.{index}.{name}"``; the meta holds everything else, with state
    indices as strings (JSON object keys). Inverse: :func:`state_dict_from_arrays`.
    """
    arrays: dict[str, np.ndarray] = {}
    meta_state: dict[str, dict[str, Any]] = {}
    for i, s in state_dict["state"].items():
        plain = {}
        for k, v in s.items():
            if hasattr(v, "shape"):
                arrays[f"state.{i}.{k}"] = backend.to_numpy(v).copy()
            else:
                plain[k] = v
        meta_state[str(i)] = plain
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in state_dict["param_groups"]]
    return arrays, {"state": meta_state, "param_groups": groups}


def state_dict_from_arrays(arrays: dict[str, Any], meta: dict) -> dict[str, Any]:
    """Rebuild the state dict saved by :func:`state_dict_to_arrays` (NumPy arrays).

    Raises
    ------
    ValueError
        If an array key is not of the form ``"state.{index}.{name}"``.
    """
    state: dict[int, dict[str, Any]] = {int(i): dict(s) for i, s in meta["state"].items()}
    for key in arrays:
        parts = key.split(".", 2)
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise NormlabValueError(
                "state_dict_from_arrays: expected array keys 'state.{index}.{name}', got "
                f"{key!r}."
            )
        state.setdefault(int(parts[1]), {})[parts[2]] = np.asarray(arrays[key])
    return {"state": state, "param_groups": [dict(g) for g in meta["param_groups"]]}


def _lazy_zeros(state: dict[str, Any], key: str, p):
    """``state[key]``, created as zeros of ``p``'s shape when first needed: state a setting
    switches on later (AMSGrad after ``load_state_dict``, momentum after OneCycleLR)."""
    if state.get(key) is None:
        state[key] = backend.namespace(p).zeros_like(p)
    return state[key]


def _kernel(op: str, p, *arrays, numbers=()):
    """The compiled one-pass update ``op`` (``functional/compiled/numba_optim.py``) where
    it gives the reference's bits, else ``None``: a float parameter ``p`` with gradient
    and state ``arrays`` of its shape and dtype, all C-contiguous and writable (the
    gradient need not be), and hyperparameters ``numbers`` that are Python numbers (a NumPy
    scalar would change the dtype NumPy computes ``p * weight_decay`` in). CuPy: ``None``."""
    impl = dispatch.lookup(op, backend.namespace(p), p, *arrays)
    if impl is None or p.dtype.kind != "f" or not all(type(v) in (int, float) for v in numbers):
        return None
    for i, a in enumerate((p,) + arrays):  # arrays[0] (i = 1): the gradient, only read
        if a.shape != p.shape or a.dtype != p.dtype or not a.flags.c_contiguous \
                or (i != 1 and not a.flags.writeable):
            return None
    return impl


def _check_real(owner: str, hp: dict[str, Any], *names: str) -> None:
    """TypeError unless each ``hp[name]`` is a real number (bools are rejected)."""
    for name in names:
        v = hp[name]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise NormlabTypeError(
                f"{owner}: expected {name} to be a float, got {type(v).__name__} ({v!r})."
            )


def _check_nonneg(owner: str, hp: dict[str, Any], *names: str) -> None:
    """ValueError unless each ``hp[name]`` is a real number >= 0."""
    _check_real(owner, hp, *names)
    for name in names:
        if not hp[name] >= 0.0:
            raise NormlabValueError(f"{owner}: expected {name} >= 0, got {hp[name]!r}.")
