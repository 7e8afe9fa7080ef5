"""The course's ``cs231n.layer_utils``: common layer sandwiches, each a forward/backward pair.

Caches are tuples of the inner layers' caches; backward functions take exactly
``(dout, cache)`` as in the course.
"""

from __future__ import annotations

from normlab.cs231n import fast_layers as _fast_layers
from normlab.cs231n import layers as _layers
# The course's layer_utils starts with ``from .layers import *`` and ``from .fast_layers import
# *``, so a notebook's ``from cs231n.layer_utils import *`` (or a classifier's) brings every
# layer into scope as well; the re-exports below keep that surface.
from normlab.cs231n.fast_layers import *  # noqa: F401,F403
from normlab.cs231n.layers import *  # noqa: F401,F403
from normlab.cs231n.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from normlab.cs231n.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)

# The sandwich layers this module defines (its own names, without the re-exports).
_OWN = [
    "affine_relu_forward",
    "affine_relu_backward",
    "affine_bn_relu_forward",
    "affine_bn_relu_backward",
    "affine_ln_relu_forward",
    "affine_ln_relu_backward",
    "conv_relu_forward",
    "conv_relu_backward",
    "conv_bn_relu_forward",
    "conv_bn_relu_backward",
    "conv_relu_pool_forward",
    "conv_relu_pool_backward",
]

__all__ = list(dict.fromkeys(_layers.__all__ + _fast_layers.__all__ + _OWN))


def _norm_relu_forward(layer_forward, layer_args, norm_forward, gamma, beta, norm_param):
    """``layer_forward(*layer_args)`` -> ``norm_forward`` -> ReLU; cache of all three."""
    a, layer_cache = layer_forward(*layer_args)
    an, norm_cache = norm_forward(a, gamma, beta, norm_param)
    out, relu_cache = relu_forward(an)
    return out, (layer_cache, norm_cache, relu_cache)


def _norm_relu_backward(layer_backward, norm_backward, dout, cache):
    """Backward of :func:`_norm_relu_forward`: ``(dx, dw, db, dgamma, dbeta)``."""
    layer_cache, norm_cache, relu_cache = cache
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = norm_backward(dan, norm_cache)
    dx, dw, db = layer_backward(da, layer_cache)
    return dx, dw, db, dgamma, dbeta


def affine_relu_forward(x, w, b):
    """affine -> ReLU."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    """Backward of :func:`affine_relu_forward`: ``(dx, dw, db)``."""
    fc_cache, relu_cache = cache
    return affine_backward(relu_backward(dout, relu_cache), fc_cache)


def affine_bn_relu_forward(x, w, b, gamma, beta, bn_param):
    """affine -> batchnorm -> ReLU."""
    return _norm_relu_forward(affine_forward, (x, w, b), batchnorm_forward, gamma, beta,
                              bn_param)


def affine_bn_relu_backward(dout, cache):
    """Backward of :func:`affine_bn_relu_forward`: ``(dx, dw, db, dgamma, dbeta)``."""
    return _norm_relu_backward(affine_backward, batchnorm_backward_alt, dout, cache)


def affine_ln_relu_forward(x, w, b, gamma, beta, ln_param):
    """affine -> layernorm -> ReLU."""
    return _norm_relu_forward(affine_forward, (x, w, b), layernorm_forward, gamma, beta,
                              ln_param)


def affine_ln_relu_backward(dout, cache):
    """Backward of :func:`affine_ln_relu_forward`: ``(dx, dw, db, dgamma, dbeta)``."""
    return _norm_relu_backward(affine_backward, layernorm_backward, dout, cache)


def conv_relu_forward(x, w, b, conv_param):
    """conv (fast) -> ReLU."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache):
    """Backward of :func:`conv_relu_forward`: ``(dx, dw, db)``."""
    conv_cache, relu_cache = cache
    return conv_backward_fast(relu_backward(dout, relu_cache), conv_cache)


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    """conv (fast) -> spatial batchnorm -> ReLU."""
    return _norm_relu_forward(conv_forward_fast, (x, w, b, conv_param),
                              spatial_batchnorm_forward, gamma, beta, bn_param)


def conv_bn_relu_backward(dout, cache):
    """Backward of :func:`conv_bn_relu_forward`: ``(dx, dw, db, dgamma, dbeta)``."""
    return _norm_relu_backward(conv_backward_fast, spatial_batchnorm_backward, dout, cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """conv (fast) -> ReLU -> max pool (fast)."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache):
    """Backward of :func:`conv_relu_pool_forward`: ``(dx, dw, db)``."""
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_fast(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    return conv_backward_fast(da, conv_cache)
