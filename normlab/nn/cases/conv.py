"""Cases for Conv1d/2d, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool2d.

Gradient checks run with a per-channel ``ElementwiseAffine`` before the layer,
``x * a[c] + b[c]`` with its own parameters, so ``dx`` of the layer under test flows into
a real parameter gradient.
"""

from normlab import nn
from normlab.nn.catalog import ElementwiseAffine, ModuleCase

TOL = 1e-6  # conv/pool gradcheck threshold (STYLE)


def _pre(channels: int, spatial_dims: int = 2):
    """A per-channel affine map ``x * a[c] + b[c]`` before the layer under test."""
    return lambda rng: ElementwiseAffine((channels,) + (1,) * spatial_dims, rng)


CASES = [
    ModuleCase("Conv2d", lambda rng: nn.Conv2d(3, 4, 3, padding=1, rng=rng),
               (2, 3, 5, 5), (2, 4, 5, 5), pre=_pre(3), tol=TOL),
    ModuleCase("Conv2d(stride, dilation, groups, bias=False)",
               lambda rng: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                                     groups=2, bias=False, rng=rng),
               (2, 4, 6, 7), (2, 6, 3, 5), pre=_pre(4), tol=TOL),
    ModuleCase("Conv2d(1x1 pre)", lambda rng: nn.Conv2d(2, 3, 2, stride=2, rng=rng),
               (2, 2, 5, 5), (2, 3, 2, 2), pre=lambda rng: nn.Conv2d(2, 2, 1, rng=rng), tol=TOL),
    ModuleCase("Conv1d", lambda rng: nn.Conv1d(3, 4, 3, stride=2, padding=1, rng=rng),
               (2, 3, 7), (2, 4, 4), pre=_pre(3, 1), tol=TOL),
    ModuleCase("Conv1d(groups, dilation)",
               lambda rng: nn.Conv1d(4, 2, 2, dilation=2, groups=2, rng=rng),
               (2, 4, 6), (2, 2, 4), pre=_pre(4, 1), tol=TOL),
    ModuleCase("MaxPool2d", lambda rng: nn.MaxPool2d(2), (2, 3, 5, 4), (2, 3, 2, 2),
               pre=_pre(3), tol=TOL),
    ModuleCase("MaxPool2d(3, stride=2, padding=1)", lambda rng: nn.MaxPool2d(3, 2, 1),
               (2, 2, 5, 6), (2, 2, 3, 3), pre=_pre(2), tol=TOL),
    ModuleCase("MaxPool1d", lambda rng: nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 7), (2, 3, 4),
               pre=_pre(3, 1), tol=TOL),
    ModuleCase("AvgPool2d", lambda rng: nn.AvgPool2d(2), (2, 3, 5, 4), (2, 3, 2, 2),
               pre=_pre(3), tol=TOL),
    ModuleCase("AvgPool2d(3, stride=2, padding=1)", lambda rng: nn.AvgPool2d(3, 2, 1),
               (2, 2, 5, 6), (2, 2, 3, 3), pre=_pre(2), tol=TOL),
    ModuleCase("AvgPool1d", lambda rng: nn.AvgPool1d(2, stride=1), (2, 3, 5), (2, 3, 4),
               pre=_pre(3, 1), tol=TOL),
    ModuleCase("AdaptiveAvgPool2d(1)", lambda rng: nn.AdaptiveAvgPool2d(1), (2, 3, 4, 5),
               (2, 3, 1, 1), pre=_pre(3), tol=TOL),
    ModuleCase("AdaptiveAvgPool2d((2, 3))", lambda rng: nn.AdaptiveAvgPool2d((2, 3)),
               (2, 2, 5, 7), (2, 2, 2, 3), pre=_pre(2), tol=TOL),
]
