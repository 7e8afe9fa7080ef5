"""ResNets with explicit residual wiring: CIFAR ``resnet20/32/56`` and ImageNet-stem ``resnet18``.

``BasicBlock.forward`` computes ``relu(main(x) + shortcut(x))`` and its ``backward``
sends the upstream gradient down both paths and adds the two ``dx`` itself: the sum
node of the forward becomes a fan-out in the backward, the fan-out of ``x`` a sum.

Key layout (torchvision's names)::

    conv1, bn1, [maxpool], layer1.0.conv1, layer1.0.bn1, layer1.0.conv2, layer1.0.bn2,
    layer2.0.downsample.0 (1x1 conv), layer2.0.downsample.1 (BN), ..., fc

ReLUs, pools and the flatten hold no state, so the PyTorch twin may reuse one ReLU
module; the keys are unaffected. ``downsample`` is absent (``None``) where the block
keeps the shape (identity shortcut); where it changes, it is the option-B projection
``Sequential(Conv2d(1x1, stride), norm)``. Convolutions have no bias when a norm
follows them (as in torchvision); with ``norm=None`` they get one.
"""

from __future__ import annotations

import math

import numpy as np

from normlab import nn
from normlab._random import as_generator
from normlab.errors import NormlabValueError
from normlab.models._chain import NamedChain
from normlab.models._norm import check_norm_kind, make_norm
from normlab.nn import _fusion, _owned
from normlab.validation import check_bool

__all__ = ["BasicBlock", "ResNet", "resnet20", "resnet32", "resnet56", "resnet18"]


def _norm_or_identity(norm, C, dtype):
    layer = make_norm(norm, C, 2, dtype)
    return nn.Identity() if layer is None else layer


def _conv(c_in, c_out, k, stride, padding, norm, dtype, rng):
    """Conv2d with torchvision's ``kaiming_normal_(mode="fan_out", nonlinearity="relu")``."""
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=norm is None,
                     dtype=dtype, rng=rng)
    std = math.sqrt(2.0 / (c_out * k * k))
    conv.params["weight"] = (rng.standard_normal((c_out, c_in, k, k)) * std).astype(dtype)
    return conv


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` with 3x3 convolutions.

    Parameters
    ----------
    in_planes, planes : int
        Input and output channels.
    stride : int
        Stride of ``conv1`` and of the projection.
    norm : {"batch", "layer", "group", "instance", None}
        ``None`` puts ``Identity`` where the norms were (keys ``bn1``/``bn2`` vanish).
    dtype, rng : as everywhere

    Shape
    -----
    (N, in_planes, H, W) -> (N, planes, ceil(H / stride), ceil(W / stride)).
    """

    #: (layer, norm) child pairs that ``normlab.interop.fold_batchnorm`` may fold.
    fold_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, in_planes: int, planes: int, stride: int = 1, norm="batch",
                 dtype=np.float32, rng=None):
        super().__init__()
        check_norm_kind("BasicBlock", norm)
        rng = as_generator(rng)
        self.in_planes, self.planes, self.stride = int(in_planes), int(planes), int(stride)
        self.conv1 = _conv(in_planes, planes, 3, stride, 1, norm, dtype, rng)
        self.bn1 = _norm_or_identity(norm, planes, dtype)
        self.relu1 = nn.ReLU()
        self.conv2 = _conv(planes, planes, 3, 1, 1, norm, dtype, rng)
        self.bn2 = _norm_or_identity(norm, planes, dtype)
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                _conv(in_planes, planes, 1, stride, 0, norm, dtype, rng),
                _norm_or_identity(norm, planes, dtype))
        else:
            self.downsample = None
        self.relu2 = nn.ReLU()

    def forward(self, x):
        # BN + ReLU in one pass where they fuse (nn._fusion); at inference over the conv's
        # fresh output, in place, and conv2 writes over that too (x is the shortcut: kept)
        y = self.conv1(x)
        fresh = _fusion.fresh_output(self.conv1)
        if _fusion.fusable(self.bn1, self.relu1):
            z = _fusion.bn_act(self.bn1, self.relu1, y, overwrite_x=fresh)
            fresh, y = fresh and z is y, z
        else:
            y, fresh = self.relu1(self.bn1(y)), False
        fresh2 = _fusion.fresh_output(self.conv2)
        y = _fusion.conv_over(self.conv2, y) if fresh and fresh2 else self.conv2(y)
        shortcut = x if self.downsample is None else self.downsample(x)
        self._cache = True
        if _fusion.fusable(self.bn2, self.relu2) and y.shape == shortcut.shape:
            return _fusion.bn_act(self.bn2, self.relu2, y, residual=shortcut,
                                  overwrite_x=fresh2)
        return self.relu2(self.bn2(y) + shortcut)

    def backward(self, dout, overwrite_dout=False):
        """``overwrite_dout``: the caller hands ``dout`` over (``nn._owned``); the
        gradient of the block's sum may be written over it."""
        self._require_cache()
        owned = check_bool(overwrite_dout, "overwrite_dout", "BasicBlock")
        # d(main + shortcut): the same for both addends, so kept for the shortcut (bn2 is
        # not handed it)
        dsum, _ = _owned.backward(self.relu2, dout, owned)
        d, owned = dsum, False
        for m in (self.bn2, self.conv2, self.relu1, self.bn1, self.conv1):
            d, owned = _owned.backward(m, d, owned)
        dx_short = dsum if self.downsample is None else self.downsample.backward(dsum)
        # x fanned out to both paths: gradients add (in place: d is conv1's fresh array)
        d += dx_short
        return d

    _dx_fresh = _takes_dout = True  # nn._owned

    def extra_repr(self) -> str:
        return f"in_planes={self.in_planes}, planes={self.planes}, stride={self.stride}"


class ResNet(NamedChain):
    """A stem, stages of ``BasicBlock``s, global average pooling and a linear classifier.

    Parameters
    ----------
    blocks : sequence of int
        Blocks per stage; stage ``i`` has ``widths[i]`` channels and stride 2 except the first.
    widths : sequence of int
    stem : {"cifar", "imagenet"}
        "cifar": 3x3 conv (stride 1) to ``widths[0]``, norm, ReLU. "imagenet": 7x7 conv
        stride 2 padding 3, norm, ReLU, 3x3 max pool stride 2 padding 1 (d2l/torchvision).
    in_channels, num_classes : int
    norm : {"batch", "layer", "group", "instance", None}
    zero_init_residual : bool
        Zero the weight (gamma) of each block's last norm, so every block starts as the
        identity (Goyal et al. 2017).
    dtype, rng : as everywhere

    Shape
    -----
    (N, in_channels, H, W) -> (N, num_classes).

    Raises
    ------
    ValueError
        For mismatched blocks/widths, an unknown stem or norm, non-positive sizes, and
        ``zero_init_residual=True`` with ``norm=None`` (there is no gamma to zero).
    """

    fold_pairs = (("conv1", "bn1"),)

    def __init__(self, blocks, widths, stem: str = "cifar", in_channels: int = 3,
                 num_classes: int = 10, norm="batch", zero_init_residual: bool = False,
                 dtype=np.float32, rng=None):
        super().__init__()
        blocks, widths = tuple(blocks), tuple(widths)
        if len(blocks) == 0 or len(blocks) != len(widths):
            raise NormlabValueError(f"ResNet: expected blocks and widths of the same non-zero length, "
                             f"got blocks={blocks} and widths={widths}.")
        for name, vals in (("blocks", blocks), ("widths", widths),
                           ("in_channels", (in_channels,)), ("num_classes", (num_classes,))):
            if not all(isinstance(v, (int, np.integer)) and v > 0 for v in vals):
                raise NormlabValueError(f"ResNet: expected {name} to be positive ints, got "
                                 f"{vals if len(vals) > 1 else vals[0]!r}.")
        if stem not in ("cifar", "imagenet"):
            raise NormlabValueError(f"ResNet: expected stem 'cifar' or 'imagenet', got {stem!r}.")
        check_norm_kind("ResNet", norm)
        if zero_init_residual and norm is None:
            raise NormlabValueError("ResNet: expected a norm layer for zero_init_residual=True, got "
                             "norm=None. Pass norm='batch' or zero_init_residual=False.")
        rng = as_generator(rng)
        self.in_channels, self.num_classes, self.norm = int(in_channels), int(num_classes), norm
        if stem == "cifar":
            self.conv1 = _conv(in_channels, widths[0], 3, 1, 1, norm, dtype, rng)
        else:
            self.conv1 = _conv(in_channels, widths[0], 7, 2, 3, norm, dtype, rng)
        self.bn1 = _norm_or_identity(norm, widths[0], dtype)
        self.relu = nn.ReLU()
        if stem == "imagenet":
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c_in = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            stage = nn.Sequential(*[
                BasicBlock(c_in if b == 0 else w, w, (1 if i == 0 else 2) if b == 0 else 1,
                           norm=norm, dtype=dtype, rng=rng)
                for b in range(n)])
            setattr(self, f"layer{i + 1}", stage)
            c_in = w
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c_in, num_classes, dtype=dtype, rng=rng)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock) and "weight" in m.bn2.params:
                    m.bn2.params["weight"] = m.bn2.params["weight"] * 0.0

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise NormlabValueError(
                f"ResNet: expected input (N, {self.in_channels}, H, W), got input of shape "
                f"{tuple(x.shape)}."
            )
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}, norm={self.norm!r}"


def _cifar(n: int, base_width: int, **kw) -> ResNet:
    return ResNet((n, n, n), (base_width, 2 * base_width, 4 * base_width), stem="cifar", **kw)


def resnet20(in_channels: int = 3, num_classes: int = 10, norm="batch", zero_init_residual=False,
             base_width: int = 16, dtype=np.float32, rng=None) -> ResNet:
    """CIFAR ResNet-20 (He et al. 2016, 6n+2 layers with n=3, option-B projection shortcuts)."""
    return _cifar(3, base_width, in_channels=in_channels, num_classes=num_classes, norm=norm,
                  zero_init_residual=zero_init_residual, dtype=dtype, rng=rng)


def resnet32(in_channels: int = 3, num_classes: int = 10, norm="batch", zero_init_residual=False,
             base_width: int = 16, dtype=np.float32, rng=None) -> ResNet:
    """CIFAR ResNet-32 (n=5)."""
    return _cifar(5, base_width, in_channels=in_channels, num_classes=num_classes, norm=norm,
                  zero_init_residual=zero_init_residual, dtype=dtype, rng=rng)


def resnet56(in_channels: int = 3, num_classes: int = 10, norm="batch", zero_init_residual=False,
             base_width: int = 16, dtype=np.float32, rng=None) -> ResNet:
    """CIFAR ResNet-56 (n=9)."""
    return _cifar(9, base_width, in_channels=in_channels, num_classes=num_classes, norm=norm,
                  zero_init_residual=zero_init_residual, dtype=dtype, rng=rng)


def resnet18(in_channels: int = 3, num_classes: int = 10, norm="batch", zero_init_residual=False,
             base_width: int = 64, dtype=np.float32, rng=None) -> ResNet:
    """ResNet-18 with the ImageNet stem (7x7/2 conv, 3x3/2 max pool), stages 64-128-256-512.

    ``base_width`` (default 64) scales all stages; smaller values make test-sized models.
    """
    w = base_width
    return ResNet((2, 2, 2, 2), (w, 2 * w, 4 * w, 8 * w), stem="imagenet",
                  in_channels=in_channels, num_classes=num_classes, norm=norm,
                  zero_init_residual=zero_init_residual, dtype=dtype, rng=rng)
