"""Per-purpose generators: arms of one replicate share data and the weights of shared layers."""

import os
import subprocess
import sys

import numpy as np
import pytest

from normlab import models, nn
from normlab.lab.seeding import (
    Seeds, init_shared_layers, init_std, layer_keys, seed_model, stable_int)


def test_stable_int_does_not_depend_on_the_process_hash_salt():
    code = "from normlab.lab.seeding import stable_int; print(stable_int('data'))"
    outs = set()
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, check=True).stdout.strip())
    assert outs == {str(stable_int("data"))}
    assert stable_int(7) == 7 and stable_int("a") != stable_int("b")
    assert stable_int(-1) != stable_int(1)


def test_stable_int_rejects_other_types():
    with pytest.raises(TypeError, match="normlab.lab.seeding: expected an int or a str, got float"):
        stable_int(1.5)


def test_generators_depend_only_on_their_key():
    s = Seeds("exp", 0)
    a = s.generator(1, "data", "batches").random(5)
    assert np.array_equal(a, s.generator(1, "data", "batches").random(5))
    for other in (s.generator(2, "data", "batches"), s.generator(1, "data", "subset"),
                  s.generator(1, "init", "batches"),
                  Seeds("exp", 1).generator(1, "data", "batches"),
                  Seeds("other", 0).generator(1, "data", "batches")):
        assert not np.array_equal(a, other.random(5))


def _weights(model):
    return {k: {p: v.copy() for p, v in m.params.items()} for k, m in layer_keys(model)}


@pytest.mark.parametrize("build", [
    lambda norm, rng: models.FullyConnectedNet([16, 16, 16], 20, 5, norm=norm, rng=rng),
    lambda norm, rng: models.ThreeLayerConvNet((1, 8, 8), num_filters=4, filter_size=3,
                                               hidden_dim=10, num_classes=3, norm=norm, rng=rng),
    lambda norm, rng: models.build("mnist1d-cnn", norm=norm, rng=rng),
    lambda norm, rng: models.build("mnist1d-mlp", norm=norm, rng=rng),
], ids=["mlp", "convnet", "mnist1d-cnn", "mnist1d-mlp"])
def test_bn_and_plain_arms_get_identical_shared_weights(build):
    seeds = Seeds("exp", 3)
    # different construction generators: the redraw, not the constructor, fixes the weights
    bn = seed_model(build("batch", np.random.default_rng(1)), seeds, replicate=0)
    plain = seed_model(build(None, np.random.default_rng(2)), seeds, replicate=0)
    assert any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in bn.modules())
    wb, wp = _weights(bn), _weights(plain)
    assert list(wb) == list(wp) and len(wb) >= 2
    for key in wb:
        for p in wb[key]:
            assert np.array_equal(wb[key][p], wp[key][p]), (key, p)
    other = _weights(seed_model(build(None, None), seeds, replicate=1))
    assert not np.array_equal(other[next(iter(other))]["weight"], wp[next(iter(wp))]["weight"])


def test_weight_scale_arms_differ_only_by_the_scale():
    seeds = Seeds("weight-scale", 0)
    nets = {}
    for scale, norm in ((1e-3, None), (0.5, "batch")):
        net = models.FullyConnectedNet([12, 12], 10, 3, norm=norm, rng=0)
        init_shared_layers(net, seeds, 2, kind="scale", scale=scale)
        nets[scale] = _weights(net)
    for key in nets[1e-3]:
        small, big = nets[1e-3][key]["weight"], nets[0.5][key]["weight"]
        assert small.dtype == np.float32
        np.testing.assert_allclose(big, small * 500.0, rtol=2e-6)
        assert not np.any(nets[0.5][key]["bias"])


def test_init_kinds_share_one_normal_draw():
    seeds = Seeds("init-training", 0)
    drawn = {}
    for kind in ("xavier", "he"):
        net = models.FullyConnectedNet([30], 20, 10, rng=0)
        init_shared_layers(net, seeds, 0, kind=kind)
        drawn[kind] = net[1].params["weight"] / init_std(kind, net[1].params["weight"].shape)
    np.testing.assert_allclose(drawn["xavier"], drawn["he"], rtol=1e-6)
    assert init_std("he", (30, 20)) == pytest.approx(np.sqrt(2 / 20))
    assert init_std("xavier", (4, 3, 3, 3)) == pytest.approx(np.sqrt(2 / (27 + 36)))


def test_dropout_layers_get_their_own_keyed_generators():
    seeds = Seeds("dropout", 0)
    a = seed_model(models.FullyConnectedNet([8, 8], 5, 2, norm="batch", dropout=0.5, rng=1),
                   seeds, 0)
    b = seed_model(models.FullyConnectedNet([8, 8], 5, 2, dropout=0.5, rng=2), seeds, 0)
    ga, gb = [g for _, g in a.named_generators()], [g for _, g in b.named_generators()]
    assert len(ga) == len(gb) == 2
    assert np.array_equal(ga[1].random(4), gb[1].random(4))
    assert not np.array_equal(ga[0].random(4), ga[1].random(4))


def test_init_std_errors():
    with pytest.raises(ValueError, match="expected an init in .*got 'uniform'"):
        init_std("uniform", (3, 3))
    with pytest.raises(ValueError, match="expected a scale for init 'scale', got None"):
        init_std("scale", (3, 3))
