"""BatchNorm1d/2d/3d: thin stateful wrappers over ``normlab.functional.batchnorm``.

Semantics are PyTorch 2.13's: ``momentum`` weighs the new batch statistic (``None`` gives
a cumulative average over ``num_batches_tracked``); normalisation uses the biased batch
variance and ``running_var`` is updated with the unbiased one; eval uses the running
statistics and never changes a buffer; ``track_running_stats=False`` has no buffers and
uses batch statistics in eval too; ``affine=False`` has no parameters.
"""

from __future__ import annotations

import numbers

import numpy as np

from normlab import backend
from normlab import functional as F
from normlab.functional import batchnorm as _bn
from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.nn.markers import NormLayer
from normlab.nn.module import Module
from normlab.validation import check_bool, check_float_dtype

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]

_RANK_HINTS = {
    2: "Use BatchNorm1d for (N, C) input.",
    3: "Use BatchNorm1d for (N, C, L) input.",
    4: "Use BatchNorm2d for (N, C, H, W) input.",
    5: "Use BatchNorm3d for (N, C, D, H, W) input.",
}


def _check_num_features(owner: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise NormlabValueError(f"{owner}: expected {name} to be a positive int, got {value!r}.")
    return int(value)


def _check_eps(owner: str, eps, allow_none: bool = False):
    if eps is None and allow_none:
        return None
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise NormlabTypeError(f"{owner}: expected eps to be a float, got {type(eps).__name__}.")
    if not eps > 0 or not np.isfinite(eps):
        raise NormlabValueError(
            f"{owner}: expected eps > 0, got eps={eps!r}. It keeps 1/sqrt(var + eps) finite; "
            "the usual value is 1e-5."
        )
    return float(eps)


def _check_momentum(owner: str, momentum):
    if momentum is None:
        return None
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise NormlabTypeError(
            f"{owner}: expected momentum to be a float in [0, 1] or None, got "
            f"{type(momentum).__name__}."
        )
    if not 0.0 <= momentum <= 1.0:
        raise NormlabValueError(
            f"{owner}: expected momentum in [0, 1] (the weight of the new batch statistic) "
            f"or None (cumulative average), got momentum={momentum!r}. PyTorch's default "
            "is 0.1; a Keras momentum of 0.99 corresponds to 0.01 here."
        )
    return float(momentum)


def _check_float_input(owner: str, x) -> None:
    if not hasattr(x, "dtype") or np.dtype(x.dtype).kind != "f":
        got = getattr(x, "dtype", type(x).__name__)
        raise NormlabTypeError(
            f"{owner}: expected a floating-point array, got {got}. Cast it with "
            "x.astype(np.float32)."
        )


def _add_affine(module: Module, shape, dtype, bias: bool) -> None:
    """Learnable ``weight`` (ones) and, with ``bias``, ``bias`` (zeros) of ``shape``."""
    module.params["weight"] = np.ones(shape, dtype=dtype)
    if bias:
        module.params["bias"] = np.zeros(shape, dtype=dtype)


def _param_as(module: Module, key: str, dtype):
    """``module.params[key]`` cast to the input's dtype, or None where the layer has none."""
    p = module.params.get(key)
    return None if p is None else p.astype(dtype, copy=False)


def _store(module: Module, dgamma, dbeta) -> None:
    """Store the affine gradients in the parameters' own dtype (absent ones are skipped)."""
    for key, g in (("weight", dgamma), ("bias", dbeta)):
        if g is not None and key in module.params:
            module.grads[key] = g.astype(module.params[key].dtype, copy=False)


def _check_running_stats(owner: str, bn: Module, where: str, hint: str) -> None:
    """Raise unless ``bn`` (a BN-family layer at ``where``) keeps running statistics."""
    if "running_mean" not in bn.buffers or not getattr(bn, "track_running_stats", True):
        raise NormlabValueError(
            f"{owner}: expected BatchNorm layers with running statistics, got "
            f"track_running_stats=False at {where!r}. {hint}"
        )


class _NormBase(NormLayer):
    """Parameters and buffers shared by batch and instance norm (PyTorch's ``_NormBase``).

    ``weight`` (ones) and ``bias`` (zeros) of shape (C,) when ``affine`` (``bias=False``
    drops the bias); buffers ``running_mean`` (zeros), ``running_var`` (ones) and
    ``num_batches_tracked`` (0-d int64) when ``track_running_stats``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=np.float32,
                 *, bias: bool = True):
        super().__init__()
        owner = type(self).__name__
        self.num_features = _check_num_features(owner, "num_features", num_features)
        self.eps = _check_eps(owner, eps)
        self.momentum = _check_momentum(owner, momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = check_float_dtype(dtype, owner)
        C = self.num_features
        if self.affine:
            _add_affine(self, C, dtype, bias)
        if self.track_running_stats:
            self.buffers["running_mean"] = np.zeros(C, dtype=dtype)
            self.buffers["running_var"] = np.ones(C, dtype=dtype)
            self.buffers["num_batches_tracked"] = np.array(0, dtype=np.int64)
        self.zero_grad()

    def reset_running_stats(self) -> None:
        """Running mean to zeros, running variance to ones, counter to 0."""
        if self.track_running_stats:
            xp = backend.namespace(self.buffers["running_mean"])
            self.buffers["running_mean"] = xp.zeros_like(self.buffers["running_mean"])
            self.buffers["running_var"] = xp.ones_like(self.buffers["running_var"])
            self.buffers["num_batches_tracked"] = xp.zeros_like(
                self.buffers["num_batches_tracked"])


    def _check_channels(self, x) -> None:
        if x.shape[1] != self.num_features:
            raise NormlabValueError(
                f"{type(self).__name__}: expected input with {self.num_features} channels "
                f"(num_features) at dim 1, got input of shape {tuple(x.shape)}. Build the "
                f"layer with num_features={x.shape[1]} or fix the layer before it."
            )

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    """Batch norm over every axis but the channel axis 1.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``; in training (and always when
    ``track_running_stats=False``) ``mean`` and the biased ``var`` come from the batch,
    and when tracking, ``running = (1 - momentum) * running + momentum * batch`` with the
    unbiased batch variance (``momentum=None``: ``1 / num_batches_tracked`` instead).

    The d2l/Keras convention is one keyword away: ``unbiased_running_var=False`` updates
    ``running_var`` with the *biased* batch variance, as d2l's ``batch_norm`` and Keras'
    ``BatchNormalization`` do. ``momentum`` keeps PyTorch's meaning (the weight of the new
    statistic), so d2l's and Keras' ``momentum=0.9`` is ``momentum=0.1`` here (``1 - m``).

    Parameters
    ----------
    num_features : int
        C, the size of axis 1.
    eps : float, default 1e-5
        Added to the variance; must be > 0.
    momentum : float in [0, 1] or None, default 0.1
        Weight of the new batch statistic in the running average.
    affine : bool, default True
        Learnable ``weight`` (ones) and ``bias`` (zeros) of shape (C,).
    track_running_stats : bool, default True
        Keep ``running_mean``, ``running_var``, ``num_batches_tracked`` buffers.
    dtype : default float32
    bias : bool, keyword only, default True
        With ``affine``, whether to learn ``bias`` (PyTorch 2.13).
    unbiased_running_var : bool, keyword only, default True
        True (PyTorch): ``running_var`` moves towards the unbiased batch variance
        ``var * m / (m - 1)``. False (d2l, Keras): towards the biased ``var``.

    Attributes
    ----------
    moments_hook : callable or None
        When set, called as ``moments_hook(mean, var, count)`` with every batch statistic
        (biased ``var``) that updates the running statistics, before the update.
        ``normlab.train.update_bn_stats`` uses it for the population estimate.

    Raises
    ------
    ValueError
        For a non-positive ``num_features`` or ``eps``, a momentum outside [0, 1], a wrong
        input rank or channel count, or one value per channel in training.
    TypeError
        For a non-numeric momentum or eps, a non-bool ``unbiased_running_var``, or a
        non-floating input.
    """

    _expected = ""  # "(N, C, H, W)" in subclasses
    _ranks: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=np.float32,
                 *, bias: bool = True, unbiased_running_var: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype,
                         bias=bias)
        if not isinstance(unbiased_running_var, (bool, np.bool_)):
            raise NormlabTypeError(
                f"{type(self).__name__}: expected unbiased_running_var to be a bool, got "
                f"{type(unbiased_running_var).__name__}. True is PyTorch's rule, False the "
                "d2l/Keras one (biased running variance)."
            )
        self.unbiased_running_var = bool(unbiased_running_var)
        self.moments_hook = None

    def _check_input_dim(self, x) -> None:
        if x.ndim not in self._ranks:
            ranks = " or ".join(f"{r}D" for r in self._ranks)
            hint = _RANK_HINTS.get(x.ndim, "")
            raise NormlabValueError(
                f"{type(self).__name__}: expected {ranks} input {self._expected}, got "
                f"{x.ndim}D input of shape {tuple(x.shape)}. {hint}".rstrip()
            )

    def _axes(self, x) -> tuple:
        return (0,) + tuple(range(2, x.ndim))

    def uses_running_stats(self) -> bool:
        """Whether ``forward`` normalises with the running statistics (eval mode with
        tracked statistics), i.e. is a fixed per-channel affine map."""
        return not self.training and self.track_running_stats

    def _checked_args(self, x):
        """``forward``'s checks of ``x``; its reduced axes and gamma, beta in x's dtype."""
        _check_float_input(type(self).__name__, x)
        self._check_input_dim(x)
        self._check_channels(x)
        return (self._axes(x), _param_as(self, "weight", x.dtype),
                _param_as(self, "bias", x.dtype))

    def _running_as(self, x):
        """``running_mean``, ``running_var`` in x's dtype."""
        b = self.buffers
        return (b["running_mean"].astype(x.dtype, copy=False),
                b["running_var"].astype(x.dtype, copy=False))

    def _check_batch_count(self, x) -> None:
        if x.size // self.num_features == 1:
            raise NormlabValueError(
                f"{type(self).__name__}: expected more than 1 value per channel when "
                f"training, got input shape {tuple(x.shape)}. Use a batch of 2 or more, or "
                "call .eval() with tracked running statistics."
            )

    def forward(self, x):
        axes, gamma, beta = self._checked_args(x)
        if not self.uses_running_stats():
            self._check_batch_count(x)
            out, self._cache = self._batch_forward(x, gamma, beta, axes)
        else:
            out, cache = F.batch_norm_eval_forward(x, gamma, beta, *self._running_as(x),
                                                   axes=axes, eps=self.eps)
            self._cache = ("eval", cache)
        return out

    def _batch_forward(self, x, gamma, beta, axes):
        """Normalise with batch statistics; returns ``(out, (mode, payload))`` for backward.

        The BN family (Ghost BN, Batch Renorm) overrides this and ``_batch_backward``.
        """
        # forward() has checked x (float, rank, channels, > 1 value per channel) and the
        # parameters are the module's own: the unchecked core, not the checks twice
        out, cache = _bn._forward(x, gamma, beta, axes, self.eps)
        return out, self._batch_done(cache)

    def _batch_done(self, cache):
        """After a batch-statistics forward (``_batch_forward`` or a fused one,
        ``nn._fusion``): the running-statistics step; returns the module's cache."""
        if self.training and self.track_running_stats:
            self._update_buffers(cache.mean, cache.var, cache.count)
        return ("train", cache)

    def _batch_backward(self, dout, mode: str, payload, overwrite_dout=False):
        """Gradients of ``_batch_forward``; ``mode`` is the tag it stored ("train" here).
        ``Module.backward`` has checked ``dout`` against the forward's output;
        ``overwrite_dout``: dx may be written over it (``functional.batch_norm_backward``).
        The BN family's overrides take no ``overwrite_dout`` and are never given one."""
        return _bn._backward(dout, payload, overwrite_dout)

    def _update_buffers(self, mean, var, count: int) -> None:
        """One running-statistics step from a batch's ``mean``, biased ``var`` and ``count``."""
        if self.moments_hook is not None:
            self.moments_hook(mean, var, count)
        b = self.buffers
        nbt = b["num_batches_tracked"] + 1
        b["num_batches_tracked"] = backend.namespace(nbt).asarray(nbt, dtype=np.int64)
        count = int(count)
        if count == 0:  # an empty batch leaves the statistics as they are (PyTorch)
            return
        if self.unbiased_running_var:
            if count == 1:
                raise NormlabValueError(
                    f"{type(self).__name__}: expected more than 1 value per channel to update "
                    "the running variance (unbiased), got 1.")
            var = var * (count / (count - 1))
        # else d2l/Keras: the same rule with the biased variance
        f = _bn.running_factor(self.momentum, int(nbt), type(self).__name__)
        b["running_mean"], b["running_var"] = _bn._update_running_stats(
            b["running_mean"], b["running_var"], mean, var, f)

    def backward(self, dout, overwrite_dout=False):
        """``overwrite_dout``: the caller hands ``dout`` over; in training (this class's
        own batch statistics) dx may be written over it."""
        mode, cache = self._require_cache()
        over = check_bool(overwrite_dout, "overwrite_dout", type(self).__name__)
        if mode == "eval":
            dx, dgamma, dbeta = F.batch_norm_eval_backward(dout, cache)
        elif over and type(self)._batch_backward is _BatchNorm._batch_backward:
            dx, dgamma, dbeta = self._batch_backward(dout, mode, cache, overwrite_dout=True)
        else:
            dx, dgamma, dbeta = self._batch_backward(dout, mode, cache)
        _store(self, dgamma, dbeta)
        return dx

    _dx_fresh = _takes_dout = True  # nn._owned

    def extra_repr(self) -> str:
        extra = "" if self.unbiased_running_var else ", unbiased_running_var=False"
        return super().extra_repr() + extra


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) input; statistics per channel over N (and L).

    Shape
    -----
    input (N, C) or (N, C, L) -> output of the same shape. See ``_BatchNorm``.
    """

    _expected = "(N, C) or (N, C, L)"
    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) input; statistics per channel over N, H, W.

    Shape
    -----
    input (N, C, H, W) -> output (N, C, H, W). See ``_BatchNorm``.
    """

    _expected = "(N, C, H, W)"
    _ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch norm of (N, C, D, H, W) input; statistics per channel over N, D, H, W.

    Shape
    -----
    input (N, C, D, H, W) -> output (N, C, D, H, W). See ``_BatchNorm``.
    """

    _expected = "(N, C, D, H, W)"
    _ranks = (5,)
