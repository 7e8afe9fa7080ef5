"""DataParallelTrainer: the Trainer on several processes, equal to the one-process run.

Every rank holds the whole model and the same loaders (same data, same seed). Per step:

1. every rank draws the *global* batch the one-process run would draw and keeps its
   ``np.array_split`` slice (:class:`normlab.distributed.ShardedLoader`);
2. forward on the slice (``nn.SyncBatchNorm`` layers merge their statistics across the
   ranks, so they see the global batch);
3. one all-reduce of ``(loss * n, correct, n)`` gives the global batch size ``N`` and the
   global loss, which every rank logs and checks identically;
4. backward of the *global* mean loss: the local loss gradient is scaled by ``n / N``
   before backward (not after), so that SyncBatchNorm's all-reduced sums are sums of
   the global loss's gradient;
5. gradients summed over the ranks in buckets (:class:`normlab.distributed.GradientBuckets`),
   then the same checks, clipping and optimizer step on every rank.

At construction the parameters and buffers of rank 0 are broadcast to every rank.
Only rank 0 shows the progress bar and writes ``history.jsonl`` and checkpoints; a
checkpoint records the number of processes and resuming refuses another number.
Callbacks run on every rank with the same records (but for ``time``); write files
only where ``trainer.is_main``. Dropout draws from each rank's own generator, so a model with
dropout is equal to the one-process run in distribution only.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from normlab import backend
from normlab.distributed import (DistributedError, GradientBuckets, ShardedLoader,
                                 broadcast_module, init)
from normlab.train._resume import loader_rng
from normlab.train.trainer import Trainer

__all__ = ["DataParallelTrainer"]


def _digest(text: str) -> np.ndarray:
    """Eight bytes of SHA-256 as one int64, for comparing states across ranks."""
    return np.frombuffer(hashlib.sha256(text.encode()).digest()[:8], dtype=np.int64).copy()


def _model_signature(model) -> str:
    return json.dumps([(k, list(v.shape), str(v.dtype)) for k, v in
                       model.state_dict().items()])


class DataParallelTrainer(Trainer):
    """:class:`Trainer` over the processes of ``comm`` (see the module docstring).

    Parameters
    ----------
    model, optimizer, loss_fn, ... :
        As :class:`Trainer` (keywords after ``loss_fn``); every rank passes the same.
    comm : Communicator, optional
        Default ``normlab.distributed.init()``.
    bucket_mb : float, default 25
        Gradient bucket size in MiB.

    Raises
    ------
    DistributedError
        If the ranks built different models (keys, shapes or dtypes differ), or
        ``fit`` gets train loaders in different states (e.g. different seeds).
    """

    def __init__(self, model, optimizer, loss_fn=None, *, comm=None, bucket_mb: float = 25.0,
                 **kwargs):
        self.comm = init() if comm is None else comm
        if self.comm.rank != 0:
            kwargs["progress"] = False
        super().__init__(model, optimizer, loss_fn, **kwargs)
        self._same_on_every_rank("models (state_dict keys, shapes, dtypes)",
                                 _model_signature(model), "Build the same model on every rank.")
        broadcast_module(model, self.comm, root=0)
        self.buckets = GradientBuckets(model.parameters(), self.comm, bucket_mb)

    # ------------------------------------------------------------------ seams
    @property
    def is_main(self) -> bool:
        return self.comm.rank == 0

    @property
    def world_size(self) -> int:
        return self.comm.size

    def _shard(self, loader, evaluation: bool = False):
        if isinstance(loader, ShardedLoader):
            if not evaluation:
                return loader  # the caller's own (e.g. min_shard=0 for an MLP)
            loader = loader.loader
        # evaluation forwards nothing that communicates, so a rank may get no sample
        return ShardedLoader(loader, self.comm, min_shard=0 if evaluation else 1)

    def _sum_over_ranks(self, loss_sum, correct, count):
        tot = self.comm.allreduce(np.array([loss_sum, correct, count], dtype=np.float64))
        return float(tot[0]), int(tot[1]), int(tot[2])

    def _same_on_every_rank(self, what: str, text: str, hint: str) -> None:
        digests = self.comm.allgather(_digest(text)).reshape(-1)
        if not np.all(digests == digests[0]):
            differ = [r for r in range(self.comm.size) if digests[r] != digests[0]]
            raise DistributedError(f"DataParallelTrainer: expected the same {what} on every "
                                   f"rank, got different ones on ranks {differ} (vs rank 0). "
                                   f"{hint}")

    # ------------------------------------------------------------------ fit
    def fit(self, train_loader, val_loader=None, **kwargs):
        """As :meth:`Trainer.fit`, with loaders of *global* batches (sharded here)."""
        rng = loader_rng(train_loader)
        if getattr(train_loader, "shuffle", True) is False:
            rng = None  # a loader that draws nothing may have any state
        state = "" if rng is None else json.dumps(rng.bit_generator.state, default=str)
        self._same_on_every_rank("train loader generator state", state,
                                 "Build the loaders with the same seed on every rank.")
        return super().fit(train_loader, val_loader, **kwargs)

    def load(self, path) -> dict:
        """As :meth:`Trainer.load` on every rank, once rank 0 has finished writing."""
        self.comm.barrier()
        return super().load(path)

    def save(self, path=None):
        """Rank 0 writes the checkpoint (returns its path); other ranks return None."""
        out = super().save(path) if self.is_main else None
        self._last_saved_step = self.step
        return out

    # ------------------------------------------------------------------ one step
    def _forward_backward(self, xb, yb):
        logits = self.model(xb)  # on every rank (min_shard=0 gives empty slices): SyncBN
        n = int(len(yb))
        mean = getattr(self.loss_fn, "reduction", "mean") == "mean"
        local, correct = 0.0, 0
        if n:
            local = float(backend.to_numpy(self.loss_fn(logits, yb)))
            if "accuracy" in self.metrics:
                correct = self._correct(logits, yb)
        part = local * n if mean else local
        tot = self.comm.allreduce(np.array([part, correct, n], dtype=np.float64))
        N = int(tot[2])
        loss = float(tot[0]) / N if mean else float(tot[0])
        if not math.isfinite(loss):  # the same on every rank: all raise together
            raise self._diverged("a finite loss", f"{loss}")
        if n:
            dlogits = self.loss_fn.backward(n / N if mean else 1.0)
        else:
            dlogits = backend.namespace(logits).zeros_like(logits)
        self.model.backward(dlogits)
        self.buckets.allreduce()
        return loss, (int(tot[1]) if "accuracy" in self.metrics else None), N
