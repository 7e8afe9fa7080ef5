"""Fully connected network with an injectable norm layer (CS231n's ``FullyConnectedNet``).

Key layout: the model *is* an ``nn.Sequential``; child ``0`` is ``Flatten`` and the
layers follow in order, absent ones left out (no norm layer when ``norm=None``, no
dropout when ``dropout == 0``). With two hidden layers, ``norm="batch"`` and dropout the
children are::

    0 Flatten, 1 Linear, 2 BatchNorm1d, 3 ReLU, 4 Dropout,
               5 Linear, 6 BatchNorm1d, 7 ReLU, 8 Dropout, 9 Linear

so ``state_dict`` keys (``1.weight``, ``2.running_mean``, ... ``9.bias``) equal those of
``torch.nn.Sequential`` built from the same layers.
"""

from __future__ import annotations

import math

import numpy as np

from normlab import nn
from normlab._random import as_generator
from normlab.errors import NormlabValueError
from normlab.models._chain import make_activation
from normlab.models._norm import check_norm_kind, make_norm

__all__ = ["FullyConnectedNet"]


def _positive_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0


class FullyConnectedNet(nn.Sequential):
    """``{linear - [norm] - act - [dropout]} x (L-1) - linear`` on flattened input.

    Parameters
    ----------
    hidden_dims : sequence of int
        Widths of the ``L - 1`` hidden layers (may be empty: a linear classifier).
    input_dim : int or tuple of int
        Features per sample; a shape such as ``(3, 32, 32)`` is multiplied out.
    num_classes : int
    norm : {"batch", "layer", "group", None}
        Normalisation after each hidden linear layer (see ``make_norm``).
    dropout : float in [0, 1)
        Drop probability after each hidden activation; 0 adds no Dropout layer.
    activation : {"relu", "tanh", "sigmoid", "leaky_relu"}
    dtype : default float32
    rng : np.random.Generator or int, optional
        Shared by every initialiser and the dropout layers.

    Shape
    -----
    input (N, *) with ``prod(*) == input_dim`` -> logits (N, num_classes).

    Raises
    ------
    ValueError
        For non-positive widths, a dropout outside [0, 1), an unknown norm or
        activation, and (in ``forward``) an input with the wrong number of features.
    """

    def __init__(self, hidden_dims=(100, 100), input_dim=3 * 32 * 32, num_classes: int = 10,
                 norm=None, dropout: float = 0.0, activation: str = "relu",
                 dtype=np.float32, rng=None):
        super().__init__()
        hidden_dims = tuple(hidden_dims)
        if isinstance(input_dim, (tuple, list)):
            input_dim = math.prod(input_dim) if all(_positive_int(d) for d in input_dim) else 0
        for name, v in (("input_dim", input_dim), ("num_classes", num_classes)):
            if not _positive_int(v):
                raise NormlabValueError(f"FullyConnectedNet: expected {name} to be a positive int, "
                                 f"got {v!r}.")
        if not all(_positive_int(h) for h in hidden_dims):
            raise NormlabValueError(f"FullyConnectedNet: expected hidden_dims to be positive ints, "
                             f"got {hidden_dims!r}.")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise NormlabValueError(f"FullyConnectedNet: expected dropout in [0, 1), got {dropout!r}. "
                             "It is the drop probability; 0 disables dropout.")
        check_norm_kind("FullyConnectedNet", norm)
        make_activation("FullyConnectedNet", activation)  # validate before building
        self.hidden_dims = hidden_dims
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.norm = norm
        self.dropout = float(dropout)
        self.activation = activation
        rng = as_generator(rng)

        self.append(nn.Flatten())
        dims = (self.input_dim,) + hidden_dims
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            self.append(nn.Linear(d_in, d_out, dtype=dtype, rng=rng))
            layer = make_norm(norm, d_out, 0, dtype)
            if layer is not None:
                self.append(layer)
            self.append(make_activation("FullyConnectedNet", activation))
            if self.dropout > 0.0:
                self.append(nn.Dropout(self.dropout, rng=rng))
        self.append(nn.Linear(dims[-1], self.num_classes, dtype=dtype, rng=rng))

    def forward(self, x):
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.input_dim:
            raise NormlabValueError(
                f"FullyConnectedNet: expected input (N, ...) with {self.input_dim} features per "
                f"sample, got input of shape {tuple(x.shape)}."
            )
        return super().forward(x)

    def extra_repr(self) -> str:
        return (f"hidden_dims={self.hidden_dims}, input_dim={self.input_dim}, "
                f"num_classes={self.num_classes}, norm={self.norm!r}")
