"""FrozenBatchNorm1d/2d/3d and freeze_batchnorm: torchvision's state, BN-eval parity, swaps."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from normlab import models, nn
from normlab.gradcheck import check_module
from normlab.interop import fold_batchnorm
from normlab.nn.catalog import ElementwiseAffine
from normlab.optim import param_groups


def _stats(m, rng):
    C = m.num_features
    store = m.params if m.affine_trainable else m.buffers
    store["weight"] = (1.0 + 0.5 * rng.standard_normal(C)).astype(np.float32)
    store["bias"] = rng.standard_normal(C).astype(np.float32)
    m.buffers["running_mean"] = rng.standard_normal(C).astype(np.float32)
    m.buffers["running_var"] = rng.uniform(0.5, 2.0, C).astype(np.float32)
    return m


def test_state_is_torchvisions():
    m = nn.FrozenBatchNorm2d(3)
    assert list(m.state_dict()) == ["weight", "bias", "running_mean", "running_var"]
    assert m.params == {} and m.parameters() == [] and m.eps == 1e-5
    np.testing.assert_array_equal(m.state_dict()["weight"], np.ones(3, np.float32))
    np.testing.assert_array_equal(m.state_dict()["running_var"], np.ones(3, np.float32))
    t = nn.FrozenBatchNorm2d(3, affine_trainable=True)
    assert list(t.state_dict()) == ["weight", "bias", "running_mean", "running_var"]
    assert list(t.params) == ["weight", "bias"] and list(t.buffers) == ["running_mean",
                                                                         "running_var"]


@pytest.mark.parametrize("cls,torch_cls,shape", [
    (nn.FrozenBatchNorm1d, torch.nn.BatchNorm1d, (4, 3)),
    (nn.FrozenBatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
    (nn.FrozenBatchNorm2d, torch.nn.BatchNorm2d, (2, 3, 4, 3)),
    (nn.FrozenBatchNorm3d, torch.nn.BatchNorm3d, (2, 3, 2, 2, 3)),
])
@pytest.mark.parametrize("trainable", [False, True])
def test_matches_torch_batchnorm_in_eval_in_both_modes(rng, cls, torch_cls, shape, trainable):
    ours = _stats(cls(3, eps=1e-3, affine_trainable=trainable), rng).to(dtype=np.float64)
    theirs = torch_cls(3, eps=1e-3).double().eval()
    state = {k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=False)
    before = copy.deepcopy(ours.state_dict())
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        theirs.weight.grad = theirs.bias.grad = None
        ot = theirs(xt)
        ot.backward(torch.tensor(dout))
        np.testing.assert_allclose(ours(x), ot.detach().numpy(), rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(ours.backward(dout), xt.grad.numpy(), rtol=1e-7, atol=1e-12)
        if trainable:
            np.testing.assert_allclose(ours.grads["weight"], theirs.weight.grad.numpy(),
                                       rtol=1e-7)
            np.testing.assert_allclose(ours.grads["bias"], theirs.bias.grad.numpy(), rtol=1e-7)
        else:
            assert ours.grads == {}
        for k, v in before.items():  # nothing moves, in train mode either
            np.testing.assert_array_equal(ours.state_dict()[k], v)


@pytest.mark.parametrize("trainable", [False, True])
def test_gradcheck(rng, trainable):
    m = _stats(nn.FrozenBatchNorm2d(2, affine_trainable=trainable), rng)
    report = check_module(m, rng.standard_normal((2, 2, 3, 2)), rng,
                          pre=ElementwiseAffine((2, 3, 2), rng))
    assert report.passed, report.errors
    assert ("weight" in report.errors) == trainable


def _resnet(rng):
    model = models.build("resnet20", base_width=4, num_classes=3, rng=0)
    x = rng.standard_normal((6, 3, 8, 8)).astype(np.float32)
    for _ in range(2):  # move the running statistics away from their initial values
        model(x * 2.0 + 0.5)
    for name, p, _ in model.named_parameters():
        if name.endswith("bn1.weight") or name.endswith("bn2.bias"):
            p += 0.3 * rng.standard_normal(p.shape).astype(p.dtype)
    return model.eval(), x


def test_freeze_keeps_eval_outputs_bit_for_bit_and_drops_every_bn(rng):
    model, x = _resnet(rng)
    expected = model(x)
    bn_state = {k: v for k, v in model.state_dict().items() if "num_batches_tracked" not in k}
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert nn.freeze_batchnorm(model) is model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, nn.FrozenBatchNorm2d) for m in model.modules()) == n_bn
    assert model.bn1 is model._modules["bn1"] and isinstance(model.bn1, nn.FrozenBatchNorm2d)
    assert model.state_dict().keys() == bn_state.keys()
    for k, v in bn_state.items():
        np.testing.assert_array_equal(model.state_dict()[k], v)
    np.testing.assert_array_equal(model(x), expected)
    model.train()
    np.testing.assert_array_equal(model(x), expected)  # train mode: same map
    dx = model.backward(np.ones_like(expected))
    assert dx.shape == x.shape and np.abs(dx).sum() > 0
    assert not any(n.endswith(("bn1.weight", "bn2.bias")) for n, _, _ in
                   model.named_parameters())


def test_freeze_with_trainable_affine_keeps_weight_and_bias_learnable(rng):
    model, x = _resnet(rng)
    n_params = len(model.parameters())
    nn.freeze_batchnorm(model, affine_trainable=True)
    assert len(model.parameters()) == n_params
    out = model.train()(x)
    model.backward(np.ones_like(out))
    g = model.bn1.grads["weight"]
    assert g.shape == (4,) and np.abs(g).sum() > 0
    _, no_decay = param_groups(model, 0.1)
    assert "bn1.weight" in [r.name for r in no_decay["params"]]


def test_freeze_a_bn_itself_and_other_ranks_and_options(rng):
    bn = nn.BatchNorm1d(3, affine=False).to(dtype=np.float64)
    bn(rng.standard_normal((5, 3)))
    frozen = nn.freeze_batchnorm(bn.eval())
    assert isinstance(frozen, nn.FrozenBatchNorm1d) and frozen.training is False
    np.testing.assert_array_equal(frozen.buffers["weight"], np.ones(3))
    x = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(frozen(x), bn(x))
    seq = nn.Sequential(nn.BatchNorm3d(2, bias=False), nn.GhostBatchNorm1d(2),
                        nn.BatchRenorm2d(2))
    nn.freeze_batchnorm(seq)
    assert [type(m).__name__ for m in seq] == ["FrozenBatchNorm3d", "FrozenBatchNorm1d",
                                               "FrozenBatchNorm2d"]
    np.testing.assert_array_equal(seq[0].buffers["bias"], np.zeros(2, np.float32))


def test_frozen_model_folds(rng):
    model, x = _resnet(rng)
    nn.freeze_batchnorm(model)
    folded = fold_batchnorm(model.eval())
    assert not any(isinstance(m, nn.FrozenBatchNorm2d) for m in folded.modules())
    np.testing.assert_allclose(folded(x), model(x), rtol=1e-4, atol=1e-5)


def test_freeze_refuses_bn_without_running_stats_and_leaves_model_untouched():
    seq = nn.Sequential(nn.BatchNorm1d(2), nn.BatchNorm1d(2, track_running_stats=False))
    with pytest.raises(ValueError, match=r"freeze_batchnorm: expected BatchNorm layers with "
                                         r"running statistics, got track_running_stats=False "
                                         r"at '1'"):
        nn.freeze_batchnorm(seq)
    assert isinstance(seq[0], nn.BatchNorm1d)


def test_freeze_refuses_a_non_module():
    with pytest.raises(TypeError, match="freeze_batchnorm: expected a normlab Module, got dict"):
        nn.freeze_batchnorm({})


@pytest.mark.parametrize("make,shape,msg", [
    (lambda: nn.FrozenBatchNorm2d(3), (2, 3),
     r"FrozenBatchNorm2d: expected 4D input \(N, C, H, W\), got 2D input of shape \(2, 3\). "
     r"Use FrozenBatchNorm1d"),
    (lambda: nn.FrozenBatchNorm1d(3), (2, 4),
     r"FrozenBatchNorm1d: expected input with 3 channels \(num_features\) at dim 1, got input "
     r"of shape \(2, 4\)"),
])
def test_bad_input(rng, make, shape, msg):
    with pytest.raises(ValueError, match=msg):
        make()(rng.standard_normal(shape).astype(np.float32))


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="FrozenBatchNorm2d: expected eps > 0, got eps=0"):
        nn.FrozenBatchNorm2d(2, eps=0)
    with pytest.raises(ValueError, match="FrozenBatchNorm2d: expected num_features to be a "
                                         "positive int, got 0"):
        nn.FrozenBatchNorm2d(0)
