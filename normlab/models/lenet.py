"""LeNet-5 in the form of Dive into Deep Learning (sigmoid, average pooling), optional BN.

d2l's classic LeNet (section 7.6) pads the first convolution by 2 so that a 28x28
image gives 16 maps of 5x5 before the classifier (``Linear(400, 120)``); the BN version
of section 8.5 puts a BatchNorm after every convolution and hidden linear layer. This
builder uses the padding of the classic one with the norm placement of the BN one.

Key layout (``norm="batch"``), an ``nn.Sequential``::

    0 Conv2d(C,6,5,padding=2), 1 BatchNorm2d(6), 2 Sigmoid, 3 AvgPool2d(2, 2),
    4 Conv2d(6,16,5), 5 BatchNorm2d(16), 6 Sigmoid, 7 AvgPool2d(2, 2), 8 Flatten,
    9 Linear(400,120), 10 BatchNorm1d(120), 11 Sigmoid,
    12 Linear(120,84), 13 BatchNorm1d(84), 14 Sigmoid, 15 Linear(84, num_classes)

With ``norm=None`` the norm layers are left out and the indices close up.
"""

from __future__ import annotations

import numpy as np

from normlab import nn
from normlab._random import as_generator
from normlab.errors import NormlabValueError
from normlab.models._norm import check_norm_kind, make_norm

__all__ = ["LeNet"]


class LeNet(nn.Sequential):
    """LeNet-5 for ``(N, in_channels, 28, 28)`` input.

    Parameters
    ----------
    norm : {"batch", None, "layer", "group"}, default "batch"
        Norm after each convolution and hidden linear layer ("instance" is refused on
        the linear layers by ``make_norm``).
    in_channels : int
    num_classes : int
    dtype, rng : as everywhere

    Shape
    -----
    input (N, in_channels, 28, 28) -> logits (N, num_classes).

    Raises
    ------
    ValueError
        For an unknown norm, a non-positive size, or (in ``forward``) any other input shape.
    """

    def __init__(self, norm="batch", in_channels: int = 1, num_classes: int = 10,
                 dtype=np.float32, rng=None):
        super().__init__()
        check_norm_kind("LeNet", norm)
        for name, v in (("in_channels", in_channels), ("num_classes", num_classes)):
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise NormlabValueError(f"LeNet: expected {name} to be a positive int, got {v!r}.")
        self.norm = norm
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        rng = as_generator(rng)

        def add(layer):
            if layer is not None:
                self.append(layer)

        add(nn.Conv2d(self.in_channels, 6, 5, padding=2, dtype=dtype, rng=rng))
        add(make_norm(norm, 6, 2, dtype))
        add(nn.Sigmoid())
        add(nn.AvgPool2d(2, stride=2))
        add(nn.Conv2d(6, 16, 5, dtype=dtype, rng=rng))
        add(make_norm(norm, 16, 2, dtype))
        add(nn.Sigmoid())
        add(nn.AvgPool2d(2, stride=2))
        add(nn.Flatten())
        add(nn.Linear(16 * 5 * 5, 120, dtype=dtype, rng=rng))
        add(make_norm(norm, 120, 0, dtype))
        add(nn.Sigmoid())
        add(nn.Linear(120, 84, dtype=dtype, rng=rng))
        add(make_norm(norm, 84, 0, dtype))
        add(nn.Sigmoid())
        add(nn.Linear(84, self.num_classes, dtype=dtype, rng=rng))

    def forward(self, x):
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels, 28, 28):
            raise NormlabValueError(
                f"LeNet: expected input (N, {self.in_channels}, 28, 28), got input of shape "
                f"{tuple(x.shape)}. Pad or resize images to 28x28."
            )
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}, in_channels={self.in_channels}, num_classes={self.num_classes}"
