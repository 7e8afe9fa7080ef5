"""Registry of small module instances: the contract suite and ``normlab gradcheck`` run over it.

Every module class in ``normlab.nn`` has at least one ``ModuleCase`` here. A case
builds a fresh module from a Generator, names the input shape, the expected output
shape, an optional layer run *before* it in gradient checks (so ``dx`` flows through
a real chain) and, for losses, how to draw the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from normlab import nn

__all__ = ["ModuleCase", "CASES", "cases_by_name"]


@dataclass(frozen=True)
class ModuleCase:
    """One registered example of a module.

    ``make(rng) -> Module``; ``pre(rng) -> Module`` or None; ``target(rng) -> ndarray``
    for losses (then ``output_shape`` is ``()``); ``tol`` is the gradcheck threshold;
    ``make_input(rng, shape)`` overrides the standard-normal input.
    """

    name: str
    make: Callable[[np.random.Generator], "nn.Module"]
    input_shape: tuple
    output_shape: tuple
    pre: Callable[[np.random.Generator], "nn.Module"] | None = None
    target: Callable[[np.random.Generator], np.ndarray] | None = None
    tol: float = 1e-7
    make_input: Callable[[np.random.Generator, tuple], np.ndarray] | None = None
    stochastic: bool = False  # output depends on a module Generator (dropout)

    def input(self, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
        if self.make_input is not None:
            return self.make_input(rng, self.input_shape).astype(dtype)
        return rng.standard_normal(self.input_shape).astype(dtype)


def _linear_pre(n_in: int):
    return lambda rng: nn.Linear(n_in, n_in, rng=rng)


CASES: list[ModuleCase] = [
    ModuleCase("Linear", lambda rng: nn.Linear(5, 3, rng=rng), (4, 5), (4, 3), pre=_linear_pre(5)),
    ModuleCase("Linear(bias=False)", lambda rng: nn.Linear(5, 3, bias=False, rng=rng),
               (4, 5), (4, 3), pre=_linear_pre(5)),
    ModuleCase("Linear(3D input)", lambda rng: nn.Linear(5, 2, rng=rng), (3, 2, 5), (3, 2, 2)),
    ModuleCase("Identity", lambda rng: nn.Identity(), (3, 4), (3, 4), pre=_linear_pre(4)),
    ModuleCase("Flatten", lambda rng: nn.Flatten(), (2, 3, 2, 2), (2, 12)),
    ModuleCase("Sequential", lambda rng: nn.Sequential(nn.Linear(4, 6, rng=rng),
                                                       nn.Linear(6, 2, rng=rng)),
               (3, 4), (3, 2)),
]


def cases_by_name() -> dict[str, ModuleCase]:
    return {c.name: c for c in CASES}
