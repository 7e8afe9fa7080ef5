"""Crash-safe checkpoints: one ``.npz`` of arrays plus one JSON of everything else.

Layout of a checkpoint folder ``path``::

    path/
      latest                  one line: the name of the current JSON file
      ckpt-00000007.json      step, optimizer/scheduler/trainer state, RNG states, sha256 of the npz
      ckpt-00000007.npz       model/<key>, optimizer/..., trainer/... arrays
      history.jsonl           (written by the Trainer, never touched here)

Why this design: a pair of files cannot be replaced atomically together, so every save
writes a *new* pair under a fresh sequence number (each file via temp file, flush,
``os.fsync``, ``os.replace``), and only then switches the small ``latest`` pointer with
one more atomic ``os.replace``. Killing the process at any moment leaves ``latest``
naming a complete, consistent pair: either the old one or the new one. The JSON stores
the SHA-256 of its npz, so a pair damaged outside normlab is reported, never half-loaded.
Older pairs and stray temp files are removed after the switch. One writer per folder.

Arrays found anywhere in the saved state (optimizer buffers, a callback's best weights,
NumPy scalars) go to the npz and are replaced in the JSON by ``{"__ndarray__": key}``;
Python ints (RNG states are big ints), floats, strings, lists and dicts stay in the JSON.
Everything is loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from typing import Any

import numpy as np

from normlab import backend
from normlab._io import atomic_write_bytes, make_dirs
from normlab.errors import MissingPathError, NormlabTypeError, NormlabValueError, StateError
from normlab.validation import check_mapping_keys

__all__ = ["save_checkpoint", "load_checkpoint", "atomic_write_bytes", "FORMAT"]

FORMAT = "normlab-checkpoint"
VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{8})\.(npz|json)$")


# ---------------------------------------------------------------------------- encoding
def _is_array(x) -> bool:
    return isinstance(x, np.ndarray) or backend.is_cupy_array(x)


def _encode(obj, key: str, arrays: dict[str, np.ndarray]):
    """JSON-able twin of ``obj``; arrays and NumPy scalars move to ``arrays[key]``."""
    if _is_array(obj) or isinstance(obj, np.generic):
        if obj.dtype == object:
            raise NormlabTypeError(f"save_checkpoint: expected numeric arrays, got an object array "
                            f"under {key!r}. Checkpoints never pickle.")
        arrays[key] = np.asarray(backend.to_numpy(obj))
        return {"__ndarray__": key, "scalar": isinstance(obj, np.generic)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _encode(v, f"{key}/{k}", arrays) for k, v in obj.items()}
        items = []
        for i, (k, v) in enumerate(obj.items()):
            if not isinstance(k, (str, int, float)) or isinstance(k, bool):
                raise NormlabTypeError(f"save_checkpoint: expected str or int dict keys, got "
                                f"{type(k).__name__} key {k!r} under {key!r}.")
            items.append([k, _encode(v, f"{key}/{i}", arrays)])
        return {"__items__": items}
    if isinstance(obj, (list, tuple)):
        out = [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(obj)]
        return {"__tuple__": out} if isinstance(obj, tuple) else out
    raise NormlabTypeError(
        f"save_checkpoint: expected arrays, numbers, strings, lists or dicts in the state, "
        f"got {type(obj).__name__} under {key!r}. Convert it in state_dict()."
    )


# keys every checkpoint JSON holds (optimizer/scheduler only when saved)
_META_KEYS = ("format", "npz", "sha256", "model_class", "model_keys", "model_generators", "rngs",
              "trainer_state")


def _decode(obj, arrays):
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            a = arrays[obj["__ndarray__"]]
            return a[()] if obj.get("scalar") else a
        if "__items__" in obj:
            return {k: _decode(v, arrays) for k, v in obj["__items__"]}
        if "__tuple__" in obj:
            return tuple(_decode(v, arrays) for v in obj["__tuple__"])
        return {k: _decode(v, arrays) for k, v in obj.items()}
    return obj


def _generator_states(named) -> dict[str, Any]:
    out = {}
    for name, g in named:
        if isinstance(g, np.random.Generator):
            out[name] = g.bit_generator.state
        elif isinstance(g, dict):
            out[name] = g
        else:
            raise NormlabTypeError(f"save_checkpoint: expected a np.random.Generator or its "
                            f"bit_generator.state dict for rng {name!r}, got "
                            f"{type(g).__name__}.")
    return out


# ---------------------------------------------------------------------------- save
def _sequence_numbers(folder: str) -> list[int]:
    return sorted({int(m.group(1)) for n in os.listdir(folder) if (m := _NAME.match(n))})


def save_checkpoint(path, *, model, optimizer=None, scheduler=None, trainer_state=None,
                    rngs=None) -> str:
    """Save everything needed to resume training into the checkpoint folder ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        Checkpoint folder (created if needed); see the module docstring for its layout.
    model : normlab.nn.Module
        Saved with ``model.state_dict()`` (params and buffers, e.g. BN running stats)
        plus the state of every generator in ``model.named_generators()`` (Dropout).
    optimizer, scheduler : optional
        Objects with ``state_dict()``; their class names are recorded and checked on load.
    trainer_state : dict, optional
        Free-form state (step, epoch, callback states...); may contain arrays.
    rngs : dict[str, Generator or state dict], optional
        Extra generators (trainer, data loaders), saved as ``bit_generator.state``.

    Returns
    -------
    str
        Path of the JSON file just written (what ``latest`` now names).

    Raises
    ------
    TypeError
        If a state holds something other than arrays, numbers, strings, lists, dicts.
    """
    folder = os.fspath(path)
    make_dirs(folder, "save_checkpoint")
    seqs = _sequence_numbers(folder)
    seq = (seqs[-1] if seqs else 0) + 1
    stem = f"ckpt-{seq:08d}"

    arrays: dict[str, np.ndarray] = {}
    model_keys = []
    for k, v in model.state_dict().items():
        arrays[f"model/{k}"] = np.asarray(backend.to_numpy(v))
        model_keys.append(k)
    meta: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "npz": stem + ".npz", "model_keys": model_keys,
        "model_class": type(model).__name__,
        "model_generators": _generator_states(model.named_generators()),
        "rngs": _generator_states((rngs or {}).items()),
    }
    if optimizer is not None:
        meta["optimizer_class"] = type(optimizer).__name__
        meta["optimizer"] = _encode(optimizer.state_dict(), "optimizer", arrays)
    if scheduler is not None:
        meta["scheduler_class"] = type(scheduler).__name__
        meta["scheduler"] = _encode(scheduler.state_dict(), "scheduler", arrays)
    meta["trainer_state"] = _encode(trainer_state, "trainer", arrays)
    meta["rngs"] = _encode(meta["rngs"], "rngs", arrays)
    meta["model_generators"] = _encode(meta["model_generators"], "model_generators", arrays)

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    json_path = os.path.join(folder, stem + ".json")
    atomic_write_bytes(os.path.join(folder, stem + ".npz"), data)
    atomic_write_bytes(json_path, json.dumps(meta, indent=1).encode())
    atomic_write_bytes(os.path.join(folder, "latest"), (stem + ".json\n").encode())
    for name in os.listdir(folder):  # only after the switch: old pairs, stray temp files
        m = _NAME.match(name)
        if (m and int(m.group(1)) != seq) or name.startswith(".tmp-"):
            try:
                os.remove(os.path.join(folder, name))
            except FileNotFoundError:  # pragma: no cover
                pass
    return json_path


# ---------------------------------------------------------------------------- load
def _resolve(path) -> str:
    """JSON file of the checkpoint at ``path`` (a folder, or one ``ckpt-*.json``)."""
    p = os.fspath(path)
    if os.path.isfile(p) and p.endswith(".json"):
        return p
    if not os.path.isdir(p):
        raise MissingPathError(f"load_checkpoint: expected a checkpoint folder, got {p!r}, "
                                "which does not exist. Check the path (save_checkpoint "
                                "creates it).")
    pointer = os.path.join(p, "latest")
    if not os.path.isfile(pointer):
        raise MissingPathError(f"load_checkpoint: expected a 'latest' file in {p!r}, got a "
                                "folder without one. Save a checkpoint there first.")
    with open(pointer) as f:
        return os.path.join(p, f.read().strip())


def _check_class(meta, kind: str, obj) -> None:
    saved = meta.get(f"{kind}_class")
    if saved is None:
        raise NormlabValueError(f"load_checkpoint: expected {kind} state in the checkpoint, got none. "
                         f"Pass {kind}=None or save it with save_checkpoint({kind}=...).")
    if saved != type(obj).__name__:
        raise NormlabValueError(f"load_checkpoint: expected a {saved} {kind} (as saved), got "
                         f"{type(obj).__name__}. Build the same {kind} before loading.")


def _set_states(kind: str, saved: dict, targets: dict) -> None:
    missing = sorted(set(targets) - set(saved))
    if missing:
        raise NormlabValueError(f"load_checkpoint: expected saved states for the {kind} generators "
                         f"{missing}, got only {sorted(saved)}. Build the same objects "
                         "(e.g. the same Dropout layers) before loading.")
    for name, g in targets.items():
        g.bit_generator.state = saved[name]


def load_checkpoint(path, *, model, optimizer=None, scheduler=None, rngs=None) -> dict:
    """Load a checkpoint saved by :func:`save_checkpoint` into existing objects, in place.

    Parameters
    ----------
    path : str or os.PathLike
        Checkpoint folder (its ``latest`` pair is loaded) or one ``ckpt-*.json`` file.
    model : normlab.nn.Module
        Receives params, buffers and the states of its generators.
    optimizer, scheduler : optional
        Receive their saved ``state_dict``; must be of the saved classes.
    rngs : dict[str, Generator], optional
        Generators whose states are restored from the saved ``rngs`` of the same names.

    Returns
    -------
    dict
        ``{"trainer_state": ..., "rngs": {name: state}, "path": json_path}``.

    Raises
    ------
    FileNotFoundError
        If the folder, its ``latest`` pointer or a file it names is missing (names the path).
    ValueError
        On a corrupt file, or keys/shapes/classes that do not match the given objects.
    """
    json_path = _resolve(path)
    folder = os.path.dirname(json_path)
    if not os.path.isfile(json_path):
        raise MissingPathError(f"load_checkpoint: expected the checkpoint file {json_path!r}, "
                                "got nothing there. The folder was modified by hand.")
    with open(json_path) as f:
        try:
            meta = json.load(f)
        except json.JSONDecodeError as e:
            raise NormlabValueError(f"load_checkpoint: expected valid JSON in {json_path!r}, got "
                             f"{e}. The file is corrupt.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise NormlabValueError(f"load_checkpoint: expected a {FORMAT} JSON file, got {json_path!r}.")
    check_mapping_keys(meta, _META_KEYS, "load_checkpoint", f"checkpoint meta {json_path!r}")
    if not isinstance(meta["npz"], str) or not isinstance(meta["model_keys"], list):
        raise StateError(f"load_checkpoint: expected 'npz' (a file name) and 'model_keys' (a "
                         f"list) in {json_path!r}, got {type(meta['npz']).__name__} and "
                         f"{type(meta['model_keys']).__name__}. The file is corrupt.")
    npz_path = os.path.join(folder, os.path.basename(meta["npz"]))
    if not os.path.isfile(npz_path):
        raise MissingPathError(f"load_checkpoint: expected the array file {npz_path!r}, got "
                                "nothing there. The folder was modified by hand.")
    with open(npz_path, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise NormlabValueError(f"load_checkpoint: expected {npz_path!r} to match the SHA-256 in "
                         f"{json_path!r}, got different bytes. The file is corrupt.")
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}

    absent = [k for k in meta["model_keys"] if f"model/{k}" not in arrays]
    if absent:
        raise StateError(f"load_checkpoint: expected arrays for every model key in {npz_path!r}, "
                         f"got none for {absent}. The checkpoint is corrupt.")
    try:  # decode everything before touching the objects: a bad file changes nothing
        decoded = {k: _decode(meta[k], arrays) for k in ("model_generators", "rngs",
                                                         "trainer_state", "optimizer",
                                                         "scheduler") if k in meta}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise StateError(f"load_checkpoint: expected a consistent checkpoint in {json_path!r}, "
                         f"got a reference that does not resolve ({type(e).__name__}: {e}). "
                         "The file is corrupt.") from None
    state = {k: arrays[f"model/{k}"] for k in meta["model_keys"]}
    current = model.state_dict()
    problems = []
    if sorted(state) != sorted(current):
        problems.append(f"missing keys {[k for k in current if k not in state]}, unexpected "
                        f"keys {[k for k in state if k not in current]}")
    problems += [f"{k!r}: saved shape {tuple(state[k].shape)}, model shape "
                 f"{tuple(current[k].shape)}" for k in state
                 if k in current and tuple(state[k].shape) != tuple(current[k].shape)]
    if problems:
        raise NormlabValueError(f"load_checkpoint: expected the model's state_dict to match the "
                         f"checkpoint ({meta['model_class']}), got " + "; ".join(problems)
                         + ". Build the same architecture before loading.")
    if optimizer is not None:
        _check_class(meta, "optimizer", optimizer)
    if scheduler is not None:
        _check_class(meta, "scheduler", scheduler)

    model.load_state_dict(state)
    _set_states("model", decoded["model_generators"],
                dict(model.named_generators()))
    if optimizer is not None:
        optimizer.load_state_dict(decoded["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(decoded["scheduler"])
    saved_rngs = decoded["rngs"]
    if rngs:
        _set_states("extra", saved_rngs, dict(rngs))
    return {"trainer_state": decoded["trainer_state"], "rngs": saved_rngs,
            "path": json_path}
