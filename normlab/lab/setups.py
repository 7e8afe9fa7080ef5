"""Data, seeds and networks shared by the published-results experiments on MNIST-1D.

Every experiment of this family uses the whole MNIST-1D set (4,000 training and 1,000
test signals of length 40, ``mnist1d``'s own generator, offline), compares several arms
(no norm, BN, variants) over a few seeds, and wants the arms of one seed to differ only in
the thing being compared: same initial weights of the layers they share, same order of
training batches. ``seed_streams`` gives each seed one generator per purpose for that.
"""

from __future__ import annotations

import numpy as np

from normlab import models
from normlab.data import load_dataset
from normlab.lab.common import reinit_linear_layers

__all__ = ["PURPOSES", "mnist1d_full", "seed_streams", "mlp", "bn_layers", "accuracy"]

PURPOSES = ("init", "data", "noise", "probe")


def mnist1d_full():
    """``((X_train, y_train), (X_test, y_test))``: MNIST-1D's 4,000 / 1,000 split, ``(N, 1, 40)``."""
    d = load_dataset("mnist1d", seed=0, val_fraction=0.0)
    return (d.X_train, d.y_train), (d.X_test, d.y_test)


def seed_streams(base: int, seed: int) -> dict[str, np.random.Generator]:
    """One fresh generator per purpose (``PURPOSES``) for replicate ``seed`` of a run.

    Built from ``SeedSequence([base, seed, purpose_index])``: calling it again for the next
    arm of the same seed gives the same streams, so arms share initial weights (of the
    layers they have in common, drawn in the same order) and batch order.
    """
    return {p: np.random.default_rng(np.random.SeedSequence([int(base), int(seed), i]))
            for i, p in enumerate(PURPOSES)}


def base_seed(rng: np.random.Generator) -> int:
    """The one number an experiment draws from the run's generator to derive its streams."""
    return int(rng.integers(2**31))


def mlp(hidden, *, norm=None, activation: str = "relu", init: str | None = None, rng=None,
        input_dim: int = 40, num_classes: int = 10):
    """``FullyConnectedNet(hidden, ...)`` with ``norm`` a kind or a callable ``C -> Module``.

    A callable is called as ``norm(C)`` wherever BatchNorm1d would be. ``init`` (``"xavier"``, ``"he"``,
    see ``common.init_weight``) redraws every Linear weight and zeroes the biases; ``None``
    keeps the layers' default (PyTorch's) initialisation.
    """
    model = models.FullyConnectedNet(list(hidden), input_dim, num_classes, norm=norm,
                                     activation=activation, rng=rng)
    if init is not None:
        reinit_linear_layers(model, init, rng)
    return model


def bn_layers(model) -> list:
    """Every module of ``model`` that keeps running statistics (``running_mean`` buffer)."""
    return [m for m in model.modules() if "running_mean" in m.buffers]


def accuracy(model, X, y, batch_size: int = 500) -> float:
    """Eval-mode accuracy of ``model`` on ``(X, y)`` (the mode is restored afterwards)."""
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(X), batch_size):
        correct += int((np.argmax(model(X[i:i + batch_size]), axis=1) == y[i:i + batch_size]).sum())
    model.train(was)
    return correct / len(X)
