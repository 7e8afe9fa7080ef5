"""Course normalisation layers: batch, spatial batch, layer and spatial group norm.

Adapters over :mod:`normlab.functional.batchnorm` and :mod:`normlab.functional.norm`; the
arithmetic lives there, once. What is course-specific lives here:

- ``bn_param`` dict: ``mode`` ('train' | 'test'), ``eps`` (1e-5), ``momentum`` (0.9),
  ``running_mean`` / ``running_var`` created on the first call as ZEROS of shape (D,)
  and stored back into ``bn_param``.
- Running averages: ``running = momentum * running + (1 - momentum) * batch`` with the
  BIASED batch variance. PyTorch's ``momentum=0.1`` is the weight of the NEW statistic,
  it updates ``running_var`` with the unbiased variance and starts it at ones.
- Group norm takes ``gamma``/``beta`` of shape (1, C, 1, 1) and returns grads that shape.
"""

from __future__ import annotations

from normlab import backend
from normlab import functional as F
from normlab.errors import NormlabValueError
from normlab.cs231n._params import param_dict, real_entry
from normlab.validation import check_array, check_vector, describe

__all__ = [
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "spatial_batchnorm_forward",
    "spatial_batchnorm_backward",
    "layernorm_forward",
    "layernorm_backward",
    "spatial_groupnorm_forward",
    "spatial_groupnorm_backward",
]


def _bn_forward(x, gamma, beta, bn_param, axes, owner):
    param_dict(bn_param, owner, "bn_param", required=("mode",))
    check_array(x, owner, name="x")
    mode = bn_param.get("mode")
    if mode not in ("train", "test"):
        raise NormlabValueError(
            f"{owner}: expected bn_param['mode'] 'train' or 'test', got {mode!r}."
        )
    C = x.shape[1]
    if getattr(gamma, "shape", None) != (C,) or getattr(beta, "shape", None) != (C,):
        raise NormlabValueError(
            f"{owner}: expected gamma and beta of shape ({C},), got {describe(gamma)} and "
            f"{describe(beta)}."
        )
    xp = backend.namespace(x)
    eps = real_entry(bn_param, "eps", owner, "bn_param", 1e-5, low=0.0, low_open=True)
    momentum = real_entry(bn_param, "momentum", owner, "bn_param", 0.9, low=0.0, high=1.0)
    running_mean = bn_param.get("running_mean")
    running_var = bn_param.get("running_var")
    if running_mean is None:
        running_mean = xp.zeros(C, dtype=x.dtype)
    if running_var is None:
        running_var = xp.zeros(C, dtype=x.dtype)  # course: zeros, PyTorch: ones
    check_vector(running_mean, C, owner, "bn_param['running_mean']")
    check_vector(running_var, C, owner, "bn_param['running_var']")

    if mode == "train":
        out, cache = F.batch_norm_forward(x, gamma, beta, axes=axes, eps=eps)
        # course convention: momentum weighs the OLD value; biased batch variance
        running_mean = momentum * running_mean + (1 - momentum) * cache.mean.reshape(C)
        running_var = momentum * running_var + (1 - momentum) * cache.var.reshape(C)
    else:
        out, cache = F.batch_norm_eval_forward(
            x, gamma, beta, running_mean, running_var, axes=axes, eps=eps)
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, (mode, cache)


def _bn_backward(dout, cache, staged):
    mode, fcache = cache
    if mode == "test":
        return F.batch_norm_eval_backward(dout, fcache)
    if staged:
        return F.batch_norm_backward_staged(dout, fcache)
    return F.batch_norm_backward(dout, fcache)


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation over the batch axis of (N, D) input, course API.

    ``out = gamma * (x - mean) / sqrt(var + eps) + beta`` with batch statistics (train) or
    running averages (test); see the module docstring for the running-average rule.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
    bn_param : dict
        ``mode`` (required), ``eps``, ``momentum``, ``running_mean``, ``running_var``;
        the running averages are (re)written into it.

    Returns
    -------
    out : ndarray, shape (N, D); cache : for :func:`batchnorm_backward`

    Raises
    ------
    ValueError
        For an unknown mode, non-2D input or mis-shaped gamma/beta.
    """
    if x.ndim != 2:
        raise NormlabValueError(
            f"batchnorm_forward: expected 2D input (N, D), got input of shape {tuple(x.shape)}. "
            "Use spatial_batchnorm_forward for (N, C, H, W)."
        )
    return _bn_forward(x, gamma, beta, bn_param, (0,), "batchnorm_forward")


def batchnorm_backward(dout, cache):
    """Backward of :func:`batchnorm_forward` through the computation graph, stage by stage.

    Returns
    -------
    dx : (N, D); dgamma, dbeta : (D,)
    """
    return _bn_backward(dout, cache, staged=True)


def batchnorm_backward_alt(dout, cache):
    """Closed-form backward of :func:`batchnorm_forward`:
    ``dx = gamma * inv_std / N * (N dy - sum(dy) - x_hat sum(dy x_hat))``.

    Returns
    -------
    dx : (N, D); dgamma, dbeta : (D,)
    """
    return _bn_backward(dout, cache, staged=False)


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation per channel of (N, C, H, W) input (statistics over N, H, W).

    Same ``bn_param`` contract as :func:`batchnorm_forward`; gamma, beta and the running
    averages have shape (C,).

    Raises
    ------
    ValueError
        For non-4D input, an unknown mode or mis-shaped gamma/beta.
    """
    if x.ndim != 4:
        raise NormlabValueError(
            "spatial_batchnorm_forward: expected 4D input (N, C, H, W), got input of shape "
            f"{tuple(x.shape)}. Use batchnorm_forward for (N, D)."
        )
    return _bn_forward(x, gamma, beta, bn_param, (0, 2, 3), "spatial_batchnorm_forward")


def spatial_batchnorm_backward(dout, cache):
    """Backward of :func:`spatial_batchnorm_forward`: ``dx`` (N, C, H, W), ``dgamma``,
    ``dbeta`` (C,)."""
    return _bn_backward(dout, cache, staged=False)


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalisation of each row of (N, D) input (statistics over D), course API.

    ``out = gamma * (x - mean_row) / sqrt(var_row + eps) + beta``, biased variance, no
    running averages and the same computation in train and test.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
    ln_param : dict, optional key ``eps`` (1e-5)

    Raises
    ------
    ValueError
        For non-2D input.
    """
    if x.ndim != 2:
        raise NormlabValueError(
            f"layernorm_forward: expected 2D input (N, D), got input of shape {tuple(x.shape)}."
        )
    param_dict(ln_param, "layernorm_forward", "ln_param")
    eps = real_entry(ln_param, "eps", "layernorm_forward", "ln_param", 1e-5, low=0.0,
                     low_open=True)
    return F.layer_norm_forward(x, gamma, beta, normalized_ndim=1, eps=eps)


def layernorm_backward(dout, cache):
    """Backward of :func:`layernorm_forward`: ``dx`` (N, D), ``dgamma``, ``dbeta`` (D,)."""
    return F.layer_norm_backward(dout, cache)


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Group normalisation of (N, C, H, W) input: statistics over each group of ``C // G``
    channels and all of H, W, per sample.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    gamma, beta : ndarray, shape (1, C, 1, 1) (course layout)
    G : int, number of groups dividing C
    gn_param : dict, optional key ``eps`` (1e-5)

    Returns
    -------
    out : (N, C, H, W); cache : ``(gamma_shape, functional cache)``

    Raises
    ------
    ValueError
        For non-4D input, G not dividing C, or mis-shaped gamma/beta.
    """
    if x.ndim != 4:
        raise NormlabValueError(
            "spatial_groupnorm_forward: expected 4D input (N, C, H, W), got input of shape "
            f"{tuple(x.shape)}."
        )
    N, C, H, W = x.shape
    if not isinstance(G, int) or G <= 0 or C % G:
        raise NormlabValueError(
            f"spatial_groupnorm_forward: expected G a positive int dividing C = {C}, got {G!r}."
        )
    if getattr(gamma, "size", None) != C or getattr(beta, "size", None) != C:
        raise NormlabValueError(
            f"spatial_groupnorm_forward: expected gamma and beta of shape (1, {C}, 1, 1), got "
            f"{describe(gamma)} and {describe(beta)}."
        )
    param_dict(gn_param, "spatial_groupnorm_forward", "gn_param")
    eps = real_entry(gn_param, "eps", "spatial_groupnorm_forward", "gn_param", 1e-5, low=0.0,
                     low_open=True)
    out, cache = F.group_norm_forward(x, gamma.reshape(C), beta.reshape(C), num_groups=G,
                                      eps=eps)
    return out, (gamma.shape, cache)


def spatial_groupnorm_backward(dout, cache):
    """Backward of :func:`spatial_groupnorm_forward`: ``dx`` (N, C, H, W), ``dgamma`` and
    ``dbeta`` in gamma's (1, C, 1, 1) shape."""
    gamma_shape, fcache = cache
    dx, dgamma, dbeta = F.group_norm_backward(dout, fcache)
    return dx, dgamma.reshape(gamma_shape), dbeta.reshape(gamma_shape)
