"""Optimizers (SGD, RMSprop, Adagrad, Adam, AdamW), param groups, clipping, LR schedules."""

from normlab.optim.adam import Adam, AdamW  # noqa: F401
from normlab.optim.optimizer import (  # noqa: F401
    Optimizer,
    state_dict_from_arrays,
    state_dict_to_arrays,
)
from normlab.optim.rmsprop import Adagrad, RMSprop  # noqa: F401
from normlab.optim.sgd import SGD  # noqa: F401
from normlab.optim.clip import clip_grad_norm  # noqa: F401
from normlab.optim.groups import is_norm_module, param_groups  # noqa: F401
from normlab.optim import lr_scheduler  # noqa: F401
from normlab.optim.lr_scheduler import (  # noqa: F401
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
    WarmupCosineLR,
)
