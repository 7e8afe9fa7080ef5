"""Training: Trainer, History, callbacks, progress bar, crash-safe checkpoints."""

from normlab.train.callbacks import BestModel, Callback, EarlyStopping  # noqa: F401
from normlab.train.data_parallel import DataParallelTrainer  # noqa: F401
from normlab.train.checkpoint import load_checkpoint, save_checkpoint  # noqa: F401
from normlab.train.history import History  # noqa: F401
from normlab.train.numerics import DivergenceError  # noqa: F401
from normlab.train.precise_bn import update_bn_stats  # noqa: F401
from normlab.train.trainer import Trainer  # noqa: F401

__all__ = ["Trainer", "DataParallelTrainer", "History", "Callback", "EarlyStopping", "BestModel",
           "DivergenceError", "save_checkpoint", "load_checkpoint", "update_bn_stats"]
