"""The course's three-layer convolutional network (assignment 2)."""

from __future__ import annotations

import numpy as np

from normlab.cs231n import layer_utils as _layer_utils
from normlab.cs231n.layer_utils import *  # noqa: F401,F403 (the course's star-import surface)
from normlab.cs231n.layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from normlab.cs231n.layers import affine_backward, affine_forward, softmax_loss

# The course's cnn.py star-imports ``..layers``, ``..fast_layers`` and ``..layer_utils``, so a
# notebook's ``from cs231n.classifiers.cnn import *`` brings every layer and sandwich into
# scope (layer_utils re-exports the other two).
__all__ = list(dict.fromkeys(["ThreeLayerConvNet"] + _layer_utils.__all__))


class ThreeLayerConvNet:
    """conv - relu - 2x2 max pool - affine - relu - affine - softmax.

    The convolution keeps the spatial size (stride 1, pad ``(filter_size - 1) // 2``); the
    pool halves it. Weights are ``weight_scale * np.random.randn`` from the global stream in
    the order W1, W2, W3; biases zero.

    Parameters
    ----------
    input_dim : (C, H, W)
    num_filters, filter_size, hidden_dim, num_classes : int
    weight_scale, reg : float
    dtype : numpy dtype of the parameters
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=np.float32):
        C, H, W = input_dim
        self.reg = reg
        self.dtype = dtype
        pooled = num_filters * (H // 2) * (W // 2)
        self.params = {
            "W1": weight_scale * np.random.randn(num_filters, C, filter_size, filter_size),
            "b1": np.zeros(num_filters),
            "W2": weight_scale * np.random.randn(pooled, hidden_dim),
            "b2": np.zeros(hidden_dim),
            "W3": weight_scale * np.random.randn(hidden_dim, num_classes),
            "b3": np.zeros(num_classes),
        }
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        """Scores (N, C) when ``y`` is None, else ``(loss, grads)``.

        ``X`` is cast to the model's dtype (float64 CIFAR arrays meet float32 weights in
        the notebooks), so grads keep the parameters' dtype.
        """
        X = X.astype(self.dtype, copy=False)
        p = self.params
        filter_size = p["W1"].shape[2]
        conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
        pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

        h1, c1 = conv_relu_pool_forward(X, p["W1"], p["b1"], conv_param, pool_param)
        h2, c2 = affine_relu_forward(h1, p["W2"], p["b2"])
        scores, c3 = affine_forward(h2, p["W3"], p["b3"])
        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y)
        loss += 0.5 * self.reg * sum(float((p[k] * p[k]).sum()) for k in ("W1", "W2", "W3"))
        grads = {}
        dh2, grads["W3"], grads["b3"] = affine_backward(dscores, c3)
        dh1, grads["W2"], grads["b2"] = affine_relu_backward(dh2, c2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dh1, c1)
        for k in ("W1", "W2", "W3"):
            grads[k] = grads[k] + self.reg * p[k]
        return loss, grads
