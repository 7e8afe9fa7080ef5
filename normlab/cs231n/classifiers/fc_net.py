"""Fully connected classifiers of the course (assignment 2), built from ``cs231n.layers``.

Parameters live in ``model.params`` with the course's names (``W1, b1, gamma1, beta1, ...``)
and layouts (``W`` is (in, out)). Weights are drawn as ``weight_scale * np.random.randn``
from the GLOBAL NumPy stream in layer order (W1, W2, ...), so that cells seeded with
``np.random.seed(231)`` print the course's numbers.
"""

from __future__ import annotations

import numpy as np

from normlab.cs231n import layer_utils as _layer_utils
from normlab.cs231n.layer_utils import *  # noqa: F401,F403 (the course's star-import surface)
from normlab.errors import NormlabValueError
from normlab.cs231n.layer_utils import (
    affine_bn_relu_backward,
    affine_bn_relu_forward,
    affine_ln_relu_backward,
    affine_ln_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
)
from normlab.cs231n.layers import (
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    softmax_loss,
)

# The course's fc_net.py star-imports ``..layers`` and ``..layer_utils``, so a notebook's
# ``from cs231n.classifiers.fc_net import *`` brings every layer and sandwich into scope
# (the BatchNormalization and Dropout notebooks call batchnorm_forward etc. after it).
__all__ = list(dict.fromkeys(["TwoLayerNet", "FullyConnectedNet"] + _layer_utils.__all__))


def _l2(reg, weights):
    """``0.5 * reg * sum ||W||^2``: the course's regularisation (biases, gammas exempt)."""
    return 0.5 * reg * sum(float((w * w).sum()) for w in weights)


class TwoLayerNet:
    """affine - relu - affine - softmax.

    Parameters
    ----------
    input_dim, hidden_dim, num_classes : int
    weight_scale : float
        Std of the normal weight initialisation; biases start at zero.
    reg : float
        L2 strength: the loss gets ``0.5 * reg * (||W1||^2 + ||W2||^2)``.
    """

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10,
                 weight_scale=1e-3, reg=0.0):
        self.reg = reg
        self.params = {
            "W1": weight_scale * np.random.randn(input_dim, hidden_dim),
            "b1": np.zeros(hidden_dim),
            "W2": weight_scale * np.random.randn(hidden_dim, num_classes),
            "b2": np.zeros(num_classes),
        }

    def loss(self, X, y=None):
        """Scores (N, C) when ``y`` is None, else ``(loss, grads)`` with grads keyed like params."""
        p = self.params
        h, h_cache = affine_relu_forward(X, p["W1"], p["b1"])
        scores, s_cache = affine_forward(h, p["W2"], p["b2"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        loss += _l2(self.reg, (p["W1"], p["W2"]))
        grads = {}
        dh, grads["W2"], grads["b2"] = affine_backward(dscores, s_cache)
        _, grads["W1"], grads["b1"] = affine_relu_backward(dh, h_cache)
        grads["W1"] = grads["W1"] + self.reg * p["W1"]
        grads["W2"] = grads["W2"] + self.reg * p["W2"]
        return loss, grads


class FullyConnectedNet:
    """{affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax.

    Parameters
    ----------
    hidden_dims : list of int
    input_dim, num_classes : int
    dropout_keep_ratio : float
        Course convention: probability of KEEPING a unit; 1 disables dropout.
    normalization : None, 'batchnorm' or 'layernorm'
    reg : float
        L2 strength on the weights only.
    weight_scale : float
    dtype : numpy dtype of all parameters and computations (float64 for gradient checks)
    seed : int, optional
        Makes dropout deterministic (the course's gradient-check trick).

    Raises
    ------
    ValueError
        For an unknown normalization or a keep ratio outside (0, 1].
    """

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10,
                 dropout_keep_ratio=1, normalization=None, reg=0.0, weight_scale=1e-2,
                 dtype=np.float32, seed=None):
        if normalization not in (None, "batchnorm", "layernorm"):
            raise NormlabValueError(
                "FullyConnectedNet: expected normalization None, 'batchnorm' or 'layernorm', "
                f"got {normalization!r}."
            )
        if not 0 < dropout_keep_ratio <= 1:
            raise NormlabValueError(
                "FullyConnectedNet: expected dropout_keep_ratio (probability of keeping a "
                f"unit) in (0, 1], got {dropout_keep_ratio!r}."
            )
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.params = {}
        dims = [input_dim, *hidden_dims, num_classes]
        for i in range(self.num_layers):
            self.params[f"W{i + 1}"] = weight_scale * np.random.randn(dims[i], dims[i + 1])
            self.params[f"b{i + 1}"] = np.zeros(dims[i + 1])
            if normalization is not None and i < self.num_layers - 1:
                self.params[f"gamma{i + 1}"] = np.ones(dims[i + 1])
                self.params[f"beta{i + 1}"] = np.zeros(dims[i + 1])

        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.bn_params = []
        if normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        elif normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def _hidden_forward(self, h, i):
        p, k = self.params, i + 1
        if self.normalization == "batchnorm":
            return affine_bn_relu_forward(h, p[f"W{k}"], p[f"b{k}"], p[f"gamma{k}"],
                                          p[f"beta{k}"], self.bn_params[i])
        if self.normalization == "layernorm":
            return affine_ln_relu_forward(h, p[f"W{k}"], p[f"b{k}"], p[f"gamma{k}"],
                                          p[f"beta{k}"], self.bn_params[i])
        return affine_relu_forward(h, p[f"W{k}"], p[f"b{k}"])

    def _hidden_backward(self, dh, cache, i, grads):
        k = i + 1
        if self.normalization == "batchnorm":
            dh, grads[f"W{k}"], grads[f"b{k}"], grads[f"gamma{k}"], grads[f"beta{k}"] = (
                affine_bn_relu_backward(dh, cache))
        elif self.normalization == "layernorm":
            dh, grads[f"W{k}"], grads[f"b{k}"], grads[f"gamma{k}"], grads[f"beta{k}"] = (
                affine_ln_relu_backward(dh, cache))
        else:
            dh, grads[f"W{k}"], grads[f"b{k}"] = affine_relu_backward(dh, cache)
        return dh

    def loss(self, X, y=None):
        """Scores (N, C) in test mode (``y`` None), else ``(loss, grads)`` in train mode."""
        X = X.astype(self.dtype)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode

        h, caches = X, []
        for i in range(self.num_layers - 1):
            h, cache = self._hidden_forward(h, i)
            drop_cache = None
            if self.use_dropout:
                h, drop_cache = dropout_forward(h, self.dropout_param)
            caches.append((cache, drop_cache))
        L = self.num_layers
        scores, last_cache = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        if mode == "test":
            return scores

        loss, dscores = softmax_loss(scores, y)
        loss += _l2(self.reg, (self.params[f"W{i + 1}"] for i in range(L)))
        grads = {}
        dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, last_cache)
        for i in reversed(range(L - 1)):
            cache, drop_cache = caches[i]
            if self.use_dropout:
                dh = dropout_backward(dh, drop_cache)
            dh = self._hidden_backward(dh, cache, i, grads)
        for i in range(L):
            grads[f"W{i + 1}"] = grads[f"W{i + 1}"] + self.reg * self.params[f"W{i + 1}"]
        return loss, grads
