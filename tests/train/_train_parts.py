"""The parts the Trainer tests build (all real normlab classes) and their tiny data."""

from __future__ import annotations

import numpy as np

from normlab import nn
from normlab.data import DataLoader  # noqa: F401
from normlab.optim import SGD, StepLR  # noqa: F401

CrossEntropyLoss, ReLU, Dropout, BatchNorm1d = (nn.CrossEntropyLoss, nn.ReLU, nn.Dropout,
                                                nn.BatchNorm1d)


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
