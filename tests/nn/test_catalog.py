"""The case registry covers every public module class of normlab.nn (so the contract suite
and ``normlab gradcheck`` do too)."""

from __future__ import annotations

import inspect

import numpy as np

from normlab import nn
from normlab.nn.catalog import CASES

_BASES = (nn.Module, nn.NormLayer)  # abstract: nothing to run


def test_every_public_module_class_has_a_case():
    built = {type(c.make(np.random.default_rng(0))) for c in CASES}
    public = [cls for name, cls in vars(nn).items()
              if inspect.isclass(cls) and issubclass(cls, nn.Module) and cls not in _BASES
              and not name.startswith("_")]
    assert nn.GhostBatchNorm2d in public and nn.WSConv2d in public
    missing = sorted(cls.__name__ for cls in public if cls not in built)
    assert missing == []


def test_case_names_are_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
