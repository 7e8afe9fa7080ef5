"""FrozenBatchNorm1d/2d/3d (torchvision's FrozenBatchNorm2d) and ``freeze_batchnorm``.

A frozen batch norm is batch norm's eval map with statistics that never move, in train
mode too: ``y = (x - running_mean) / sqrt(running_var + eps) * weight + bias``. As in
torchvision, ``weight``, ``bias``, ``running_mean`` and ``running_var`` are buffers (so
optimizers never see them) and there is no ``num_batches_tracked``; ``state_dict`` keys
are ``weight, bias, running_mean, running_var`` in that order. Detection models freeze
the BN layers of a pretrained backbone this way when fine-tuning with tiny batches.
"""

from __future__ import annotations

import numpy as np

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab import backend
from normlab import functional as F
from normlab.nn.batchnorm import (_BatchNorm, _check_eps, _check_float_input,
                                  _check_num_features, _check_running_stats, _RANK_HINTS, _store)
from normlab.nn.markers import NormLayer
from normlab.nn.module import Module

__all__ = ["FrozenBatchNorm1d", "FrozenBatchNorm2d", "FrozenBatchNorm3d", "freeze_batchnorm"]


class _FrozenBatchNorm(NormLayer):
    """Batch norm with fixed statistics and (by default) fixed affine parameters.

    ``y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`` in both modes.

    Parameters
    ----------
    num_features : int
    eps : float, default 1e-5 (torchvision's)
    affine_trainable : bool, keyword only, default False
        False: ``weight`` and ``bias`` are buffers (torchvision). True: they are learnable
        parameters (``params``/``grads``), the statistics stay frozen.
    dtype : default float32

    Raises
    ------
    ValueError
        Non-positive ``num_features`` or ``eps``; wrong input rank or channel count.
    TypeError
        A non-floating input.
    """

    _expected = ""
    _ranks: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, *,
                 affine_trainable: bool = False, dtype=np.float32):
        super().__init__()
        owner = type(self).__name__
        self.num_features = _check_num_features(owner, "num_features", num_features)
        self.eps = _check_eps(owner, eps)
        self.affine_trainable = bool(affine_trainable)
        C = self.num_features
        store = self.params if self.affine_trainable else self.buffers
        store["weight"] = np.ones(C, dtype=dtype)
        store["bias"] = np.zeros(C, dtype=dtype)
        self.buffers["running_mean"] = np.zeros(C, dtype=dtype)
        self.buffers["running_var"] = np.ones(C, dtype=dtype)
        self.zero_grad()

    def _affine(self, key: str):
        return self.params[key] if self.affine_trainable else self.buffers[key]

    def forward(self, x):
        owner = type(self).__name__
        _check_float_input(owner, x)
        if x.ndim not in self._ranks:
            ranks = " or ".join(f"{r}D" for r in self._ranks)
            hint = _RANK_HINTS.get(x.ndim, "").replace("BatchNorm", "FrozenBatchNorm")
            raise NormlabValueError(
                f"{owner}: expected {ranks} input {self._expected}, got {x.ndim}D input of "
                f"shape {tuple(x.shape)}. {hint}".rstrip()
            )
        if x.shape[1] != self.num_features:
            raise NormlabValueError(
                f"{owner}: expected input with {self.num_features} channels (num_features) at "
                f"dim 1, got input of shape {tuple(x.shape)}."
            )
        b, dt = self.buffers, x.dtype
        out, self._cache = F.batch_norm_eval_forward(
            x, self._affine("weight").astype(dt, copy=False),
            self._affine("bias").astype(dt, copy=False),
            b["running_mean"].astype(dt, copy=False), b["running_var"].astype(dt, copy=False),
            axes=(0,) + tuple(range(2, x.ndim)), eps=self.eps)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = F.batch_norm_eval_backward(dout, self._require_cache())
        if self.affine_trainable:
            _store(self, dgamma, dbeta)
        return dx

    def extra_repr(self) -> str:
        extra = ", affine_trainable=True" if self.affine_trainable else ""
        return f"{self.num_features}, eps={self.eps}{extra}"


class FrozenBatchNorm1d(_FrozenBatchNorm):
    """Frozen batch norm of (N, C) or (N, C, L) input. See ``_FrozenBatchNorm``.

    Shape
    -----
    input (N, C) or (N, C, L) -> output of the same shape.
    """

    _expected = "(N, C) or (N, C, L)"
    _ranks = (2, 3)


class FrozenBatchNorm2d(_FrozenBatchNorm):
    """Frozen batch norm of (N, C, H, W) input (torchvision's). See ``_FrozenBatchNorm``.

    Shape
    -----
    input (N, C, H, W) -> output (N, C, H, W).
    """

    _expected = "(N, C, H, W)"
    _ranks = (4,)


class FrozenBatchNorm3d(_FrozenBatchNorm):
    """Frozen batch norm of (N, C, D, H, W) input. See ``_FrozenBatchNorm``.

    Shape
    -----
    input (N, C, D, H, W) -> output of the same shape.
    """

    _expected = "(N, C, D, H, W)"
    _ranks = (5,)


def _frozen_class(bn: _BatchNorm):
    ranks = type(bn)._ranks
    return FrozenBatchNorm3d if 5 in ranks else FrozenBatchNorm2d if 4 in ranks else \
        FrozenBatchNorm1d


def _frozen_copy(bn: _BatchNorm, where: str, affine_trainable: bool) -> _FrozenBatchNorm:
    _check_running_stats("freeze_batchnorm", bn, where,
                         "Such a layer has no statistics to freeze; train it with "
                         "track_running_stats=True or leave it out.")
    rm = bn.buffers["running_mean"]
    xp = backend.namespace(rm)
    frozen = _frozen_class(bn)(bn.num_features, bn.eps, affine_trainable=affine_trainable,
                               dtype=rm.dtype)
    store = frozen.params if affine_trainable else frozen.buffers
    # affine=False is weight 1, bias 0; bias=False is bias 0
    store["weight"] = bn.params["weight"].copy() if "weight" in bn.params else xp.ones_like(rm)
    store["bias"] = bn.params["bias"].copy() if "bias" in bn.params else xp.zeros_like(rm)
    frozen.buffers["running_mean"] = rm.copy()
    frozen.buffers["running_var"] = bn.buffers["running_var"].copy()
    frozen.zero_grad()
    frozen.training = bn.training
    return frozen


def freeze_batchnorm(model: Module, affine_trainable: bool = False) -> Module:
    """Replace every batch-norm layer of ``model`` by a frozen one with the same values.

    Every ``BatchNorm1d/2d/3d`` (and BN-family layer: ``GhostBatchNorm*``,
    ``BatchRenorm*``) becomes the ``FrozenBatchNorm`` of its rank holding copies of its
    ``weight`` (ones when ``affine=False``), ``bias`` (zeros when absent),
    ``running_mean``, ``running_var`` and ``eps``; the swap is in place (children keep
    their names), so the model's outputs in eval mode do not change, and from then on
    they do not depend on the mode either. ``num_batches_tracked`` is dropped.

    Parameters
    ----------
    model : Module
    affine_trainable : bool, default False
        Keep ``weight``/``bias`` learnable (as params); the statistics stay frozen.

    Returns
    -------
    Module
        ``model`` itself, or the new frozen layer when ``model`` is a batch norm.

    Raises
    ------
    TypeError
        If ``model`` is not a normlab Module.
    ValueError
        For a batch norm with ``track_running_stats=False``.
    """
    if not isinstance(model, Module):
        raise NormlabTypeError(f"freeze_batchnorm: expected a normlab Module, got "
                        f"{type(model).__name__}.")
    if isinstance(model, _BatchNorm):
        return _frozen_copy(model, "", affine_trainable)
    swaps = []  # every copy is made before the first swap: an error leaves model as it was
    for name, m in list(model.named_modules()):
        pre = f"{name}." if name else ""
        for cname, child in m._modules.items():
            if isinstance(child, _BatchNorm):
                swaps.append((m, cname, child, _frozen_copy(child, pre + cname,
                                                            affine_trainable)))
    for m, cname, child, frozen in swaps:
        m._modules[cname] = frozen
        if m.__dict__.get(cname) is child:
            object.__setattr__(m, cname, frozen)
    model._invalidate_caches()
    return model
