"""PyTorch state_dicts in and out: keys and layouts are 1:1 with the PyTorch twin.

normlab stores parameters under PyTorch's names and layouts (``Linear.weight`` is
``(out, in)``, ``Conv2d.weight`` is ``(out, in, kh, kw)``), so moving weights is a
key-by-key copy with a dtype cast; nothing is transposed. Torch is imported lazily,
only by ``to_torch_state_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from normlab import backend
from normlab.errors import NormlabTypeError, NormlabValueError

__all__ = ["load_torch_state_dict", "to_torch_state_dict"]


def _as_numpy(key: str, value):
    """A torch tensor, NumPy/CuPy array or Python number as a NumPy array."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        t = value.detach().cpu()
        if t.is_floating_point() and t.dtype.itemsize < 4:  # bfloat16 has no NumPy dtype
            t = t.float()
        return t.numpy()
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return backend.to_numpy(value)
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return np.asarray(value)
    raise NormlabTypeError(
        f"load_torch_state_dict: expected a torch.Tensor or an array under {key!r}, got "
        f"{type(value).__name__}."
    )


def load_torch_state_dict(model, state_dict) -> None:
    """Copy a PyTorch state_dict into ``model`` in place, cast to the model's dtypes.

    Parameters
    ----------
    model : normlab.nn.Module
    state_dict : mapping of str to torch.Tensor or ndarray, or a ``torch.nn.Module``
        Keys must equal ``model.state_dict()``'s exactly (integer buffers such as
        ``num_batches_tracked`` included).

    Raises
    ------
    TypeError
        If ``state_dict`` is not a mapping, or a value is neither a tensor nor an array.
    ValueError
        Listing, in one message, every missing key, every unexpected key and every
        key whose shape differs (expected vs got). Nothing is copied in that case.
    """
    if not isinstance(state_dict, Mapping) and callable(getattr(state_dict, "state_dict", None)):
        state_dict = state_dict.state_dict()
    if not isinstance(state_dict, Mapping):
        raise NormlabTypeError(
            f"load_torch_state_dict: expected a mapping of names to tensors, got "
            f"{type(state_dict).__name__}. Pass torch_module.state_dict()."
        )
    arrays = {k: _as_numpy(k, v) for k, v in state_dict.items()}
    own = model.state_dict()
    problems = []
    missing = [k for k in own if k not in arrays]
    unexpected = [k for k in arrays if k not in own]
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    for k, a in arrays.items():
        if k in own and tuple(own[k].shape) != tuple(a.shape):
            problems.append(f"{k!r}: expected shape {tuple(own[k].shape)}, got {tuple(a.shape)}")
    if problems:
        raise NormlabValueError(
            f"load_torch_state_dict: expected the keys and shapes of "
            f"{type(model).__name__}.state_dict(), got " + "; ".join(problems) + ". Build the "
            "PyTorch twin with the key layout documented in the normlab model."
        )
    model.load_state_dict(arrays)


def to_torch_state_dict(model) -> dict:
    """``model.state_dict()`` as CPU ``torch.Tensor``s (same keys, dtypes and layouts).

    Raises
    ------
    ImportError
        If PyTorch is not installed.
    """
    try:
        import torch  # noqa: PLC0415 (optional dependency, imported on use)
    except ImportError as e:
        raise ImportError(
            f"to_torch_state_dict: expected PyTorch to be installed, got ImportError ({e}). "
            "Install it with `pip install torch`."
        ) from e
    return {k: torch.from_numpy(np.array(backend.to_numpy(v), order="C", copy=True))
            for k, v in model.state_dict().items()}
