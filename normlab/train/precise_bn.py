"""Precise BatchNorm: re-estimate every BN layer's running statistics over given batches.

The running statistics that BN keeps during training are an exponential average taken
while the weights were still moving; evaluating with statistics re-estimated over a few
batches under the final weights removes that lag (Wu & Johnson 2021, "Rethinking 'Batch'
in BatchNorm"; SWA's ``update_bn``). Two estimators:

- ``"average"`` (``torch.optim.swa_utils.update_bn``): each BN's statistics are reset,
  ``momentum`` is set to None (a cumulative average), and every batch weighs the same:
  ``running_mean = mean_b(mean_b)``, ``running_var = mean_b(unbiased var_b)``.
- ``"population"`` (fvcore's PreciseBN estimator): the count-weighted mean and the biased
  variance of all values the layer saw, merged exactly with Chan's formula.

Both run the whole model in train mode (each BN normalises with its batch statistics, as
during training) and restore every module's ``momentum`` and mode afterwards.
"""

from __future__ import annotations

import numpy as np

from normlab import backend
from normlab.nn.batchnorm import _BatchNorm
from normlab.nn.module import Module

__all__ = ["update_bn_stats", "ESTIMATORS"]

ESTIMATORS = ("average", "population")


class _Population:
    """Running count, mean and sum of squared deviations (Chan et al.), in float64."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, None, None

    def __call__(self, mean, var, count) -> None:
        count = int(count)
        if count == 0:
            return
        mean = backend.to_numpy(mean).astype(np.float64)
        m2 = backend.to_numpy(var).astype(np.float64) * count  # var is biased
        if self.count == 0:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
        self.count = total


def _first(batch):
    """The input of a batch: ``x`` itself, or the first item of an ``(x, y)`` tuple/list."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def update_bn_stats(model: Module, batches, estimator: str = "average") -> Module:
    """Re-estimate the running statistics of every batch-norm layer of ``model``.

    Parameters
    ----------
    model : Module
        Every ``BatchNorm1d/2d/3d`` (and BN-family layer: ``GhostBatchNorm*``,
        ``BatchRenorm*``) that tracks running statistics is re-estimated; other layers
        keep their buffers. Ghost BN contributes one statistic per virtual batch.
    batches : iterable
        Arrays ``x``, or ``(x, y)`` tuples as a ``DataLoader`` yields (the first item is
        the input); iterated once.
    estimator : {"average", "population"}, default "average"
        "average": equal weight per batch, unbiased variance (PyTorch's ``update_bn``).
        "population": count-weighted mean and biased variance of all values.

    Returns
    -------
    Module
        ``model``, with new running statistics, every module's ``momentum`` and
        ``training`` flag as before, and no cached forward pass.

    Raises
    ------
    TypeError
        If ``model`` is not a normlab Module.
    ValueError
        For an unknown estimator, a model without a batch-norm layer that tracks running
        statistics, or ``batches`` that yields nothing. On any error every buffer,
        momentum and mode is restored.
    """
    if not isinstance(model, Module):
        raise TypeError(f"update_bn_stats: expected a normlab Module, got "
                        f"{type(model).__name__}.")
    if estimator not in ESTIMATORS:
        raise ValueError(f"update_bn_stats: expected estimator in {ESTIMATORS}, got "
                         f"{estimator!r}.")
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not bns:
        raise ValueError(
            f"update_bn_stats: expected a model with at least one BatchNorm layer that tracks "
            f"running statistics, got {type(model).__name__} with none. There is nothing to "
            "re-estimate."
        )
    saved_buffers = {m: {k: v.copy() for k, v in m.buffers.items()} for m in bns}
    saved_momentum = {m: m.momentum for m in bns}
    saved_mode = [(m, m.training) for m in model.modules()]
    population = {m: _Population() for m in bns} if estimator == "population" else {}
    ok = False
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
            if estimator == "population":
                m.moments_hook = population[m]
        model.train()
        n_batches = 0
        for batch in batches:
            model(_first(batch))
            n_batches += 1
        if n_batches == 0:
            raise ValueError(
                "update_bn_stats: expected at least one batch, got an empty iterable. Pass "
                "a loader (or list) that yields a few training batches."
            )
        for m, pop in population.items():
            if pop.count > 0:
                rm = m.buffers["running_mean"]
                xp = backend.namespace(rm)
                m.buffers["running_mean"] = xp.asarray(pop.mean, dtype=rm.dtype)
                m.buffers["running_var"] = xp.asarray(pop.m2 / pop.count, dtype=rm.dtype)
        ok = True
    finally:
        for m in bns:
            m.momentum = saved_momentum[m]
            m.moments_hook = None
            if not ok:
                m.buffers.update(saved_buffers[m])
        for m, training in saved_mode:
            m.training = training
        model._invalidate_caches()
    return model
