"""WSConv2d: a Conv2d with weight standardisation (Qiao et al. 2019, "Micro-Batch Training
with Batch-Channel Normalization and Weight Standardization").

Each output filter ``W[o]`` (its ``C/groups * kh * kw`` values) is standardised before the
convolution, ``W_hat[o] = (W[o] - mean(W[o])) / sqrt(var(W[o]) + eps)``, and the
convolution uses ``W_hat``. The gradient flows through the standardisation (it is layer
norm's backward over each filter), so ``grads["weight"]`` is the gradient with respect
to the raw ``W``. Conventions, since implementations differ: the variance is **biased**
(divide by the filter size) and ``eps`` (default 1e-5) is added **inside** the square
root, as timm's ``StdConv2d`` computes it; the paper's reference code divides by
``std + 1e-5`` with the unbiased std instead.
"""

from __future__ import annotations

import numpy as np

from normlab.errors import NormlabValueError
from normlab import functional as F
from normlab.functional._spatial import check_input
from normlab.nn.batchnorm import _check_eps
from normlab.nn.conv import Conv2d

__all__ = ["WSConv2d"]


class WSConv2d(Conv2d):
    """2D convolution with standardised weights: ``conv2d(x, (W - mean) / sqrt(var + eps), b)``.

    Mean and biased variance per output channel over ``(C/groups, kh, kw)``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
    padding_mode, dtype, rng
        As for ``Conv2d`` (PyTorch's signature and initialisation of the raw weight).
    eps : float, keyword only, default 1e-5
        Added to each filter's variance inside the square root.

    Shape
    -----
    input (N, C_in, H, W) -> output (N, C_out, H_out, W_out), as ``Conv2d``.

    Raises
    ------
    ValueError
        Everything ``Conv2d`` refuses; a non-positive ``eps``; filters of a single value
        (their standardisation is identically 0).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=np.float32,
                 rng=None, *, eps: float = 1e-5):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng)
        self.eps = _check_eps("WSConv2d", eps)
        fan = self.params["weight"][0].size
        if fan == 1:
            raise NormlabValueError(
                f"WSConv2d: expected more than 1 weight per output filter, got "
                f"in_channels/groups * kh * kw = 1 (in_channels={in_channels}, groups="
                f"{groups}, kernel_size={kernel_size}). A standardised single weight is 0."
            )

    def standardized_weight(self):
        """``(W_hat, cache)``: the filters standardised, and layer norm's cache for backward."""
        W = self.params["weight"]
        Fo = W.shape[0]
        w_hat, cache = F.layer_norm_forward(W.reshape(Fo, -1), None, None, normalized_ndim=1,
                                            eps=self.eps)  # (F, C/groups*kh*kw)
        return w_hat.reshape(W.shape), cache

    def forward(self, x):
        check_input(x, self._nd, type(self).__name__, channels=self.in_channels)
        w_hat, ws_cache = self.standardized_weight()
        out, conv_cache = self._forward(
            x, w_hat, self.params.get("bias"), stride=self.stride, padding=self.padding,
            dilation=self.dilation, groups=self.groups)
        self._cache = (conv_cache, ws_cache)
        return out

    def backward(self, dout):
        conv_cache, ws_cache = self._require_cache()
        dx, dw_hat, db = self._backward(dout, conv_cache)
        W = self.params["weight"]
        dw, _, _ = F.layer_norm_backward(dw_hat.reshape(W.shape[0], -1), ws_cache)
        self.grads["weight"] = dw.reshape(W.shape)
        if db is not None:
            self.grads["bias"] = db
        return dx

    def extra_repr(self) -> str:
        base = super().extra_repr()
        return f"{base}, eps={self.eps}" if base else f"eps={self.eps}"
