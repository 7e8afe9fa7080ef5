"""Parts the Trainer tests build: the real normlab classes where this branch has them,
else the private doubles of ``_train_doubles.py`` (named ``_Fake*``)."""

from __future__ import annotations

import numpy as np

from normlab import nn

import _train_doubles as doubles

from normlab.data import DataLoader  # noqa: E402
from normlab.optim import SGD, StepLR  # noqa: E402
CrossEntropyLoss, ReLU, Dropout = nn.CrossEntropyLoss, nn.ReLU, nn.Dropout
BatchNorm1d = getattr(nn, "BatchNorm1d", doubles._FakeBatchNorm1d)


def make_data(n=50, d=8, c=3, seed=0):
    """Gaussian features with random labels: only memorisation reaches 100 %."""
    g = np.random.default_rng(seed)
    return g.standard_normal((n, d)).astype(np.float32), g.integers(0, c, n).astype(np.int64)


def make_mlp(d=8, h=32, c=3, seed=0, bn=True, dropout=0.0):
    """Linear-[BatchNorm1d]-ReLU-[Dropout]-Linear."""
    g = np.random.default_rng(seed)
    layers = [nn.Linear(d, h, rng=g)]
    if bn:
        layers.append(BatchNorm1d(h))
    layers.append(ReLU())
    if dropout:
        layers.append(Dropout(dropout, rng=np.random.default_rng(seed + 1)))
    layers.append(nn.Linear(h, c, rng=g))
    return nn.Sequential(*layers)
