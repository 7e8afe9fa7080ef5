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

Both run the whole model in train mode (each layer computes what it computes in training:
BN and Ghost BN normalise with batch statistics, Batch Renorm corrects towards the running
statistics being rebuilt) and restore every module's ``momentum`` and mode afterwards.
"""

from __future__ import annotations

import numpy as np

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab import functional as F
from normlab.nn.batchnorm import _BatchNorm
from normlab.nn.module import Module

__all__ = ["update_bn_stats", "ESTIMATORS"]

ESTIMATORS = ("average", "population")


class _Population:
    """Collects the ``Moments`` a BN layer updates its statistics from (float64)."""

    def __init__(self) -> None:
        self.moments: list = []

    def __call__(self, mean, var, count) -> None:
        self.moments.append(F.Moments(mean.astype(np.float64), var.astype(np.float64),
                                      int(count)))

    def merged(self):
        """Chan's merge (``functional.merge_moments``): count-weighted, exact."""
        return F.merge_moments(self.moments) if self.moments else None


def _first(batch):
    """The input of a batch: ``x`` itself, or the first item of an ``(x, y)`` tuple/list."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def update_bn_stats(model: Module, batches, estimator: str = "average",
                    num_batches: int | None = None) -> Module:
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
    num_batches : int or None, default None
        Use only the first ``num_batches`` batches (an endless loader needs it); None uses
        them all.

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
        For an unknown estimator, a ``num_batches`` below 1, a model without a batch-norm
        layer that tracks running statistics, or ``batches`` that yields nothing. On any
        error every buffer, momentum and mode is restored.
    """
    if not isinstance(model, Module):
        raise NormlabTypeError(f"update_bn_stats: expected a normlab Module, got "
                        f"{type(model).__name__}.")
    if estimator not in ESTIMATORS:
        raise NormlabValueError(f"update_bn_stats: expected estimator in {ESTIMATORS}, got "
                         f"{estimator!r}.")
    if num_batches is not None and (isinstance(num_batches, bool)
                                    or not isinstance(num_batches, (int, np.integer))
                                    or num_batches < 1):
        raise NormlabValueError(f"update_bn_stats: expected num_batches to be a positive int or None, "
                         f"got {num_batches!r}.")
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not bns:
        raise NormlabValueError(
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
            if num_batches is not None and n_batches == num_batches:
                break
            model(_first(batch))
            n_batches += 1
        if n_batches == 0:
            raise NormlabValueError(
                "update_bn_stats: expected at least one batch, got an empty iterable. Pass "
                "a loader (or list) that yields a few training batches."
            )
        for m, pop in population.items():
            merged = pop.merged()
            if merged is not None and merged.count > 0:
                rm = m.buffers["running_mean"]
                m.buffers["running_mean"] = merged.mean.astype(rm.dtype)
                m.buffers["running_var"] = merged.var.astype(rm.dtype)
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
