"""Interoperability: PyTorch state_dicts in and out, BatchNorm folding, ONNX export."""

from normlab.interop.fold import fold_batchnorm  # noqa: F401
from normlab.interop.onnx_export import export_onnx  # noqa: F401
from normlab.interop.torch_state import load_torch_state_dict, to_torch_state_dict  # noqa: F401

__all__ = ["export_onnx", "fold_batchnorm", "load_torch_state_dict", "to_torch_state_dict"]
