"""CS231n's three-layer convolutional network with an injectable norm layer.

Key layout: an ``nn.Sequential`` with absent layers left out. With ``norm="batch"``::

    0 Conv2d, 1 BatchNorm2d, 2 ReLU, 3 MaxPool2d(2), 4 Flatten, 5 Linear, 6 ReLU, 7 Linear

and without a norm the indices close up (``0 Conv2d, 1 ReLU, 2 MaxPool2d, ...``), so the
PyTorch twin is ``torch.nn.Sequential`` of the same layers.
"""

from __future__ import annotations

import numpy as np

from normlab import nn
from normlab._random import as_generator
from normlab.errors import NormlabValueError
from normlab.models._norm import check_norm_kind, make_norm

__all__ = ["ThreeLayerConvNet"]


class ThreeLayerConvNet(nn.Sequential):
    """``conv - [norm] - relu - 2x2 max pool - linear - relu - linear``.

    The convolution has stride 1 and padding ``(filter_size - 1) // 2`` so it keeps the
    spatial size; the pool halves it (floor).

    Parameters
    ----------
    input_dim : tuple (C, H, W)
    num_filters : int
    filter_size : int, odd
    hidden_dim : int
    num_classes : int
    norm : {"batch", "layer", "group", "instance", None}
    dtype, rng : as everywhere

    Shape
    -----
    input (N, C, H, W) -> logits (N, num_classes).

    Raises
    ------
    ValueError
        For a bad ``input_dim``, an even ``filter_size``, a non-positive size, an unknown
        norm, or (in ``forward``) an input whose shape is not ``(N, *input_dim)``.
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters: int = 32, filter_size: int = 7,
                 hidden_dim: int = 100, num_classes: int = 10, norm=None,
                 dtype=np.float32, rng=None):
        super().__init__()
        input_dim = tuple(input_dim)
        if len(input_dim) != 3 or not all(isinstance(d, (int, np.integer)) for d in input_dim) \
                or input_dim[0] < 1 or min(input_dim[1:]) < 2:
            raise NormlabValueError(f"ThreeLayerConvNet: expected input_dim (C, H, W) of ints with C >= 1 "
                             f"and H, W >= 2, got {input_dim!r}.")
        for name, v in (("num_filters", num_filters), ("hidden_dim", hidden_dim),
                        ("num_classes", num_classes), ("filter_size", filter_size)):
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise NormlabValueError(f"ThreeLayerConvNet: expected {name} to be a positive int, "
                                 f"got {v!r}.")
        if filter_size % 2 == 0:
            raise NormlabValueError(f"ThreeLayerConvNet: expected an odd filter_size (so that padding "
                             f"keeps the size), got {filter_size}.")
        check_norm_kind("ThreeLayerConvNet", norm)
        self.input_dim = tuple(int(d) for d in input_dim)
        self.norm = norm
        rng = as_generator(rng)
        C, H, W = self.input_dim
        self.append(nn.Conv2d(C, num_filters, filter_size, padding=(filter_size - 1) // 2,
                              dtype=dtype, rng=rng))
        layer = make_norm(norm, num_filters, 2, dtype)
        if layer is not None:
            self.append(layer)
        self.append(nn.ReLU())
        self.append(nn.MaxPool2d(2))
        self.append(nn.Flatten())
        self.append(nn.Linear(num_filters * (H // 2) * (W // 2), hidden_dim, dtype=dtype, rng=rng))
        self.append(nn.ReLU())
        self.append(nn.Linear(hidden_dim, num_classes, dtype=dtype, rng=rng))

    def forward(self, x):
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_dim:
            raise NormlabValueError(
                f"ThreeLayerConvNet: expected input (N, {', '.join(map(str, self.input_dim))}), "
                f"got input of shape {tuple(x.shape)}."
            )
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"input_dim={self.input_dim}, norm={self.norm!r}"
