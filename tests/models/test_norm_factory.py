"""make_norm: one factory maps norm kinds to layers."""

from functools import partial

import numpy as np
import pytest

from normlab import nn
from normlab.models import group_count, make_norm


@pytest.mark.parametrize("kind, spatial, cls", [
    ("batch", 0, "BatchNorm1d"), ("batch", 1, "BatchNorm1d"), ("batch", 2, "BatchNorm2d"),
    ("layer", 0, "LayerNorm"), ("layer", 1, "GroupNorm"), ("layer", 2, "GroupNorm"),
    ("group", 0, "GroupNorm"), ("group", 2, "GroupNorm"),
    ("instance", 1, "InstanceNorm1d"), ("instance", 2, "InstanceNorm2d"),
])
def test_kind_maps_to_layer(kind, spatial, cls):
    layer = make_norm(kind, 8, spatial, np.float64)
    assert type(layer) is getattr(nn, cls)
    assert all(p.dtype == np.float64 for p in layer.params.values())
    assert all(p.shape == (8,) for p in layer.params.values())  # affine on every kind


def test_none_gives_no_layer():
    assert make_norm(None, 8, 2) is None


def test_layer_on_maps_normalises_each_sample_over_c_h_w(rng):
    x = rng.standard_normal((3, 4, 2, 2)) * 5 + 2
    out = make_norm("layer", 4, 2, np.float64)(x)
    flat = out.reshape(3, -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(flat.var(axis=1), 1, rtol=1e-4)


@pytest.mark.parametrize("C, size, G", [(1, 2, 1), (2, 2, 1), (6, 2, 3), (16, 2, 8), (64, 2, 32),
                                         (100, 2, 25), (7, 2, 1), (100, 8, 10), (16, 8, 2),
                                         (6, 8, 1)])
def test_group_count(C, size, G):
    assert group_count(C, size) == G


@pytest.mark.parametrize("spatial, C, G", [(0, 16, 2), (0, 6, 1), (2, 16, 8), (1, 6, 3)])
def test_group_norm_group_sizes(spatial, C, G):
    assert make_norm("group", C, spatial).num_groups == G


def test_group_norm_on_vectors_keeps_information(rng):
    # Groups of one or two values map every input to the same +-1 pattern; 8 must not.
    x = rng.standard_normal((64, 16))
    out = make_norm("group", 16, 0, np.float64)(x)
    ranks = np.argsort(np.argsort(out, axis=1), axis=1)
    assert len({tuple(r) for r in ranks}) > 32


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match=r"make_norm: expected norm in .*got 'batchnorm'"):
        make_norm("batchnorm", 4, 0)


def test_bad_spatial_dims_raises():
    with pytest.raises(ValueError, match=r"make_norm: expected spatial_dims in \(0, 1, 2\), got 3"):
        make_norm("batch", 4, 3)


def test_instance_on_vectors_raises():
    with pytest.raises(ValueError, match=r"make_norm: expected \(N, C, L\) or \(N, C, H, W\) "
                                         r"features for norm='instance', got \(N, C\) vectors"):
        make_norm("instance", 4, 0)


def test_callable_makes_the_layer_in_the_models_dtype():
    layer = make_norm(partial(nn.GhostBatchNorm2d, virtual_batch_size=16), 8, 2, np.float64)
    assert type(layer) is nn.GhostBatchNorm2d and layer.virtual_batch_size == 16
    assert all(a.dtype == np.float64 for a in (*layer.params.values(),
                                                layer.buffers["running_mean"]))
    custom = make_norm(lambda C: nn.GroupNorm(2, C), 6, 0)
    assert type(custom) is nn.GroupNorm and custom.num_channels == 6


@pytest.mark.parametrize("cls, spatial, expected", [
    (nn.GhostBatchNorm2d, 0, nn.GhostBatchNorm1d), (nn.GhostBatchNorm1d, 2, nn.GhostBatchNorm2d),
    (nn.BatchRenorm2d, 1, nn.BatchRenorm1d), (nn.BatchNorm2d, 0, nn.BatchNorm1d),
    (nn.FrozenBatchNorm2d, 0, nn.FrozenBatchNorm1d), (nn.BatchNorm1d, 1, nn.BatchNorm1d),
])
def test_callable_bn_family_layer_gets_the_sibling_for_the_rank(cls, spatial, expected):
    layer = make_norm(cls, 4, spatial)
    assert type(layer) is expected


def test_callable_must_return_a_module():
    with pytest.raises(TypeError, match=r"make_norm: expected norm\(num_features\) to return a "
                                        r"normlab Module, got int"):
        make_norm(lambda C: C, 4, 2)


@pytest.mark.parametrize("name, shape, kw", [
    ("resnet20", (4, 3, 8, 8), {"base_width": 4}),
    ("mlp", (4, 12), {"input_dim": 12, "hidden_dims": (6,)}),
    ("lenet", (4, 1, 28, 28), {}),
    ("convnet", (4, 3, 8, 8), {"input_dim": (3, 8, 8), "hidden_dim": 5, "num_filters": 4}),
    ("mnist1d-mlp", (4, 40), {"hidden": 8}),
    ("mnist1d-cnn", (4, 40), {"channels": 4}),
])
def test_every_builder_takes_a_callable(name, shape, kw):
    from normlab.models import build  # noqa: PLC0415

    model = build(name, norm=partial(nn.GhostBatchNorm2d, virtual_batch_size=2), rng=0, **kw)
    norms = [m for m in model.modules() if isinstance(m, nn.NormLayer)]
    assert norms and all(isinstance(m, (nn.GhostBatchNorm1d, nn.GhostBatchNorm2d)) for m in norms)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = model(x)
    assert model.backward(np.ones_like(out)).shape == x.shape
