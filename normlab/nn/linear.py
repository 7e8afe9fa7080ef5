"""Linear, Identity and Flatten modules."""

from __future__ import annotations

import numpy as np

from normlab import functional as F
from normlab.errors import NormlabValueError
from normlab.init import calculate_fan_in_and_fan_out, pytorch_default_uniform
from normlab._random import as_generator
from normlab.nn.module import Module
from normlab.validation import check_float_dtype

__all__ = ["Linear", "Identity", "Flatten"]


class Linear(Module):
    """``y = x W^T + b``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    dtype : default float32
    rng : np.random.Generator or int, optional
        Source of the default initialisation ``U(-1/sqrt(in), 1/sqrt(in))`` (PyTorch's).

    Shape
    -----
    input (N, *, in_features) -> output (N, *, out_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype=np.float32, rng=None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise NormlabValueError(f"Linear: expected {name} to be a positive int, got {v!r}.")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        dtype = check_float_dtype(dtype, "Linear")
        rng = as_generator(rng)
        shape = (self.out_features, self.in_features)
        fan_in, _ = calculate_fan_in_and_fan_out(shape)
        self.params["weight"] = pytorch_default_uniform(shape, fan_in, rng, dtype)
        if bias:
            self.params["bias"] = pytorch_default_uniform((self.out_features,), fan_in, rng, dtype)
        self.zero_grad()

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise NormlabValueError(
                f"Linear: expected input with last dimension {self.in_features} "
                f"(in_features), got input of shape {tuple(x.shape)}."
            )
        out, self._cache = F.linear_forward(x, self.params["weight"], self.params.get("bias"))
        return out

    def backward(self, dout):
        dx, dw, db = F.linear_backward(dout, self._require_cache(), need_dx=self.requires_dx)
        self.grads["weight"] = dw
        if db is not None:
            self.grads["bias"] = db
        return dx

    _dx_fresh = True  # nn._owned

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={'bias' in self.params}")


class Identity(Module):
    """Returns its input unchanged (a placeholder for an absent norm layer)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        self._cache = True
        return x

    def backward(self, dout):
        self._require_cache()
        return dout

    _dx_view = True  # nn._owned


class Flatten(Module):
    """Flattens dims ``start_dim..end_dim`` (PyTorch defaults 1 and -1)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        nd = x.ndim
        s = self.start_dim % nd if nd else 0
        e = self.end_dim % nd if nd else 0
        if s > e:
            raise NormlabValueError(
                f"Flatten: expected start_dim <= end_dim for a {nd}D input, got "
                f"start_dim={self.start_dim}, end_dim={self.end_dim}."
            )
        self._cache = x.shape
        new_shape = x.shape[:s] + (-1,) + x.shape[e + 1:]
        if 0 in x.shape:
            size = 1
            for d in x.shape[s:e + 1]:
                size *= d
            new_shape = x.shape[:s] + (size,) + x.shape[e + 1:]
        return x.reshape(new_shape)

    def backward(self, dout):
        return dout.reshape(self._require_cache())

    _dx_view = True  # nn._owned

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
