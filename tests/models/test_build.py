"""The build(name, **kw) registry."""

import numpy as np
import pytest

from normlab import models


def test_names():
    assert models.MODELS == ("mlp", "convnet", "lenet", "resnet20", "resnet32", "resnet56",
                             "resnet18", "mnist1d-linear", "mnist1d-mlp", "mnist1d-cnn")


@pytest.mark.parametrize("name, shape, kw", [
    ("mlp", (3, 4, 4), {"hidden_dims": [8]}),
    ("convnet", (3, 8, 8), {"num_filters": 2, "filter_size": 3, "hidden_dim": 4}),
    ("lenet", (1, 28, 28), {}),
    ("resnet20", (3, 8, 8), {"base_width": 2}),
    ("resnet32", (1, 8, 8), {"base_width": 2}),
    ("resnet56", (3, 8, 8), {"base_width": 2}),
    ("resnet18", (3, 16, 16), {"base_width": 2}),
    ("mnist1d-linear", (40,), {}),
    ("mnist1d-mlp", (1, 40), {"hidden": 8}),
    ("mnist1d-cnn", (40,), {"channels": 3}),
])
def test_every_name_builds_from_an_input_shape(name, shape, kw, rng):
    net = models.build(name, input_shape=shape, num_classes=4, rng=0, **kw)
    assert net(rng.standard_normal((2, *shape)).astype(np.float32)).shape == (2, 4)


def test_keywords_are_passed_through():
    net = models.build("mlp", input_dim=6, hidden_dims=[3], norm="batch", dtype=np.float64)
    assert net.input_dim == 6 and net.norm == "batch"
    assert all(p.dtype == np.float64 for _, p, _ in net.named_parameters())


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match=r"build: expected a model name in mlp, convnet, lenet, "
                                         r".*mnist1d-cnn, got 'vgg16'"):
        models.build("vgg16")


def test_input_shape_the_model_cannot_take():
    with pytest.raises(ValueError, match=r"build: expected input_shape \(C, H, W\) for an image "
                                         r"model, got \(784,\)"):
        models.build("lenet", input_shape=(784,))
    with pytest.raises(ValueError, match=r"build: expected input_shape \(L,\) or \(1, L\) for an "
                                         r"MNIST-1D model, got \(2, 40\)"):
        models.build("mnist1d-cnn", input_shape=(2, 40))
