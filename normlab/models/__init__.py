"""Model builders with an injectable norm layer, and the ``build(name, **kw)`` registry.

Every builder takes ``dtype`` and ``rng`` and (except the MNIST-1D linear model) a
``norm`` in ``"batch" | "layer" | "group" | "instance" | None``, turned into layers by
the single factory ``make_norm`` (see ``normlab/models/_norm.py`` for the mapping).
Each module's docstring gives its state_dict key layout, equal to that of the PyTorch
twin with the same children.
"""

from __future__ import annotations

import math

from normlab.errors import NormlabValueError
from normlab.models._norm import NORM_KINDS, group_count, make_norm
from normlab.models.convnet import ThreeLayerConvNet
from normlab.models.lenet import LeNet
from normlab.models.mlp import FullyConnectedNet
from normlab.models.mnist1d import ConvBase, LinearBase, MLPBase
from normlab.models.resnet import BasicBlock, ResNet, resnet18, resnet20, resnet32, resnet56

__all__ = [
    "MODELS", "NORM_KINDS", "build", "make_norm", "group_count",
    "FullyConnectedNet", "ThreeLayerConvNet", "LeNet", "BasicBlock", "ResNet",
    "resnet20", "resnet32", "resnet56", "resnet18", "LinearBase", "MLPBase", "ConvBase",
]


def _image(shape):
    if len(shape) != 3:
        raise NormlabValueError(f"build: expected input_shape (C, H, W) for an image model, got "
                         f"{tuple(shape)}.")
    return shape


def _signal_length(shape):
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[0] != 1):
        raise NormlabValueError(f"build: expected input_shape (L,) or (1, L) for an MNIST-1D model, "
                         f"got {tuple(shape)}.")
    return shape[-1]


# name -> (builder, how input_shape maps to the builder's keyword arguments)
_REGISTRY = {
    "mlp": (FullyConnectedNet, lambda s: {"input_dim": math.prod(s)}),
    "convnet": (ThreeLayerConvNet, lambda s: {"input_dim": tuple(_image(s))}),
    "lenet": (LeNet, lambda s: {"in_channels": _image(s)[0]}),
    "resnet20": (resnet20, lambda s: {"in_channels": _image(s)[0]}),
    "resnet32": (resnet32, lambda s: {"in_channels": _image(s)[0]}),
    "resnet56": (resnet56, lambda s: {"in_channels": _image(s)[0]}),
    "resnet18": (resnet18, lambda s: {"in_channels": _image(s)[0]}),
    "mnist1d-linear": (LinearBase, lambda s: {"input_length": _signal_length(s)}),
    "mnist1d-mlp": (MLPBase, lambda s: {"input_length": _signal_length(s)}),
    "mnist1d-cnn": (ConvBase, lambda s: {"input_length": _signal_length(s)}),
}

MODELS = tuple(_REGISTRY)


def build(name: str, *, input_shape=None, **kw):
    """Build the model registered under ``name``.

    Parameters
    ----------
    name : str
        One of ``MODELS``.
    input_shape : tuple, optional
        Per-sample input shape (a data set's ``input_shape``); translated into the
        builder's own argument (``input_dim``, ``in_channels`` or ``input_length``).
        Keywords in ``kw`` win over it.
    **kw
        Passed to the builder (``num_classes``, ``norm``, ``dtype``, ``rng``, ...).

    Raises
    ------
    ValueError
        For an unknown name (the message lists ``MODELS``) or an input_shape the model
        cannot take.
    """
    if name not in _REGISTRY:
        raise NormlabValueError(f"build: expected a model name in {', '.join(MODELS)}, got {name!r}.")
    builder, from_shape = _REGISTRY[name]
    args = dict(from_shape(tuple(input_shape))) if input_shape is not None else {}
    args.update(kw)
    return builder(**args)
