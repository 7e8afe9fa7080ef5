"""param_groups (decay / no-decay split) and clip_grad_norm (torch.nn.utils.clip_grad_norm_)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import normlab.optim as O
from normlab import nn

from _optim_harness import make_model, quadratic, set_grads, set_torch_grads, torch_params


class MyBatchNorm(nn.BatchNorm2d):
    """A user's BatchNorm2d variant: a norm layer because of its type."""


class BatchNormLookalike(nn.Module):
    """Named like a norm layer, but not one: the class name plays no part."""

    def __init__(self, C):
        super().__init__()
        self.params = {"weight": np.ones((C, C))}


class Scale(nn.Module):
    """A custom norm-like layer that opts in through the ``is_norm`` marker."""

    is_norm = True

    def __init__(self):
        super().__init__()
        self.params = {"gain": np.ones((2, 2))}


def _net():
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Linear(4, 3, rng=rng), nn.BatchNorm2d(3),
                         nn.Linear(3, 2, bias=False, rng=rng), nn.LayerNorm((2, 3)),
                         MyBatchNorm(2), Scale())


def test_split_decays_only_weight_matrices():
    decay, no_decay = O.param_groups(_net(), 5e-4)
    assert [r.name for r in decay["params"]] == ["0.weight", "2.weight"]
    assert [r.name for r in no_decay["params"]] == [
        "0.bias", "1.weight", "1.bias", "3.weight", "3.bias", "4.weight", "4.bias", "5.gain"]
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0


def test_no_exclusion_gives_one_group():
    (group,) = O.param_groups(_net(), 0.1, exclude_norm_and_bias=False)
    assert len(group["params"]) == 10 and group["weight_decay"] == 0.1


def test_is_norm_module():
    assert O.is_norm_module(MyBatchNorm(2)) and O.is_norm_module(Scale())
    assert not O.is_norm_module(nn.Linear(2, 2))


def test_is_norm_module_by_type_not_name():
    assert not O.is_norm_module(BatchNormLookalike(2))
    for layer in (nn.LayerNorm((2, 3)), nn.GroupNorm(1, 2), nn.RMSNorm(3), nn.InstanceNorm3d(2),
                  nn.GhostBatchNorm2d(2), nn.BatchRenorm1d(2), nn.FrozenBatchNorm2d(2)):
        assert O.is_norm_module(layer), type(layer).__name__
        assert isinstance(layer, nn.NormLayer)


def test_layer_norm_matrix_weight_goes_to_no_decay():
    """LayerNorm((2, 3)) has a 2-D weight: only the type check keeps it out of decay."""
    decay, no_decay = O.param_groups(nn.Sequential(nn.LayerNorm((2, 3))), 0.1)
    assert decay["params"] == [] and [r.name for r in no_decay["params"]] == ["0.weight",
                                                                             "0.bias"]


def test_groups_feed_an_optimizer_like_torch():
    m = make_model()
    quad = quadratic(m)
    opt = O.SGD(O.param_groups(m, 0.1), lr=0.05, momentum=0.9)
    tp = torch_params(m)
    topt = torch.optim.SGD([{"params": [tp[0], tp[2]], "weight_decay": 0.1},
                            {"params": [tp[1], tp[3]], "weight_decay": 0.0}], lr=0.05, momentum=0.9)
    for _ in range(20):
        set_grads(m, quad)
        set_torch_grads(tp, quad)
        opt.step()
        topt.step()
    for (name, p, _), t in zip(m.named_parameters(), tp):
        np.testing.assert_allclose(p, t.numpy(), rtol=1e-10, atol=0, err_msg=name)


def test_param_groups_errors():
    with pytest.raises(TypeError, match=r"param_groups: expected a normlab Module, got list. "
                                        r"Pass the model itself"):
        O.param_groups(make_model().parameters(), 0.1)
    with pytest.raises(ValueError, match=r"param_groups: expected weight_decay >= 0, got -0.1"):
        O.param_groups(make_model(), -0.1)
    with pytest.raises(TypeError, match=r"param_groups: expected weight_decay to be a float, got str"):
        O.param_groups(make_model(), "0.1")


def _grads(dtype, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    m = make_model(dtype=dtype)
    for ref in m.parameters():
        ref.module.grads[ref.key] = (scale * rng.standard_normal(ref.value.shape)).astype(dtype)
    tp = [torch.tensor(ref.value.copy()) for ref in m.parameters()]
    for t, ref in zip(tp, m.parameters()):
        t.grad = torch.tensor(ref.grad.copy())
    return m, tp


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    m, tp = _grads(dtype)
    total = O.clip_grad_norm(m.parameters(), max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type, foreach=False)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(total, ttotal.item(), rtol=rtol)
    for ref, t in zip(m.parameters(), tp):
        assert ref.grad.dtype == dtype
        np.testing.assert_allclose(ref.grad, t.grad.numpy(), rtol=rtol)
    if max_norm < total:
        assert O.clip_grad_norm(m, 1e9, norm_type) == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_leaves_small_grads_and_skips_missing():
    m, _ = _grads(np.float64, scale=1e-3)
    m[1].grads.pop("bias")
    before = [ref.grad.copy() for ref in m.parameters() if ref.grad is not None]
    held = m[0].grads["weight"]
    total = O.clip_grad_norm(m, 1.0)
    expected = math.sqrt(sum(float((g ** 2).sum()) for g in before))
    assert total == pytest.approx(expected, rel=1e-12)
    assert m[0].grads["weight"] is held  # scaled in place
    for b, ref in zip(before, [r for r in m.parameters() if r.grad is not None]):
        assert np.array_equal(b, ref.grad)
    O.SGD(m.parameters()).zero_grad(set_to_none=True)
    assert O.clip_grad_norm(m.parameters(), 1.0) == 0.0


def test_clip_grad_norm_nonfinite_follows_torch_or_raises():
    m, tp = _grads(np.float64)
    m[0].grads["weight"][0, 0] = np.inf
    tp[0].grad[0, 0] = math.inf
    with pytest.raises(RuntimeError, match=r"clip_grad_norm: expected a finite total gradient "
                                           r"norm, got inf \(norm_type=2.0\)"):
        O.clip_grad_norm(m, 1.0, error_if_nonfinite=True)
    total = O.clip_grad_norm(m[0].parameters(), 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(tp[:2], 1.0, foreach=False)
    assert total == ttotal.item() == math.inf
    np.testing.assert_array_equal(m[0].grads["weight"], tp[0].grad.numpy())  # NaN/0 like torch


def test_clip_grad_norm_errors():
    with pytest.raises(TypeError, match=r"clip_grad_norm: expected ParamRefs \(model.parameters\(\)\), got ndarray"):
        O.clip_grad_norm([np.ones(3)], 1.0)
    with pytest.raises(ValueError, match=r"clip_grad_norm: expected norm_type > 0 or math.inf, got 0.0"):
        O.clip_grad_norm(make_model(), 1.0, norm_type=0)
