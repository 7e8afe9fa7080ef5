"""Shared MNIST-1D setups: the data split, seeded MLPs with a norm factory, accuracy."""

import numpy as np

from normlab import nn
from normlab.lab.noisy_bn import NoisyBatchNorm1d
from normlab.lab.seeding import Seeds
from normlab.lab.setups import accuracy, input_of_last, mlp, mnist1d_full


def test_mnist1d_full_is_the_4000_1000_split():
    (Xtr, ytr), (Xte, yte) = mnist1d_full()
    assert Xtr.shape == (4000, 1, 40) and Xte.shape == (1000, 1, 40)
    assert ytr.shape == (4000,) and yte.shape == (1000,)


def test_arms_of_one_seed_share_the_linear_weights():
    nets = [mlp([20, 20], Seeds("t", 3), 0, norm=norm, init="he")
            for norm in (None, "batch", lambda C: NoisyBatchNorm1d(C))]
    weights = [[m.params["weight"] for m in net.modules() if isinstance(m, nn.Linear)]
               for net in nets]
    for other in weights[1:]:
        for w0, w in zip(weights[0], other):
            np.testing.assert_array_equal(w0, w)
    assert sum(isinstance(m, NoisyBatchNorm1d) for m in nets[2].modules()) == 2
    assert not any(isinstance(m, nn.BatchNorm1d) and not isinstance(p, NoisyBatchNorm1d)
                   for p in nets[2].modules() for m in p.children())


def test_accuracy_restores_the_mode():
    net = mlp([8], Seeds("t"), 0, norm="batch")
    X = np.random.default_rng(0).normal(size=(30, 1, 40)).astype(np.float32)
    y = np.zeros(30, dtype=np.int64)
    acc = accuracy(net, X, y, batch_size=7)
    assert 0.0 <= acc <= 1.0 and net.training


def test_input_of_last_returns_what_the_last_layer_of_the_type_got_and_removes_the_spy():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.ReLU(), nn.Linear(4, 2, rng=rng),
                          nn.ReLU())
    X = rng.standard_normal((5, 3))
    x = input_of_last(model, nn.ReLU, X)
    W, b = model[2].params["weight"], model[2].params["bias"]
    np.testing.assert_allclose(x, np.maximum(X @ model[0].params["weight"].T
                                             + model[0].params["bias"], 0) @ W.T + b)
    assert "forward" not in vars(model[3]) and "forward" not in vars(model[1])
