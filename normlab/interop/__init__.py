"""Interoperability: PyTorch state_dicts in and out, BatchNorm folding."""

from normlab.interop.fold import fold_batchnorm  # noqa: F401
from normlab.interop.torch_state import load_torch_state_dict, to_torch_state_dict  # noqa: F401

__all__ = ["fold_batchnorm", "load_torch_state_dict", "to_torch_state_dict"]
