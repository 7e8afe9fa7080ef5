"""Registry of small module instances: the contract suite and ``normlab gradcheck`` run over it.

Every module class in ``normlab.nn`` has at least one ``ModuleCase`` in a topic file of
``normlab/nn/cases/`` (a list named ``CASES``); this module gathers them. A case
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
    for losses (then ``output_shape`` is ``()``); ``tol`` is the gradcheck threshold and ``h``
    its difference step;
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
    h: float = 1e-5  # gradcheck step: about cbrt(float64 eps), balancing truncation and roundoff

    def input(self, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
        if self.make_input is not None:
            return self.make_input(rng, self.input_shape).astype(dtype)
        return rng.standard_normal(self.input_shape).astype(dtype)


class ElementwiseAffine(nn.Module):
    """``y = x * weight + bias`` with arrays of ``shape`` broadcast against a sample.

    A test-only pre-layer for gradient checks: ``shape`` equal to the sample shape gives
    one weight per element (needed before a norm layer, which is invariant to a
    per-channel affine map), ``(C, 1, 1)`` gives one per channel. Weights are kept in
    [0.5, 1.5] so no unit is nearly switched off.
    """

    def __init__(self, shape: tuple, rng: np.random.Generator):
        super().__init__()
        self.params["weight"] = rng.uniform(0.5, 1.5, shape)
        self.params["bias"] = 0.5 * rng.standard_normal(shape)
        self.zero_grad()

    def forward(self, x):
        self._cache = x
        return x * self.params["weight"] + self.params["bias"]

    def _reduce(self, g):
        w = self.params["weight"]
        lead = g.ndim - w.ndim
        g = g.sum(axis=tuple(range(lead)))
        axes = tuple(i for i, n in enumerate(w.shape) if n == 1 and g.shape[i] != 1)
        return g.sum(axis=axes, keepdims=True) if axes else g

    def backward(self, dout):
        x = self._require_cache()
        self.grads["weight"] = self._reduce(dout * x)
        self.grads["bias"] = self._reduce(dout)
        return dout * self.params["weight"]


def norm_case(name: str, build: Callable, input_shape: tuple, randomize: Callable,
              pre_bias: bool = True) -> ModuleCase:
    """A case for a norm layer whose pre-layer is a Linear (2D input) or an elementwise affine map.

    ``build() -> Module`` makes the layer and ``randomize(module, rng) -> Module`` draws its
    values. ``pre_bias=False`` for batch norm on (N, C): a per-feature bias before it has an
    exactly zero gradient, which a relative error cannot compare.
    """
    if len(input_shape) == 2:
        def pre(rng, n=input_shape[1]):
            return nn.Linear(n, n, bias=pre_bias, rng=rng)
    else:
        def pre(rng, shape=input_shape[1:]):
            return ElementwiseAffine(shape, rng)
    return ModuleCase(name, lambda rng: randomize(build(), rng), input_shape, input_shape,
                      pre=pre)


def _collect() -> list[ModuleCase]:
    """Gather ``CASES`` from every module of ``normlab.nn.cases`` (one file per topic)."""
    import importlib  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415

    from normlab.nn import cases  # noqa: PLC0415

    out: list[ModuleCase] = []
    for info in sorted(pkgutil.iter_modules(cases.__path__), key=lambda i: i.name):
        out.extend(importlib.import_module(f"normlab.nn.cases.{info.name}").CASES)
    return out


CASES: list[ModuleCase] = _collect()


def cases_by_name() -> dict[str, ModuleCase]:
    return {c.name: c for c in CASES}
