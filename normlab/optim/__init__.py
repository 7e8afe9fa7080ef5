"""Optimizers (SGD, RMSprop, Adagrad, Adam, AdamW), param groups, clipping, LR schedules."""

from normlab.optim.adam import Adam, AdamW  # noqa: F401
from normlab.optim.optimizer import (  # noqa: F401
    Optimizer,
    state_dict_from_arrays,
    state_dict_to_arrays,
)
from normlab.optim.rmsprop import Adagrad, RMSprop  # noqa: F401
from normlab.optim.sgd import SGD  # noqa: F401
