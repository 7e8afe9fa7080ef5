"""Activation modules: ReLU, LeakyReLU, Tanh, Sigmoid (thin wrappers over functional.activation)."""

from __future__ import annotations

import numbers

from normlab import functional as F
from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.nn.module import Module

__all__ = ["ReLU", "LeakyReLU", "Tanh", "Sigmoid", "check_not_inplace"]


def check_not_inplace(owner: str, inplace) -> None:
    """Accept PyTorch's ``inplace=False``; reject ``True`` (normlab never mutates inputs)."""
    if inplace:
        raise NormlabValueError(
            f"{owner}: expected inplace=False, got inplace={inplace!r}. normlab never "
            "mutates its inputs (backward needs them); drop the argument."
        )


class ReLU(Module):
    """``out = max(x, 0)`` elementwise.

    Parameters
    ----------
    inplace : bool, default False
        Accepted for PyTorch compatibility; only ``False`` is allowed.

    Shape
    -----
    input (*) -> output (*), same dtype.

    Raises
    ------
    ValueError
        For ``inplace=True``.
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        check_not_inplace("ReLU", inplace)
        self.inplace = False

    def forward(self, x):
        out, self._cache = F.relu_forward(x)
        return out

    def backward(self, dout, overwrite_dout=False):
        """``overwrite_dout``: the caller hands ``dout`` over; the gradient may be written
        over it (``functional.relu_backward``)."""
        return F.relu_backward(dout, self._require_cache(), overwrite_dout=overwrite_dout)

    _dx_fresh = _takes_dout = True  # nn._owned


class LeakyReLU(Module):
    """``out = x if x > 0 else negative_slope * x``.

    Parameters
    ----------
    negative_slope : float, default 0.01
    inplace : bool, default False
        Only ``False`` is allowed.

    Shape
    -----
    input (*) -> output (*), same dtype.

    Raises
    ------
    TypeError
        For a non-numeric ``negative_slope``.
    ValueError
        For ``inplace=True``.
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
            raise NormlabTypeError(
                f"LeakyReLU: expected negative_slope to be a float, got "
                f"{type(negative_slope).__name__} {negative_slope!r}."
            )
        check_not_inplace("LeakyReLU", inplace)
        self.negative_slope = float(negative_slope)
        self.inplace = False

    def forward(self, x):
        out, self._cache = F.leaky_relu_forward(x, self.negative_slope)
        return out

    def backward(self, dout):
        return F.leaky_relu_backward(dout, self._require_cache())

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """``out = tanh(x)``. Shape: input (*) -> output (*), same dtype."""

    def forward(self, x):
        out, self._cache = F.tanh_forward(x)
        return out

    def backward(self, dout):
        return F.tanh_backward(dout, self._require_cache())


class Sigmoid(Module):
    """``out = 1 / (1 + exp(-x))``, overflow-free. Shape: input (*) -> output (*), same dtype."""

    def forward(self, x):
        out, self._cache = F.sigmoid_forward(x)
        return out

    def backward(self, dout, overwrite_dout=False):
        """``overwrite_dout``: as in ``ReLU.backward``."""
        return F.sigmoid_backward(dout, self._require_cache(), overwrite_dout=overwrite_dout)

    _dx_fresh = _takes_dout = True  # nn._owned
