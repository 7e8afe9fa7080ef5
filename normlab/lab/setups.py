"""Data, seeds and networks shared by the published-results experiments on MNIST-1D.

Every experiment of this family uses the whole MNIST-1D set (4,000 training and 1,000
test signals of length 40, ``mnist1d``'s own generator, offline), compares several arms
(no norm, BN, variants) over a few seeds, and wants the arms of one seed to differ only in
the thing being compared: same initial weights of the layers they share, same order of
training batches. ``normlab.lab.seeding`` gives each replicate one generator per purpose
(``Seeds.generator(replicate, purpose, *keys)``) for that.
"""

from __future__ import annotations

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.seeding import Seeds, seed_model

__all__ = ["mnist1d_full", "mlp", "bn_layers", "accuracy"]


def mnist1d_full():
    """``((X_train, y_train), (X_test, y_test))``: MNIST-1D's 4,000 / 1,000 split, ``(N, 1, 40)``."""
    d = load_dataset("mnist1d", seed=0, val_fraction=0.0)
    return (d.X_train, d.y_train), (d.X_test, d.y_test)


def mlp(hidden, seeds: Seeds, replicate: int, *, norm=None, activation: str = "relu",
        init: str = "default", input_dim: int = 40, num_classes: int = 10):
    """``FullyConnectedNet(hidden, ...)`` seeded for ``replicate``, ``norm`` a kind or a callable.

    A callable is called as ``norm(C)`` wherever BatchNorm1d would be. The Linear layers are
    drawn by ``seeding.seed_model`` with ``init`` (``"default"``: PyTorch's uniform;
    ``"xavier"``, ``"he"``: normal, zero bias), keyed by their position among the Linear
    layers, so every arm of a replicate starts from the same weights whatever its norm.
    """
    model = models.FullyConnectedNet(list(hidden), input_dim, num_classes, norm=norm,
                                     activation=activation,
                                     rng=seeds.generator(replicate, "build"))
    return seed_model(model, seeds, replicate, kind=init, tag="mlp")


def bn_layers(model) -> list:
    """Every module of ``model`` that keeps running statistics (``running_mean`` buffer)."""
    return [m for m in model.modules() if "running_mean" in m.buffers]


def input_of_last(model, layer_type: type, X):
    """Run ``model(X)`` and return the input the last ``layer_type`` module of ``model`` got.

    The forward is run in the model's current mode (what that does to running statistics is
    the caller's business); the spy on that module's ``forward`` is removed afterwards.
    """
    layer = [m for m in model.modules() if isinstance(m, layer_type)][-1]
    captured = {}
    real = layer.forward

    def spy(x):
        captured["x"] = x
        return real(x)

    layer.forward = spy
    try:
        model(X)
    finally:
        del layer.forward
    return captured["x"]


def accuracy(model, X, y, batch_size: int = 500) -> float:
    """Eval-mode accuracy of ``model`` on ``(X, y)`` (the mode is restored afterwards)."""
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(X), batch_size):
        correct += int((np.argmax(model(X[i:i + batch_size]), axis=1) == y[i:i + batch_size]).sum())
    model.train(was)
    return correct / len(X)
