"""Cases for activations (ReLU, LeakyReLU, Tanh, Sigmoid), losses and Dropout."""

import numpy as np

from normlab import nn
from normlab.nn.catalog import ModuleCase


def _linear_pre(n_in: int):
    return lambda rng: nn.Linear(n_in, n_in, rng=rng)


def _labels(n: int, c: int):
    return lambda rng: rng.integers(0, c, size=n)


def _regression_target(shape):
    return lambda rng: rng.standard_normal(shape).astype(np.float32)


# Losses are checked with difference step 1e-5: their output is one scalar, so the
# roundoff noise eps * |loss| / h lands on every gradient entry, and at h=1e-6 it swamps
# entries near 1e-3 (about 15% of seeds failed at 1e-7); central-difference truncation
# at 1e-5 is ~1e-11, and every loss passes on 40 seeds out of 40 (p=2 margin: 39).
LOSS_H = 1e-5


CASES = [
    ModuleCase("ReLU", lambda rng: nn.ReLU(), (4, 5), (4, 5), pre=_linear_pre(5)),
    ModuleCase("LeakyReLU", lambda rng: nn.LeakyReLU(0.1), (4, 5), (4, 5), pre=_linear_pre(5)),
    ModuleCase("Tanh", lambda rng: nn.Tanh(), (4, 5), (4, 5), pre=_linear_pre(5)),
    ModuleCase("Sigmoid", lambda rng: nn.Sigmoid(), (4, 5), (4, 5), pre=_linear_pre(5)),
    ModuleCase("ReLU(3D input)", lambda rng: nn.ReLU(), (2, 3, 4), (2, 3, 4)),
    ModuleCase("CrossEntropyLoss", lambda rng: nn.CrossEntropyLoss(), (4, 5), (),
               pre=_linear_pre(5), target=_labels(4, 5), h=LOSS_H),
    ModuleCase("CrossEntropyLoss(sum)", lambda rng: nn.CrossEntropyLoss(reduction="sum"),
               (4, 5), (), pre=_linear_pre(5), target=_labels(4, 5), h=LOSS_H),
    # p=1: every input gradient is a multiple of 1/(N*C), so a pre-bias gradient
    # (a column sum) can be exactly 0 and its rel_error is then pure difference noise
    ModuleCase("MultiMarginLoss", lambda rng: nn.MultiMarginLoss(), (4, 5), (),
               pre=lambda rng: nn.Linear(5, 5, bias=False, rng=rng), target=_labels(4, 5),
               h=LOSS_H),
    ModuleCase("MultiMarginLoss(p=2)", lambda rng: nn.MultiMarginLoss(p=2, margin=0.5),
               (4, 5), (), pre=_linear_pre(5), target=_labels(4, 5), h=LOSS_H),
    ModuleCase("MSELoss", lambda rng: nn.MSELoss(), (4, 5), (), pre=_linear_pre(5),
               target=_regression_target((4, 5)), h=LOSS_H),
    ModuleCase("Dropout", lambda rng: nn.Dropout(0.5, rng=rng), (4, 5), (4, 5),
               pre=_linear_pre(5), stochastic=True),
    ModuleCase("Dropout(p=1)", lambda rng: nn.Dropout(1.0, rng=rng), (4, 5), (4, 5),
               pre=_linear_pre(5), stochastic=True),
]
