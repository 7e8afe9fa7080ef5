"""Gradient buckets and the broadcast of a module's state (fake communicators)."""

from __future__ import annotations

import numpy as np
import pytest

from normlab import nn
from normlab.distributed import GradientBuckets, broadcast_module

from tests.distributed._fakes import CountingComm


def _mlp(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(6, 8, dtype=np.float64, rng=rng),
                         nn.BatchNorm1d(8, dtype=np.float64), nn.ReLU(),
                         nn.Linear(8, 3, dtype=np.float64, rng=rng))


def test_gradient_buckets_one_call_per_bucket():
    model = _mlp()
    model(np.random.default_rng(0).standard_normal((5, 6)))
    model.backward(np.ones((5, 3)))
    grads = [r.grad.copy() for r in model.parameters()]
    comm = CountingComm(size=3)  # three identical ranks: sums are 3x
    buckets = GradientBuckets(model.parameters(), comm, bucket_mb=30 * 8 / 2**20)
    assert 1 < len(buckets.buckets) < len(grads)
    assert sorted(i for b in buckets.buckets for i in b) == list(range(len(grads)))
    assert buckets.buckets[0][0] == len(grads) - 1  # reverse order: last layer first
    buckets.allreduce()
    assert comm.calls["allreduce"] == len(buckets.buckets)
    for ref, r in zip(grads, model.parameters()):
        np.testing.assert_array_equal(r.grad, 3 * ref)
    one = GradientBuckets(model.parameters(), CountingComm(size=1))
    assert len(one.buckets) == 1  # default 25 MiB holds this whole model
    with pytest.raises(ValueError, match="GradientBuckets: expected bucket_mb > 0"):
        GradientBuckets(model.parameters(), comm, bucket_mb=0)



class _FromRankZero(CountingComm):
    """Rank 1 of 2, receiving ``source``'s flat buffers from rank 0."""

    def __init__(self, source):
        super().__init__(size=2, rank=1)
        self.flat = {}
        for _, m in source.named_modules():
            for store in (m.params, m.buffers):
                for a in store.values():
                    self.flat.setdefault(a.dtype, []).append(a.reshape(-1))

    def broadcast(self, obj, root=0):
        self.calls["broadcast"] += 1
        return np.concatenate(self.flat[obj.dtype])


def test_broadcast_module_one_message_per_dtype():
    source, target = _mlp(seed=0), _mlp(seed=1)
    source.params = {}
    source[1].buffers["running_mean"] += 2.0
    source[1].buffers["num_batches_tracked"] += 5
    comm = _FromRankZero(source)
    broadcast_module(target, comm)
    assert comm.calls["broadcast"] == 2  # float64 and int64
    for k, v in source.state_dict().items():
        got = target.state_dict()[k]
        np.testing.assert_array_equal(got, v)
        assert got.dtype == v.dtype and got.shape == v.shape
