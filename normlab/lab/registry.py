"""Registry of experiments: each is a module with ``NAME``, ``TITLE``, ``CLAIM``, a typed
``Config`` dataclass (with a ``smoke()`` classmethod), ``run(cfg, rng) -> results``,
``plot(results, out_dir) -> list[Path]`` and ``check(results) -> dict[str, bool]``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from normlab.errors import NormlabValueError

__all__ = ["EXPERIMENT_MODULES", "get_experiment", "experiment_names"]

# name -> module path (imported lazily so `normlab --help` stays fast)
EXPERIMENT_MODULES: dict[str, str] = {
    "activation-stats": "normlab.lab.experiments.activation_stats",
    "bn-vs-none": "normlab.lab.experiments.bn_vs_none",
    "weight-scale": "normlab.lab.experiments.weight_scale",
    "learning-rate": "normlab.lab.experiments.learning_rate",
    "batch-size": "normlab.lab.experiments.batch_size",
    "dropout-regularization": "normlab.lab.experiments.dropout_regularization",
    "init-training": "normlab.lab.experiments.init_training",
    "ioffe-fig1": "normlab.lab.experiments.ioffe_fig1",
    "mnist1d-benchmark": "normlab.lab.experiments.mnist1d_benchmark",
    "saturating-sigmoid": "normlab.lab.experiments.saturating_sigmoid",
    "santurkar-noise": "normlab.lab.experiments.santurkar_noise",
    "loss-landscape": "normlab.lab.experiments.loss_landscape",
    "batch-renorm-noniid": "normlab.lab.experiments.batch_renorm_noniid",
    "bn-folding": "normlab.lab.experiments.bn_folding",
    "ghost-bn": "normlab.lab.experiments.ghost_bn",
    "precise-bn": "normlab.lab.experiments.precise_bn",
}


def experiment_names() -> list[str]:
    return list(EXPERIMENT_MODULES)


def get_experiment(name: str) -> ModuleType:
    """The experiment module registered under ``name``.

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    if name not in EXPERIMENT_MODULES:
        raise NormlabValueError(
            f"normlab.lab: expected an experiment name, got {name!r}. "
            f"Known experiments: {', '.join(EXPERIMENT_MODULES)}."
        )
    return importlib.import_module(EXPERIMENT_MODULES[name])
