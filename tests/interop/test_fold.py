"""fold_batchnorm: same eval logits, no BN left, input untouched, refusals."""

import copy
from functools import partial

import numpy as np
import pytest

from normlab import nn
from normlab.interop import fold_batchnorm
from normlab.models import (ConvBase, FullyConnectedNet, LeNet, MLPBase, ThreeLayerConvNet,
                            resnet18, resnet20)


def _trained(model, x, steps=3):
    """A few training-mode forwards so running stats and BN affine params are not defaults."""
    rng = np.random.default_rng(5)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            for k in m.params:
                m.params[k] = m.params[k] + rng.standard_normal(m.params[k].shape) * 0.3
    for _ in range(steps):
        model(x + rng.standard_normal(x.shape))
    return model.eval()


MODELS = {
    "mlp": (lambda: FullyConnectedNet([6, 5], 8, 3, norm="batch", dtype=np.float64, rng=0), (8,)),
    "convnet": (lambda: ThreeLayerConvNet((2, 6, 6), 3, 3, 5, 3, norm="batch",
                                          dtype=np.float64, rng=0), (2, 6, 6)),
    "lenet": (lambda: LeNet(dtype=np.float64, rng=0), (1, 28, 28)),
    "resnet20": (lambda: resnet20(base_width=4, dtype=np.float64, rng=0), (3, 8, 8)),
    "resnet18": (lambda: resnet18(base_width=4, dtype=np.float64, rng=0), (3, 32, 32)),
    "mnist1d-mlp": (lambda: MLPBase(hidden=8, norm="batch", dtype=np.float64, rng=0), (40,)),
    "mnist1d-cnn": (lambda: ConvBase(channels=3, norm="batch", dtype=np.float64, rng=0), (40,)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_folded_logits_equal_and_no_batchnorm_left(name):
    make, shape = MODELS[name]
    x = np.random.default_rng(0).standard_normal((4, *shape))
    model = _trained(make(), x)
    before = copy.deepcopy(model.state_dict())
    folded = fold_batchnorm(model)
    np.testing.assert_allclose(folded(x), model(x), rtol=1e-10, atol=1e-10)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in folded.modules())
    assert not folded.training
    for k, v in model.state_dict().items():  # the input model is untouched
        np.testing.assert_array_equal(v, before[k])
    assert any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())


def test_folded_layer_formula_and_new_bias():
    lin = nn.Linear(3, 2, bias=False, dtype=np.float64, rng=0)
    bn = nn.BatchNorm1d(2, dtype=np.float64)
    bn.params["weight"] = np.array([2.0, -0.5])
    bn.params["bias"] = np.array([0.1, 0.2])
    bn.buffers["running_mean"] = np.array([1.0, -1.0])
    bn.buffers["running_var"] = np.array([4.0, 0.25])
    model = nn.Sequential(lin, bn).eval()
    folded = fold_batchnorm(model)
    s = np.array([2.0, -0.5]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5)
    np.testing.assert_allclose(folded[0].params["weight"], lin.params["weight"] * s[:, None],
                               rtol=1e-15)
    np.testing.assert_allclose(folded[0].params["bias"], -np.array([1.0, -1.0]) * s + [0.1, 0.2],
                               rtol=1e-15)
    assert type(folded[1]) is nn.Identity
    assert set(folded.state_dict()) == {"0.weight", "0.bias"}


def test_affine_false_batchnorm_folds_with_unit_scale(rng):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, dtype=np.float64, rng=0),
                          nn.BatchNorm2d(3, affine=False, dtype=np.float64))
    x = rng.standard_normal((4, 2, 5, 5))
    model(x)
    model.eval()
    np.testing.assert_allclose(fold_batchnorm(model)(x), model(x), rtol=1e-10, atol=1e-10)


def test_batchnorm_not_after_a_layer_stays(rng):
    model = nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3, dtype=np.float64)).eval()
    folded = fold_batchnorm(model)
    assert isinstance(folded[1], nn.BatchNorm1d)


def test_refuses_a_model_in_training_mode():
    model = FullyConnectedNet([4], 3, 2, norm="batch", rng=0)
    with pytest.raises(RuntimeError, match=r"fold_batchnorm: expected a model in eval mode, got "
                                           r"training mode\. Call model\.eval\(\) first\."):
        fold_batchnorm(model)
    model.eval()
    model[2].train()  # one submodule left in training mode is enough to refuse
    with pytest.raises(RuntimeError, match="expected a model in eval mode"):
        fold_batchnorm(model)


def test_refuses_batchnorm_without_running_stats():
    model = nn.Sequential(nn.Linear(3, 2, rng=0),
                          nn.BatchNorm1d(2, track_running_stats=False)).eval()
    with pytest.raises(ValueError, match=r"fold_batchnorm: expected BatchNorm layers with running "
                                         r"statistics, got track_running_stats=False at '1'"):
        fold_batchnorm(model)


def test_refuses_size_mismatch():
    model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.BatchNorm1d(4)).eval()
    with pytest.raises(ValueError, match=r"fold_batchnorm: expected the BatchNorm at '1' to have as "
                                         r"many features as the layer before it has outputs \(2\), "
                                         r"got 4"):
        fold_batchnorm(model)


@pytest.mark.parametrize("norm", [
    partial(nn.GhostBatchNorm2d, virtual_batch_size=2),
    partial(nn.BatchRenorm2d, r_max=2.0, d_max=1.0),
    nn.BatchNorm2d,
])
@pytest.mark.parametrize("name", ["lenet", "resnet20"])
def test_bn_family_recognised_by_type_and_folded(name, norm):
    """Every layer whose eval map is BN's folds, whatever its class (Ghost BN, Batch Renorm)
    and however the model got it (norm= callable, rank siblings in LeNet)."""
    build = {"lenet": LeNet, "resnet20": partial(resnet20, base_width=4)}[name]
    model = build(norm=norm, dtype=np.float64, rng=0)
    shape = (1, 28, 28) if name == "lenet" else (3, 8, 8)
    x = np.random.default_rng(0).standard_normal((4, *shape))
    model = _trained(model, x)
    folded = fold_batchnorm(model)
    np.testing.assert_allclose(folded(x), model(x), rtol=1e-10, atol=1e-10)
    assert not any(isinstance(m, nn.NormLayer) for m in folded.modules())


def test_frozen_batchnorm_with_buffer_affine_folds(rng):
    seq = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.BatchNorm1d(4)).to(dtype=np.float64)
    seq[1].params["weight"] = 1.0 + rng.standard_normal(4)
    seq[1].params["bias"] = rng.standard_normal(4)
    seq(rng.standard_normal((6, 3)))
    nn.freeze_batchnorm(seq.eval())
    assert "weight" in seq[1].buffers
    x = rng.standard_normal((5, 3))
    folded = fold_batchnorm(seq)
    assert isinstance(folded[1], nn.Identity)
    np.testing.assert_allclose(folded(x), seq(x), rtol=1e-12, atol=1e-12)
