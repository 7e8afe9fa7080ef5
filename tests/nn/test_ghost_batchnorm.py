"""GhostBatchNorm1d/2d: chunked statistics against a PyTorch reference, BN identity, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normlab import nn
from normlab.gradcheck import check_module

from tests.nn.test_batchnorm import bn_path, run_torch_parity  # noqa: F401 (fixture)

KINDS = {
    "1d-2D": (nn.GhostBatchNorm1d, torch.nn.BatchNorm1d, (8, 3), 3),
    "1d-3D": (nn.GhostBatchNorm1d, torch.nn.BatchNorm1d, (5, 3, 4), 2),
    "2d": (nn.GhostBatchNorm2d, torch.nn.BatchNorm2d, (5, 3, 2, 3), 2),
}  # shape and virtual batch size: every case has a smaller last chunk


def _close(ours, theirs):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("kind", list(KINDS))
def test_matches_torch_batchnorm_applied_chunk_by_chunk(rng, kind, momentum, bn_path):
    """Reference: one torch BatchNorm called on x[0:V], x[V:2V], ... (a smaller last chunk),
    outputs concatenated, autograd through the concatenation; 3 steps, then eval."""
    ours_cls, torch_cls, shape, V = KINDS[kind]
    ours = ours_cls(3, virtual_batch_size=V, momentum=momentum).to(dtype=np.float64)
    theirs = torch_cls(3, momentum=momentum).double()
    ours.params["weight"] = 1.0 + rng.standard_normal(3)
    ours.params["bias"] = rng.standard_normal(3)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            ours.state_dict().items()})
    for step in range(4):
        training = step < 3
        ours.train(training)
        theirs.train(training)
        x = 2.0 * rng.standard_normal(shape) + 0.5 * step
        dout = rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        for p in theirs.parameters():
            p.grad = None
        chunks = torch.split(xt, V) if training else (xt,)
        ot = torch.cat([theirs(c) for c in chunks])
        ot.backward(torch.tensor(dout))
        _close(ours(x), ot)
        _close(ours.backward(dout), xt.grad)
        _close(ours.grads["weight"], theirs.weight.grad)
        _close(ours.grads["bias"], theirs.bias.grad)
        for key, v in theirs.state_dict().items():
            if key == "num_batches_tracked":  # one step per chunk: ceil(N / V) per batch
                assert int(ours.buffers[key]) == int(v) == -(-shape[0] // V) * min(step + 1, 3)
            else:
                _close(ours.state_dict()[key], v)


@pytest.mark.parametrize("V", [8, 9, 100])
def test_virtual_batch_at_least_n_is_bit_identical_to_batchnorm(rng, V, bn_path):
    ghost = nn.GhostBatchNorm2d(3, virtual_batch_size=V, momentum=None)
    bn = nn.BatchNorm2d(3, momentum=None)
    w, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    for m in (ghost, bn):
        m.params["weight"], m.params["bias"] = w.copy(), b.copy()
    for step in range(3):
        x = rng.standard_normal((8, 3, 2, 2)).astype(np.float32)
        dout = rng.standard_normal(x.shape).astype(np.float32)
        np.testing.assert_array_equal(ghost(x), bn(x))
        np.testing.assert_array_equal(ghost.backward(dout), bn.backward(dout))
        for key in ("weight", "bias"):
            np.testing.assert_array_equal(ghost.grads[key], bn.grads[key])
        for key in bn.buffers:
            np.testing.assert_array_equal(ghost.buffers[key], bn.buffers[key])


def test_with_default_options_matches_torch_batchnorm_when_one_chunk(rng, bn_path):
    run_torch_parity(nn.GhostBatchNorm1d(3), torch.nn.BatchNorm1d(3), (6, 3), rng)


def test_each_chunk_is_normalised_on_its_own(rng):
    """Closed form: every chunk has mean 0 and biased variance var/(var+eps) per channel."""
    m = nn.GhostBatchNorm1d(2, virtual_batch_size=3, affine=False, eps=1e-5).to(dtype=np.float64)
    x = rng.standard_normal((8, 2)) * 3.0 + 1.0
    out = m(x)
    for start in (0, 3, 6):
        chunk, o = x[start:start + 3], out[start:start + 3]
        np.testing.assert_allclose(o.mean(axis=0), 0.0, atol=1e-14)
        var = chunk.var(axis=0)
        np.testing.assert_allclose(o.var(axis=0), var / (var + 1e-5), rtol=1e-12)


def test_running_stats_take_one_step_per_chunk_in_order():
    """Closed form with momentum 0.5: chunks [1, 3] then [5, 9], unbiased variances 2 and 8:
    mean 0.5 * (0.5 * 0 + 0.5 * 2) + 0.5 * 7 = 4.0, var 0.5 * (0.5 * 1 + 0.5 * 2) + 0.5 * 8
    = 4.75. The reverse order would give mean 2.75: the order matters and is kept."""
    m = nn.GhostBatchNorm1d(1, virtual_batch_size=2, momentum=0.5).to(dtype=np.float64)
    m(np.array([[1.0], [3.0], [5.0], [9.0]]))
    assert int(m.buffers["num_batches_tracked"]) == 2
    np.testing.assert_allclose(m.buffers["running_mean"], [4.0], rtol=1e-15)
    np.testing.assert_allclose(m.buffers["running_var"], [4.75], rtol=1e-15)


def test_smaller_last_chunk_is_normalised_not_dropped(rng):
    m = nn.GhostBatchNorm2d(2, virtual_batch_size=4, affine=False).to(dtype=np.float64)
    x = rng.standard_normal((5, 2, 3, 3))
    out = m(x)
    last = nn.BatchNorm2d(2, affine=False).to(dtype=np.float64)(x[4:])
    np.testing.assert_allclose(out[4:], last, rtol=1e-13, atol=1e-15)
    assert int(m.buffers["num_batches_tracked"]) == 2


def test_eval_is_batchnorm_eval(rng):
    ghost, bn = nn.GhostBatchNorm2d(2, virtual_batch_size=2), nn.BatchNorm2d(2)
    bn.buffers["running_mean"] = ghost.buffers["running_mean"] = np.array([0.5, -1], np.float32)
    bn.buffers["running_var"] = ghost.buffers["running_var"] = np.array([2.0, 0.5], np.float32)
    ghost.eval(), bn.eval()
    x = rng.standard_normal((6, 2, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(ghost(x), bn(x))
    assert int(ghost.buffers["num_batches_tracked"]) == 0


def test_gradcheck_with_uneven_chunks(rng):
    m = nn.GhostBatchNorm1d(3, virtual_batch_size=3)
    m.params["weight"] = 1.0 + 0.5 * rng.standard_normal(3).astype(np.float32)
    pre = nn.Linear(3, 3, bias=False, rng=rng)
    report = check_module(m, rng.standard_normal((8, 3)), rng, pre=pre)
    assert report.passed, report.errors


def test_virtual_batch_size_settable_and_validated():
    m = nn.GhostBatchNorm1d(2, virtual_batch_size=4)
    m.virtual_batch_size = 8
    assert m.virtual_batch_size == 8 and "virtual_batch_size=8" in repr(m)
    with pytest.raises(ValueError, match="GhostBatchNorm1d: expected virtual_batch_size to be a "
                                         "positive int, got 0"):
        m.virtual_batch_size = 0
    assert m.virtual_batch_size == 8


@pytest.mark.parametrize("V,exc,msg", [
    (0, ValueError, "expected virtual_batch_size to be a positive int, got 0"),
    (-3, ValueError, "expected virtual_batch_size to be a positive int, got -3"),
    (16.0, TypeError, "expected virtual_batch_size to be a positive int, got float 16.0"),
    (True, TypeError, "expected virtual_batch_size to be a positive int, got bool True"),
    (None, TypeError, "expected virtual_batch_size to be a positive int, got NoneType"),
])
def test_bad_virtual_batch_size(V, exc, msg):
    with pytest.raises(exc, match=f"GhostBatchNorm2d: {msg}"):
        nn.GhostBatchNorm2d(2, virtual_batch_size=V)


def test_last_chunk_of_one_value_per_channel_raises(rng):
    m = nn.GhostBatchNorm1d(2, virtual_batch_size=2)
    with pytest.raises(ValueError, match=r"GhostBatchNorm1d: expected more than 1 value per "
                                         r"channel in every virtual batch, got a last virtual "
                                         r"batch of 1 sample \(input shape \(5, 2\)"):
        m(rng.standard_normal((5, 2)).astype(np.float32))
    assert int(m.buffers["num_batches_tracked"]) == 0  # refused before any update
    m(rng.standard_normal((5, 2, 2)).astype(np.float32))  # 1 sample x L=2 values: fine
