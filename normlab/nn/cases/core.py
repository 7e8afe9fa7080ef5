"""Cases for Linear, Identity, Flatten, Sequential."""

from normlab import nn
from normlab.nn.catalog import ModuleCase


def _linear_pre(n_in: int):
    return lambda rng: nn.Linear(n_in, n_in, rng=rng)


CASES = [
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
