"""A small ONNX graph builder over ``onnx.helper``: unique names, initializers, nodes.

Kept apart from the per-module converters (``onnx_export.py``) so that each converter
reads as "this module is these ONNX nodes". ``onnx`` is imported lazily (an optional
extra: ``pip install normlab[onnx]``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Graph", "import_onnx", "OPSET", "IR_VERSION"]

OPSET = 17  # LayerNormalization needs 17; every op used here exists there
IR_VERSION = 8  # the IR version that goes with opset 17 (readable by older runtimes)


def import_onnx():
    """The ``onnx`` module, or an ImportError that says how to install it."""
    try:
        import onnx  # noqa: PLC0415
    except ImportError:
        raise ImportError("export_onnx: expected the onnx package, got ImportError. Install "
                          "it with `pip install normlab[onnx]` (onnx and onnxruntime).") from None
    return onnx


class Graph:
    """Nodes and initializers of one graph, with names made unique by a counter."""

    def __init__(self, dtype):
        self.onnx = import_onnx()
        self.helper = self.onnx.helper
        self.numpy_helper = self.onnx.numpy_helper
        self.dtype = np.dtype(dtype)
        self.nodes, self.initializers = [], []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint.replace('.', '_') or 'x'}_{self._count}"

    def const(self, array, hint: str, dtype=None) -> str:
        """Add ``array`` as an initializer (in the graph's dtype unless given); its name."""
        name = self.fresh(hint)
        arr = np.ascontiguousarray(np.asarray(array, dtype=dtype or self.dtype))
        self.initializers.append(self.numpy_helper.from_array(arr, name))
        return name

    def ints(self, values, hint: str) -> str:
        """An int64 1-D initializer (shapes for Reshape)."""
        return self.const(np.asarray(values, dtype=np.int64), hint, dtype=np.int64)

    def node(self, op: str, inputs, hint: str, **attrs) -> str:
        """Append one node with one output; returns the output's name."""
        out = self.fresh(hint)
        self.nodes.append(self.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def model(self, x: str, x_shape, y: str, y_shape, name: str):
        """The ``ModelProto``: input ``x``, output ``y``, batch axis dynamic (``"N"``)."""
        h = self.helper
        elem = h.np_dtype_to_tensor_dtype(self.dtype)
        inp = h.make_tensor_value_info(x, elem, ["N", *x_shape[1:]])
        out = h.make_tensor_value_info(y, elem, ["N", *y_shape[1:]])
        graph = h.make_graph(self.nodes, name, [inp], [out], self.initializers)
        model = h.make_model(graph, producer_name="normlab",
                             opset_imports=[h.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        return model
