"""The book's networks: LeNet with batch norm, ``Residual``, ResNet-18 (two forms).

Built from :mod:`normlab.nn` modules with the book's layer order and child names, so that
``state_dict()`` keys equal those of the book's PyTorch code (``0.weight``, ``1.gamma``,
``resnet_block2.0.conv3.weight``, ``fc.1.bias``...).

- ``lenet_bn()``: Conv(6, 5) BN sigmoid AvgPool(2) Conv(16, 5) BN sigmoid AvgPool(2) Flatten
  Linear(256, 120) BN sigmoid Linear(120, 84) BN sigmoid Linear(84, 10), for 28x28 input
  (no padding: 28 -> 24 -> 12 -> 8 -> 4). ``concise=True`` uses ``nn.BatchNorm2d/1d``
  (the framework layers, PyTorch conventions) in place of the from-scratch ``BatchNorm``.
- ``Residual``: ``relu(bn2(conv2(relu(bn1(conv1(X))))) + X')``, 3x3 convolutions with bias,
  ``X' = conv3(X)`` (1x1, stride ``strides``) when ``use_1x1conv``; BN is ``nn.BatchNorm2d``.
- ``resnet18(num_classes, in_channels=1)``: the book's ``d2l.resnet18`` ("a slightly modified
  ResNet-18" of the multi-GPU sections): 3x3 stem conv stride 1, no max pool.
- ``resnet_chapter(num_classes=10, in_channels=1)``: the ResNet section's network: 7x7 stem
  conv stride 2 padding 3, BN, ReLU, 3x3 max pool stride 2 padding 1, then the same stages.
"""

from __future__ import annotations

import numpy as np

from normlab.errors import NormlabValueError
from normlab import nn
from normlab._random import as_generator
from normlab.d2l.batchnorm import BatchNorm

__all__ = ["lenet_bn", "Residual", "resnet_block", "resnet18", "resnet_chapter"]


def lenet_bn(num_classes: int = 10, in_channels: int = 1, *, concise: bool = False,
             dtype=np.float32, rng=None) -> nn.Sequential:
    """LeNet with batch norm after every convolution and hidden linear layer (the book's).

    Parameters
    ----------
    num_classes, in_channels : int
    concise : bool
        Use ``nn.BatchNorm2d`` / ``nn.BatchNorm1d`` (the book's concise implementation)
        instead of the from-scratch :class:`~normlab.d2l.BatchNorm`.
    dtype, rng : parameter dtype and initialisation randomness (PyTorch's default init)

    Shape
    -----
    (N, in_channels, 28, 28) -> (N, num_classes).
    """
    rng = as_generator(rng)

    def bn(C, dims):
        if concise:
            return (nn.BatchNorm2d if dims == 4 else nn.BatchNorm1d)(C, dtype=dtype)
        return BatchNorm(C, num_dims=dims, dtype=dtype)

    return nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5, dtype=dtype, rng=rng), bn(6, 4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5, dtype=dtype, rng=rng), bn(16, 4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120, dtype=dtype, rng=rng), bn(120, 2), nn.Sigmoid(),
        nn.Linear(120, 84, dtype=dtype, rng=rng), bn(84, 2), nn.Sigmoid(),
        nn.Linear(84, num_classes, dtype=dtype, rng=rng))


class Residual(nn.Module):
    """The book's residual block.

    Parameters
    ----------
    input_channels, num_channels : int
    use_1x1conv : bool
        Project the shortcut with a 1x1 convolution ``conv3`` (needed when the shape changes).
    strides : int
        Stride of ``conv1`` and ``conv3``.
    dtype, rng : as everywhere

    Shape
    -----
    (N, input_channels, H, W) -> (N, num_channels, ceil(H / strides), ceil(W / strides)).

    Raises
    ------
    ValueError
        If the shortcut cannot be the identity (channels or stride change) but
        ``use_1x1conv`` is False.
    """

    def __init__(self, input_channels: int, num_channels: int, use_1x1conv: bool = False,
                 strides: int = 1, *, dtype=np.float32, rng=None):
        super().__init__()
        if not use_1x1conv and (input_channels != num_channels or strides != 1):
            raise NormlabValueError(
                f"Residual: expected use_1x1conv=True when the shape changes, got "
                f"input_channels={input_channels}, num_channels={num_channels}, "
                f"strides={strides} with use_1x1conv=False. The sum X + Y needs equal shapes."
            )
        rng = as_generator(rng)
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1,
                               stride=strides, dtype=dtype, rng=rng)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1,
                               dtype=dtype, rng=rng)
        self.conv3 = (nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides,
                                dtype=dtype, rng=rng) if use_1x1conv else None)
        self.bn1 = nn.BatchNorm2d(num_channels, dtype=dtype)
        self.bn2 = nn.BatchNorm2d(num_channels, dtype=dtype)
        self.relu1 = nn.ReLU()
        self.relu2 = nn.ReLU()

    def forward(self, X):
        Y = self.relu1(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        shortcut = X if self.conv3 is None else self.conv3(X)
        self._cache = True
        return self.relu2(Y + shortcut)

    def backward(self, dout):
        self._require_cache()
        dsum = self.relu2.backward(dout)  # the sum's gradient goes to both addends
        dX_main = self.conv1.backward(self.bn1.backward(self.relu1.backward(
            self.conv2.backward(self.bn2.backward(dsum)))))
        dX_short = dsum if self.conv3 is None else self.conv3.backward(dsum)
        return dX_main + dX_short  # X feeds both paths: their gradients add


def resnet_block(input_channels: int, num_channels: int, num_residuals: int,
                 first_block: bool = False, *, dtype=np.float32, rng=None) -> list:
    """The book's stage: ``num_residuals`` blocks; the first halves the size (1x1 shortcut)
    unless ``first_block``. Returns a list of :class:`Residual` (wrap in ``nn.Sequential``)."""
    rng = as_generator(rng)
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2,
                                dtype=dtype, rng=rng))
        else:
            blk.append(Residual(num_channels, num_channels, dtype=dtype, rng=rng))
    return blk


# (input channels, channels, first_block) of the four stages of two blocks each
_WIDTHS = [(64, 64, True), (64, 128, False), (128, 256, False), (256, 512, False)]


def _stages(stem: dict, num_classes: int, dtype, rng) -> nn.Sequential:
    layers = dict(stem)
    for k, (c_in, c_out, first) in enumerate(_WIDTHS, start=1):
        layers[f"resnet_block{k}"] = nn.Sequential(
            *resnet_block(c_in, c_out, 2, first_block=first, dtype=dtype, rng=rng))
    layers["global_avg_pool"] = nn.AdaptiveAvgPool2d((1, 1))
    layers["fc"] = nn.Sequential(nn.Flatten(), nn.Linear(512, num_classes, dtype=dtype, rng=rng))
    return nn.Sequential(layers)


def resnet18(num_classes: int, in_channels: int = 1, *, dtype=np.float32,
             rng=None) -> nn.Sequential:
    """The book's ``d2l.resnet18``: 3x3 stem (stride 1, padding 1), BN, ReLU, four stages of
    two :class:`Residual` blocks (64, 128, 256, 512 channels), global average pool, Linear.

    Shape
    -----
    (N, in_channels, H, W) -> (N, num_classes).
    """
    rng = as_generator(rng)
    stem = {"0": nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, dtype=dtype,
                           rng=rng),
            "1": nn.BatchNorm2d(64, dtype=dtype), "2": nn.ReLU()}
    return _stages(stem, num_classes, dtype, rng)


def resnet_chapter(num_classes: int = 10, in_channels: int = 1, *, dtype=np.float32,
                   rng=None) -> nn.Sequential:
    """The ResNet section's network: the 7x7 stem (stride 2, padding 3), BN, ReLU, 3x3 max
    pool (stride 2, padding 1), then the stages of :func:`resnet18`; keys as the book's
    ``nn.Sequential(b1, b2, b3, b4, b5, AdaptiveAvgPool2d, Flatten, Linear)``. The book trains
    it on Fashion-MNIST resized to 96x96.

    Shape
    -----
    (N, in_channels, H, W) -> (N, num_classes).
    """
    rng = as_generator(rng)
    b1 = nn.Sequential(nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3,
                                 dtype=dtype, rng=rng),
                       nn.BatchNorm2d(64, dtype=dtype), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    stages = [nn.Sequential(*resnet_block(c_in, c_out, 2, first_block=first, dtype=dtype,
                                          rng=rng)) for c_in, c_out, first in _WIDTHS]
    return nn.Sequential(b1, *stages, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                         nn.Linear(512, num_classes, dtype=dtype, rng=rng))
