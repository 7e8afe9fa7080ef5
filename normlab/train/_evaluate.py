"""``Trainer.evaluate``: mean loss and accuracy over a loader in eval mode."""

from __future__ import annotations

import math

from normlab import backend
from normlab.errors import NormlabValueError
from normlab.nn import no_grad
from normlab.train.numerics import check_finite_batch, quiet_overflow

__all__ = ["EvaluationMixin"]


class EvaluationMixin:
    """Evaluation for the Trainer; uses its ``model``, ``loss_fn``, ``metrics`` and the
    data-parallel seams ``_shard`` / ``_sum_over_ranks`` / ``_on_model_device``."""

    def _correct(self, logits, y) -> int:
        logits, y = backend.to_numpy(logits), backend.to_numpy(y)
        if logits.ndim != 2 or y.ndim != 1 or y.dtype.kind not in "iu":
            raise NormlabValueError(f"Trainer: expected (N, C) logits and (N,) integer labels for the "
                             f"'accuracy' metric, got logits {logits.shape} and labels "
                             f"{y.shape} of dtype {y.dtype}. Pass metrics=('loss',).")
        return int((logits.argmax(axis=1) == y).sum())

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, loader) -> dict:
        """Mean loss (and accuracy) over ``loader`` in eval mode; restores every module's mode.

        Returns
        -------
        dict
            ``{"loss": float, "accuracy": float}`` (accuracy only with that metric).

        Raises
        ------
        ValueError
            If the loader yields no batch.
        DivergenceError
            If the loss is not finite.
        """
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        loss_sum, correct, count = 0.0, 0, 0
        try:
            with quiet_overflow(), no_grad():  # inference: no module keeps a cache
                for batch in self._shard(loader, evaluation=True):
                    xb, yb = self._on_model_device(batch)
                    n = int(len(yb))
                    if n == 0:  # an empty shard of a small batch (data parallel)
                        continue
                    logits = self.model(xb)
                    batch_loss = float(backend.to_numpy(self.loss_fn(logits, yb)))
                    if not math.isfinite(batch_loss):
                        check_finite_batch("Trainer.evaluate", xb, "of the evaluation loader")
                    loss_sum += batch_loss * n
                    if "accuracy" in self.metrics:
                        correct += self._correct(logits, yb)
                    count += n
        finally:
            for m, mode in modes:
                m.training = mode
        loss_sum, correct, count = self._sum_over_ranks(loss_sum, correct, count)
        if count == 0:
            raise NormlabValueError("Trainer.evaluate: expected a loader yielding at least one "
                             "batch, got none.")
        if not math.isfinite(loss_sum):
            raise self._diverged("a finite evaluation loss", f"{loss_sum / count}", "after")
        out = {"loss": loss_sum / count}
        if "accuracy" in self.metrics:
            out["accuracy"] = correct / count
        return out
