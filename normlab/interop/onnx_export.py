"""ONNX export of eval-mode normlab models: ``export_onnx(model, path, input_shape)``.

The module tree is walked with a registry of converters, one function per module type
(``@converter(nn.Linear)`` ...), found through the class's MRO. A converter gets the
module, the graph, the name of its input and a sample input value (a real array of
``input_shape``), and returns its output's name and value: the sample values give every
converter static shapes (flatten, adaptive pooling) and let containers and residual
blocks recurse into their children. Layer mapping:

=====================================  ================================================
normlab                                ONNX (opset 17)
=====================================  ================================================
Linear                                 Gemm (transB=1)
Conv1d, Conv2d                         Conv (pads, strides, dilations, group)
BatchNorm1d/2d (not folded)            BatchNormalization (running statistics)
LayerNorm                              LayerNormalization
GroupNorm                              Reshape, InstanceNormalization, Reshape, Mul, Add
InstanceNorm1d/2d (instance stats)     InstanceNormalization
ReLU, LeakyReLU, Sigmoid, Tanh         Relu, LeakyRelu, Sigmoid, Tanh
MaxPool1d/2d, AvgPool1d/2d             MaxPool, AveragePool (count_include_pad=1)
AdaptiveAvgPool2d                      GlobalAveragePool, or AveragePool when it divides
Flatten                                Flatten / Reshape
Identity, Dropout (eval)               nothing
Sequential and the built-in models     their children in order; residual adds as Add
=====================================  ================================================

With ``fold_bn=True`` (default) BatchNorms right after a Linear/Conv are folded first
(``normlab.interop.fold_batchnorm``), so they cost nothing at inference.
"""

from __future__ import annotations

import copy
import os

import numpy as np

from normlab.errors import NormlabRuntimeError, NormlabValueError
from normlab import backend, nn
from normlab.interop._onnx_graph import Graph
from normlab.interop.fold import fold_batchnorm
from normlab.models import ConvBase, LinearBase, MLPBase
from normlab.models.convnet import ThreeLayerConvNet
from normlab.models.lenet import LeNet
from normlab.models.mlp import FullyConnectedNet
from normlab.models.resnet import BasicBlock, ResNet

__all__ = ["export_onnx", "converter", "CONVERTERS"]

CONVERTERS: dict[type, callable] = {}


def converter(*classes):
    """Register the decorated function as the ONNX converter of ``classes``."""
    def register(fn):
        for cls in classes:
            CONVERTERS[cls] = fn
        return fn
    return register


def _find(m):
    for cls in type(m).__mro__:
        if cls in CONVERTERS:
            if cls is nn.Sequential and type(m) is not nn.Sequential and \
                    type(m).forward is not nn.Sequential.forward:
                break  # a Sequential subclass with its own forward: unknown computation
            return CONVERTERS[cls]
    return None


def _convert(m, g: Graph, x: str, xv, where: str):
    fn = _find(m)
    if fn is None:
        raise NormlabValueError(
            f"export_onnx: expected modules with an ONNX converter, got {type(m).__name__} at "
            f"{where or 'the top level'!r}. Supported: "
            f"{', '.join(sorted({c.__name__ for c in CONVERTERS}))}."
        )
    return fn(m, g, x, xv, where)


def _child(m, name, g, x, xv, where):
    return _convert(m._modules[name], g, x, xv, f"{where}.{name}" if where else name)


# ------------------------------------------------------------------ containers and models


@converter(nn.Sequential, ResNet, LeNet, FullyConnectedNet, ThreeLayerConvNet)
def _sequential(m, g, x, xv, where):
    # The models' own forwards only validate the input shape, then run Sequential's.
    for name in m._modules:
        x, xv = _child(m, name, g, x, xv, where)
    return x, xv


@converter(BasicBlock)
def _basic_block(m, g, x, xv, where):
    h, hv = x, xv
    for name in ("conv1", "bn1", "relu1", "conv2", "bn2"):
        h, hv = _child(m, name, g, h, hv, where)
    s, sv = (x, xv) if m.downsample is None else _child(m, "downsample", g, x, xv, where)
    y = g.node("Add", [h, s], f"{where}.add")
    return _child(m, "relu2", g, y, hv + sv, where)


def _signal(g, x, xv, length, shape, where):
    """The MNIST-1D models' ``(N, L)`` / ``(N, 1, L)`` input reshaped to ``shape``."""
    y = g.node("Reshape", [x, g.ints([0, *shape], f"{where}.shape")], f"{where}.reshape")
    return y, xv.reshape(xv.shape[0], *shape)


@converter(LinearBase)
def _linear_base(m, g, x, xv, where):
    h, hv = _signal(g, x, xv, m.input_length, [m.input_length], where)
    return _child(m, "linear", g, h, hv, where)


@converter(ConvBase)
def _conv_base(m, g, x, xv, where):
    h, hv = _signal(g, x, xv, m.input_length, [1, m.input_length], where)
    return _sequential(m, g, h, hv, where)


@converter(MLPBase)
def _mlp_base(m, g, x, xv, where):
    h, hv = _signal(g, x, xv, m.input_length, [m.input_length], where)
    for name in ("linear1", "norm1", "relu1"):
        h, hv = _child(m, name, g, h, hv, where)
    r, rv = h, hv
    for name in ("linear2", "norm2", "relu2"):
        r, rv = _child(m, name, g, r, rv, where)
    h2 = g.node("Add", [h, r], f"{where}.add")  # h2 = h1 + f(h1)
    return _child(m, "linear3", g, h2, hv + rv, where)


# ------------------------------------------------------------------ layers


def _run(m, xv):
    return m(xv)  # eval mode: the module's own output gives the next shapes


@converter(nn.Identity, nn.Dropout)
def _identity(m, g, x, xv, where):
    return x, _run(m, xv)


@converter(nn.Linear)
def _linear(m, g, x, xv, where):
    ins = [x, g.const(m.params["weight"], f"{where}.weight")]
    if "bias" in m.params:
        ins.append(g.const(m.params["bias"], f"{where}.bias"))
    return g.node("Gemm", ins, where, transB=1), _run(m, xv)


def _conv_attrs(m):
    return {"kernel_shape": list(m.kernel_size), "strides": list(m.stride),
            "pads": list(m.padding) * 2, "dilations": list(m.dilation), "group": m.groups}


@converter(nn.Conv1d, nn.Conv2d)
def _conv(m, g, x, xv, where):
    ins = [x, g.const(m.params["weight"], f"{where}.weight")]
    if "bias" in m.params:
        ins.append(g.const(m.params["bias"], f"{where}.bias"))
    return g.node("Conv", ins, where, **_conv_attrs(m)), _run(m, xv)


@converter(nn.BatchNorm1d, nn.BatchNorm2d)
def _batch_norm(m, g, x, xv, where):
    if "running_mean" not in m.buffers:
        raise NormlabValueError(f"export_onnx: expected BatchNorm with running statistics, got "
                         f"track_running_stats=False at {where!r}. It normalises with batch "
                         "statistics even in eval mode; ONNX inference cannot.")
    C = m.buffers["running_mean"].shape[0]
    scale = m.params.get("weight", np.ones(C))
    bias = m.params.get("bias", np.zeros(C))
    ins = [x, g.const(scale, f"{where}.weight"), g.const(bias, f"{where}.bias"),
           g.const(m.buffers["running_mean"], f"{where}.running_mean"),
           g.const(m.buffers["running_var"], f"{where}.running_var")]
    return g.node("BatchNormalization", ins, where, epsilon=float(m.eps)), _run(m, xv)


@converter(nn.LayerNorm)
def _layer_norm(m, g, x, xv, where):
    shape = tuple(m.normalized_shape)
    ins = [x, g.const(m.params.get("weight", np.ones(shape)), f"{where}.weight")]
    if "bias" in m.params:
        ins.append(g.const(m.params["bias"], f"{where}.bias"))
    return g.node("LayerNormalization", ins, where, axis=-len(shape),
                  epsilon=float(m.eps)), _run(m, xv)


@converter(nn.InstanceNorm1d, nn.InstanceNorm2d)
def _instance_norm(m, g, x, xv, where):
    if "running_mean" in m.buffers:
        raise NormlabValueError(f"export_onnx: expected InstanceNorm with instance statistics, got "
                         f"track_running_stats=True at {where!r}, which has no ONNX operator.")
    C = xv.shape[1]
    ins = [x, g.const(m.params.get("weight", np.ones(C)), f"{where}.weight"),
           g.const(m.params.get("bias", np.zeros(C)), f"{where}.bias")]
    return g.node("InstanceNormalization", ins, where, epsilon=float(m.eps)), _run(m, xv)


@converter(nn.GroupNorm)
def _group_norm(m, g, x, xv, where):
    # InstanceNormalization on (N, G, C/G * spatial) normalises each group of each sample;
    # the per-channel affine follows on the restored shape.
    G = m.num_groups
    h = g.node("Reshape", [x, g.ints([0, G, -1], f"{where}.groups")], f"{where}.grouped")
    h = g.node("InstanceNormalization", [h, g.const(np.ones(G), f"{where}.one"),
                                         g.const(np.zeros(G), f"{where}.zero")],
               f"{where}.norm", epsilon=float(m.eps))
    h = g.node("Reshape", [h, g.ints([0, *xv.shape[1:]], f"{where}.shape")], f"{where}.back")
    affine = (-1,) + (1,) * (xv.ndim - 2)
    if "weight" in m.params:
        h = g.node("Mul", [h, g.const(m.params["weight"].reshape(affine), f"{where}.weight")],
                   f"{where}.scale")
    if "bias" in m.params:
        h = g.node("Add", [h, g.const(m.params["bias"].reshape(affine), f"{where}.bias")],
                   f"{where}.shift")
    return h, _run(m, xv)


_ELEMENTWISE = {nn.ReLU: "Relu", nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh"}


def _elementwise(op: str):
    def convert(m, g, x, xv, where):
        return g.node(op, [x], where), _run(m, xv)
    return convert


for _cls, _op in _ELEMENTWISE.items():
    converter(_cls)(_elementwise(_op))


@converter(nn.LeakyReLU)
def _leaky_relu(m, g, x, xv, where):
    return g.node("LeakyRelu", [x], where, alpha=float(m.negative_slope)), _run(m, xv)


def _pool_attrs(m):
    return {"kernel_shape": list(m.kernel_size), "strides": list(m.stride),
            "pads": list(m.padding) * 2}


@converter(nn.MaxPool1d, nn.MaxPool2d)
def _max_pool(m, g, x, xv, where):
    return g.node("MaxPool", [x], where, **_pool_attrs(m)), _run(m, xv)


@converter(nn.AvgPool1d, nn.AvgPool2d)
def _avg_pool(m, g, x, xv, where):
    return g.node("AveragePool", [x], where, count_include_pad=1,
                  **_pool_attrs(m)), _run(m, xv)


@converter(nn.AdaptiveAvgPool2d)
def _adaptive_avg_pool(m, g, x, xv, where):
    yv = _run(m, xv)
    (H, W), (OH, OW) = xv.shape[2:], yv.shape[2:]
    if (OH, OW) == (1, 1):
        return g.node("GlobalAveragePool", [x], where), yv
    if H % OH or W % OW:
        raise NormlabValueError(f"export_onnx: expected AdaptiveAvgPool2d bins of equal size, got "
                         f"{H}x{W} -> {OH}x{OW} at {where!r}. Export with an input size that "
                         "the output size divides.")
    k = [H // OH, W // OW]
    return g.node("AveragePool", [x], where, kernel_shape=k, strides=k), yv


@converter(nn.Flatten)
def _flatten(m, g, x, xv, where):
    yv = _run(m, xv)
    if m.start_dim % xv.ndim == 1 and m.end_dim % xv.ndim == xv.ndim - 1:
        return g.node("Flatten", [x], where, axis=1), yv
    y = g.node("Reshape", [x, g.ints([0, *yv.shape[1:]], f"{where}.shape")], where)
    return y, yv


# ------------------------------------------------------------------ entry point


def _training_module(model):
    for name, m in model.named_modules():
        if m.training:
            return name or type(model).__name__
    return None


def export_onnx(model, path, input_shape, fold_bn: bool = True):
    """Write ``model`` (eval mode) as an ONNX file (opset 17) and return the ``ModelProto``.

    Parameters
    ----------
    model : normlab.nn.Module
        Every submodule in eval mode; it is copied, never modified.
    path : str or os.PathLike
        Output ``.onnx`` file (written atomically).
    input_shape : tuple of int
        Shape of one input batch, batch axis first, e.g. ``(1, 3, 32, 32)``. The exported
        graph's batch axis is dynamic (``"N"``); the other axes are fixed.
    fold_bn : bool
        Fold BatchNorms into the preceding Linear/Conv first (``fold_batchnorm``); others
        become ``BatchNormalization`` nodes.

    Returns
    -------
    onnx.ModelProto
        The exported model (``onnx.checker.check_model`` passes on it).

    Raises
    ------
    RuntimeError
        If the model or a submodule is in training mode (names it).
    ValueError
        For a module without a converter (names it and its place), a BatchNorm without
        running statistics, an input shape the model does not take.
    ImportError
        Without the ``onnx`` package (``pip install normlab[onnx]``).
    """
    from normlab._io import atomic_write_bytes  # noqa: PLC0415

    where = _training_module(model)
    if where is not None:
        raise NormlabRuntimeError(f"export_onnx: expected a model in eval mode, got training mode at "
                           f"{where!r}. Call model.eval() first.")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) < 2 or min(shape) < 1:
        raise NormlabValueError(f"export_onnx: expected input_shape (N, ...) of positive ints with "
                         f"the batch axis first, got {tuple(input_shape)}.")
    net = fold_batchnorm(model) if fold_bn else copy.deepcopy(model)
    net.to("cpu")
    params = [p for _, p, _ in net.named_parameters()]
    dtype = params[0].dtype if params else np.float32
    g = Graph(dtype)
    x0 = np.zeros(shape, dtype=dtype)
    net(x0)  # the model's own input checks (e.g. LeNet's 28x28) speak first
    y, yv = _convert(net, g, "input", x0, "")
    if y == "input":
        y = g.node("Identity", [y], "output")
    onnx_model = g.model("input", shape, y, backend.to_numpy(yv).shape, type(model).__name__)
    g.onnx.checker.check_model(onnx_model)
    atomic_write_bytes(os.fspath(path), onnx_model.SerializeToString())
    return onnx_model
