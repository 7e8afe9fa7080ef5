"""Seeds that pair the arms of an experiment: one independent generator per purpose.

A replicate seed fixes, on its own and whatever else the experiment runs, every random
choice of that replicate. Each choice draws from its own ``np.random.Generator``, derived
with ``np.random.SeedSequence`` from the tuple

    (experiment name, base seed, replicate, purpose, *keys)

(strings hashed with SHA-256, never Python's salted ``hash``), not from a position in a
shared stream. So adding an arm or a grid point changes no other arm's result, and the
arms of one replicate see the same data and the same initial weights.

Purposes the experiments use (any string works; these are the conventions):

``"data"``
    the training subset (key ``"subset"``), the batch order (key ``"batches"``) and
    synthetic inputs (key ``"inputs"``); shared by every arm of a replicate.
``"init"``
    the initial weights of each layer, keyed by :func:`layer_keys` (the layer's position
    among the model's Linear/Conv layers, which norm layers do not shift), so a BN arm and
    a plain arm get identical Linear/Conv weights; see :func:`init_shared_layers`.
``"dropout"``
    the dropout masks, keyed like ``"init"`` by the Dropout layer's position.
``"build"``
    whatever a model constructor draws before the weights are redrawn (thrown away).

Example::

    seeds = Seeds("bn-vs-none", base_seed=0)
    rng = seeds.generator(replicate=1, purpose="data", key="batches")
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Seeds", "stable_int", "layer_keys", "init_shared_layers", "seed_dropout", "seed_model",
           "INIT_KINDS", "init_std"]

INIT_KINDS = ("zeros", "small", "normal", "xavier", "he")


def stable_int(value: int | str) -> int:
    """A non-negative integer for ``value``: a non-negative int is kept, a string (or a
    negative int, through its decimal text) becomes the first 8 bytes of its SHA-256.

    The result is the same in every process and on every machine (Python's ``hash`` of a
    string is salted per process).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, str)):
        raise TypeError(f"normlab.lab.seeding: expected an int or a str, got "
                        f"{type(value).__name__}.")
    if not isinstance(value, str) and value >= 0:
        return int(value)
    return int.from_bytes(hashlib.sha256(str(value).encode("utf-8")).digest()[:8], "little")


@dataclass(frozen=True)
class Seeds:
    """The seeds of one experiment run: ``Seeds(experiment, base_seed)``.

    ``generator(replicate, purpose, key...)`` returns a fresh Generator that depends only on
    its arguments (and the two fields): asking twice gives two generators with identical
    streams, which is how every arm of a replicate gets the same batches.
    """

    experiment: str
    base_seed: int = 0

    def sequence(self, replicate: int, purpose: str, *keys) -> np.random.SeedSequence:
        entropy = [stable_int(self.experiment), stable_int(int(self.base_seed)),
                   stable_int(int(replicate)), stable_int(purpose)]
        entropy += [stable_int(k) for k in keys]
        return np.random.SeedSequence(entropy)

    def generator(self, replicate: int, purpose: str, *keys) -> np.random.Generator:
        """A new ``np.random.Generator`` (PCG64) for ``(replicate, purpose, *keys)``."""
        return np.random.default_rng(self.sequence(replicate, purpose, *keys))


def _is_weight_layer(m) -> bool:
    from normlab import nn  # noqa: PLC0415

    return isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))


def layer_keys(model, select=None) -> list[tuple[str, object]]:
    """``(key, module)`` for the model's Linear/Conv layers (or those ``select(m)`` picks).

    The key is ``"{i}:{ClassName}"`` with ``i`` the layer's position among the selected
    layers in ``named_modules`` order. Norm layers are not selected, so inserting them (a
    BN arm) does not change the keys of the layers around them, while the dotted names of
    an ``nn.Sequential`` would shift.
    """
    select = select or _is_weight_layer
    picked = [m for _, m in model.named_modules() if select(m)]
    return [(f"{i}:{type(m).__name__}", m) for i, m in enumerate(picked)]


def _fans(shape) -> tuple[int, int]:
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def init_std(kind: str, shape, scale: float | None = None) -> float:
    """Standard deviation of the normal init ``kind`` for a weight of ``shape``.

    ``zeros`` 0, ``small`` 0.01, ``normal`` 1, ``xavier`` sqrt(2 / (fan_in + fan_out)),
    ``he`` sqrt(2 / fan_in) (Kaiming normal, ReLU gain), ``scale`` the given ``scale``.
    """
    fan_in, fan_out = _fans(shape)
    table = {"zeros": 0.0, "small": 0.01, "normal": 1.0,
             "xavier": math.sqrt(2.0 / (fan_in + fan_out)), "he": math.sqrt(2.0 / fan_in)}
    if kind == "scale":
        if scale is None:
            raise ValueError("normlab.lab.seeding: expected a scale for init 'scale', got None.")
        return float(scale)
    if kind not in table:
        raise ValueError(f"normlab.lab.seeding: expected an init in {INIT_KINDS + ('scale',)}, "
                         f"got {kind!r}.")
    return table[kind]


def init_shared_layers(model, seeds: Seeds, replicate: int, kind: str = "default",
                       scale: float | None = None, tag: str = "") -> list[str]:
    """Redraw every Linear/Conv weight (and bias) of ``model`` from its own keyed generator.

    ``kind="default"`` draws PyTorch's ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weight
    and bias. Any other kind (see :func:`init_std`) draws ``weight = std * z`` with ``z``
    standard normal and zeros the bias, so arms that differ in the init scheme or scale
    share the same ``z``: they differ *only* by the scale. ``tag`` separates models of
    different architecture within one experiment. Returns the keys used.
    """
    from normlab.init import pytorch_default_uniform  # noqa: PLC0415

    keys = []
    for key, m in layer_keys(model):
        g = seeds.generator(replicate, "init", tag, key)
        w = m.params["weight"]
        if kind == "default":
            fan_in = _fans(w.shape)[0]
            m.params["weight"] = pytorch_default_uniform(w.shape, fan_in, g, w.dtype)
            if m.params.get("bias") is not None:
                b = m.params["bias"]
                m.params["bias"] = pytorch_default_uniform(b.shape, fan_in, g, b.dtype)
        else:
            std = init_std(kind, w.shape, scale)
            m.params["weight"] = (std * g.standard_normal(w.shape)).astype(w.dtype)
            if m.params.get("bias") is not None:
                m.params["bias"] = np.zeros_like(m.params["bias"])
        keys.append(key)
    return keys


def seed_dropout(model, seeds: Seeds, replicate: int, tag: str = "") -> None:
    """Give every Dropout layer its own generator, keyed by its position among them."""
    from normlab import nn  # noqa: PLC0415

    for key, m in layer_keys(model, select=lambda m: isinstance(m, nn.Dropout)):
        m.rng = seeds.generator(replicate, "dropout", tag, key)


def seed_model(model, seeds: Seeds, replicate: int, kind: str = "default",
               scale: float | None = None, tag: str = ""):
    """:func:`init_shared_layers` then :func:`seed_dropout`; returns ``model``."""
    init_shared_layers(model, seeds, replicate, kind, scale, tag)
    seed_dropout(model, seeds, replicate, tag)
    return model
