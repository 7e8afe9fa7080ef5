"""The reference models of MNIST-1D (Greydanus 2020), optionally with BatchNorm.

Input is ``(N, L)`` (the data set's ``L = 40``) or ``(N, 1, L)``. Key layouts (a norm
layer is added only when ``norm`` is given, named ``norm1``, ``norm2``, ...):

- ``LinearBase``: ``linear`` (``Linear(L, num_classes)``).
- ``MLPBase``: ``linear1, [norm1], relu1, linear2, [norm2], relu2, linear3``.
- ``ConvBase``: ``conv1, [norm1], relu1, conv2, [norm2], relu2, conv3, [norm3], relu3,
  flatten, linear`` with ``Conv1d(1, c, 5, 2, 1)``, ``Conv1d(c, c, 3, 2, 1)`` twice, so
  ``L = 40`` gives lengths 19, 10, 5 and ``linear`` takes ``5 * c`` features.

A PyTorch twin with the same attribute names has the same state_dict keys.
"""

from __future__ import annotations

import numpy as np

from normlab import nn
from normlab._random import as_generator
from normlab.errors import NormlabValueError
from normlab.models._chain import NamedChain
from normlab.models._norm import check_norm_kind, make_norm

__all__ = ["LinearBase", "MLPBase", "ConvBase"]


def _check_sizes(owner: str, **sizes) -> None:
    for name, v in sizes.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
            raise NormlabValueError(f"{owner}: expected {name} to be a positive int, got {v!r}.")


def _signal(owner: str, x, length: int):
    """``(N, L)`` or ``(N, 1, L)`` input as ``(N, L)``."""
    ok = (x.ndim == 2 and x.shape[1] == length) or (
        x.ndim == 3 and x.shape[1] == 1 and x.shape[2] == length)
    if not ok:
        raise NormlabValueError(f"{owner}: expected input (N, {length}) or (N, 1, {length}), got input "
                         f"of shape {tuple(x.shape)}.")
    return x.reshape(x.shape[0], length)


class LinearBase(NamedChain):
    """A linear classifier on the flattened signal: ``logits = x W^T + b``.

    Parameters
    ----------
    input_length : int, default 40
    num_classes : int, default 10
    dtype, rng : as everywhere

    Shape
    -----
    (N, L) or (N, 1, L) -> (N, num_classes).
    """

    def __init__(self, input_length: int = 40, num_classes: int = 10, dtype=np.float32, rng=None):
        super().__init__()
        _check_sizes("LinearBase", input_length=input_length, num_classes=num_classes)
        self.input_length = int(input_length)
        self.linear = nn.Linear(self.input_length, num_classes, dtype=dtype, rng=as_generator(rng))

    def forward(self, x):
        h = _signal("LinearBase", x, self.input_length)
        self._in_shape = x.shape
        return super().forward(h)

    def backward(self, dout):
        dx = super().backward(dout)  # None with requires_dx False (Trainer)
        return None if dx is None else dx.reshape(self._in_shape)


class MLPBase(nn.Module):
    """Residual MLP: ``h1 = relu(lin1(x)); h2 = h1 + relu(lin2(h1)); logits = lin3(h2)``.

    With ``norm`` a norm layer sits between each hidden linear layer and its ReLU. The
    backward adds the gradient of the skip path to that of ``lin2`` by hand.

    Parameters
    ----------
    input_length : int, default 40
    num_classes : int, default 10
    hidden : int, default 100
    norm : {"batch", "layer", "group", None}
    dtype, rng : as everywhere

    Shape
    -----
    (N, L) or (N, 1, L) -> (N, num_classes).
    """

    fold_pairs = (("linear1", "norm1"), ("linear2", "norm2"))

    def __init__(self, input_length: int = 40, num_classes: int = 10, hidden: int = 100,
                 norm=None, dtype=np.float32, rng=None):
        super().__init__()
        _check_sizes("MLPBase", input_length=input_length, num_classes=num_classes, hidden=hidden)
        check_norm_kind("MLPBase", norm)
        rng = as_generator(rng)
        self.input_length, self.norm = int(input_length), norm
        self.linear1 = nn.Linear(self.input_length, hidden, dtype=dtype, rng=rng)
        self._add_norm("norm1", hidden, dtype)
        self.relu1 = nn.ReLU()
        self.linear2 = nn.Linear(hidden, hidden, dtype=dtype, rng=rng)
        self._add_norm("norm2", hidden, dtype)
        self.relu2 = nn.ReLU()
        self.linear3 = nn.Linear(hidden, num_classes, dtype=dtype, rng=rng)

    def _add_norm(self, name, C, dtype):
        layer = make_norm(self.norm, C, 0, dtype)
        setattr(self, name, layer if layer is not None else nn.Identity())

    def forward(self, x):
        h = _signal("MLPBase", x, self.input_length)
        self._cache = x.shape
        h1 = self.relu1(self.norm1(self.linear1(h)))
        h2 = h1 + self.relu2(self.norm2(self.linear2(h1)))
        return self.linear3(h2)

    def backward(self, dout):
        in_shape = self._require_cache()
        dh2 = self.linear3.backward(dout)
        # h2 = h1 + f(h1): the skip path passes dh2 through unchanged.
        dh1 = dh2 + self.linear2.backward(self.norm2.backward(self.relu2.backward(dh2)))
        dx = self.linear1.backward(self.norm1.backward(self.relu1.backward(dh1)))
        return dx.reshape(in_shape)

    def extra_repr(self) -> str:
        return f"input_length={self.input_length}, norm={self.norm!r}"


class ConvBase(NamedChain):
    """Three strided ``Conv1d`` + ReLU layers and a linear classifier (Greydanus 2020).

    Parameters
    ----------
    input_length : int, default 40
    num_classes : int, default 10
    channels : int, default 25
    norm : {"batch", "layer", "group", "instance", None}
        After each convolution, before its ReLU.
    dtype, rng : as everywhere

    Shape
    -----
    (N, L) or (N, 1, L) -> (N, num_classes).

    Raises
    ------
    ValueError
        For bad sizes, an unknown norm, ``input_length`` too short for three strided
        convolutions, or (in ``forward``) an input of another length.
    """

    fold_pairs = (("conv1", "norm1"), ("conv2", "norm2"), ("conv3", "norm3"))

    def __init__(self, input_length: int = 40, num_classes: int = 10, channels: int = 25,
                 norm=None, dtype=np.float32, rng=None):
        super().__init__()
        _check_sizes("ConvBase", input_length=input_length, num_classes=num_classes,
                     channels=channels)
        check_norm_kind("ConvBase", norm)
        rng = as_generator(rng)
        self.input_length, self.norm = int(input_length), norm
        L = self.input_length
        c_in = 1
        for i, k in enumerate((5, 3, 3), start=1):
            L = (L + 2 - k) // 2 + 1
            if L < 1:
                raise NormlabValueError(f"ConvBase: expected input_length >= 3, got {input_length}.")
            setattr(self, f"conv{i}", nn.Conv1d(c_in, channels, k, stride=2, padding=1,
                                                dtype=dtype, rng=rng))
            layer = make_norm(norm, channels, 1, dtype)
            if layer is not None:
                setattr(self, f"norm{i}", layer)
            setattr(self, f"relu{i}", nn.ReLU())
            c_in = channels
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(channels * L, num_classes, dtype=dtype, rng=rng)

    def forward(self, x):
        h = _signal("ConvBase", x, self.input_length)
        self._in_shape = x.shape
        return super().forward(h.reshape(h.shape[0], 1, self.input_length))

    def backward(self, dout):
        dx = super().backward(dout)  # None with requires_dx False (Trainer)
        return None if dx is None else dx.reshape(self._in_shape)

    def extra_repr(self) -> str:
        return f"input_length={self.input_length}, norm={self.norm!r}"
