"""Batch transforms (augmentation) in torchvision's spirit, vectorised over the batch.

A transform is called as ``t(xb, rng) -> xb`` on a whole mini-batch ``(N, C, H, W)`` and
draws its randomness from ``rng``, the training loader's ``np.random.Generator``
(``DataLoader(..., transform=t)`` passes ``self.rng``). So the loader's ``state_dict`` and
the Trainer's replay-based resume stay bit-identical with augmentation on: the same
generator state gives the same permutation *and* the same crops and flips.

- :class:`RandomCrop` ``(size, padding=0, fill=0.0)``: zero-pad by ``padding`` on every
  side, then cut a ``size`` window at an offset drawn per sample
  (``i ~ U{0..H+2p-h}``, then ``j ~ U{0..W+2p-w}``, as torchvision's ``RandomCrop``).
- :class:`RandomHorizontalFlip` ``(p=0.5)``: mirror the last axis of each sample with
  probability ``p`` (one ``rng.random(N)`` draw).
- :class:`Normalize` ``(mean, std)``: ``(x - mean[c]) / std[c]`` per channel; no randomness.
- :class:`Compose` ``(transforms)``: apply in order.

``parse_augment("crop,flip", input_shape)`` builds the CLI's augmentation.
"""

from __future__ import annotations

import numpy as np

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab import backend

__all__ = ["RandomCrop", "RandomHorizontalFlip", "Normalize", "Compose", "parse_augment",
           "AUGMENTATIONS"]

AUGMENTATIONS = ("crop", "flip")


def _check_batch(owner: str, x, ndim: int = 4):
    if getattr(x, "ndim", None) != ndim:
        got = f"shape {tuple(x.shape)}" if hasattr(x, "shape") else type(x).__name__
        raise NormlabValueError(f"{owner}: expected a batch of shape (N, C, H, W), got {got}.")


def _pair(owner: str, name: str, v) -> tuple[int, int]:
    t = (v, v) if isinstance(v, (int, np.integer)) else \
        tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if len(t) != 2 or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                              for a in t):
        raise NormlabTypeError(f"{owner}: expected {name} an int or a pair of ints, got {v!r}.")
    return int(t[0]), int(t[1])


class RandomCrop:
    """Random ``size`` window of the zero-padded image, one offset per sample.

    Parameters
    ----------
    size : int or (int, int)
        Output ``(h, w)``.
    padding : int
        Zeros (``fill``) added on each of the four sides first.
    fill : float
        Padding value.

    Shape
    -----
    (N, C, H, W) -> (N, C, h, w); needs ``h <= H + 2 * padding`` and the same for ``w``.

    Raises
    ------
    ValueError
        Non-positive size, negative padding, a batch that is not 4-D or smaller than ``size``.
    """

    def __init__(self, size, padding: int = 0, fill: float = 0.0):
        self.size = _pair("RandomCrop", "size", size)
        if min(self.size) < 1:
            raise NormlabValueError(f"RandomCrop: expected a positive size, got {size!r}.")
        if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
            raise NormlabValueError(f"RandomCrop: expected padding an int >= 0, got {padding!r}.")
        self.padding, self.fill = int(padding), float(fill)

    def __call__(self, x, rng):
        _check_batch("RandomCrop", x)
        xp = backend.namespace(x)
        N, C, H, W = x.shape
        p, (h, w) = self.padding, self.size
        Hp, Wp = H + 2 * p, W + 2 * p
        if h > Hp or w > Wp:
            raise NormlabValueError(f"RandomCrop: expected a batch of at least {h}x{w} after padding "
                             f"{p}, got {Hp}x{Wp}.")
        top = rng.integers(0, Hp - h + 1, size=N)
        left = rng.integers(0, Wp - w + 1, size=N)
        if p:
            x = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.fill)
        rows = xp.asarray(top[:, None] + np.arange(h))  # (N, h)
        cols = xp.asarray(left[:, None] + np.arange(w))  # (N, w)
        n = xp.arange(N)[:, None, None, None]
        c = xp.arange(C)[None, :, None, None]
        return x[n, c, rows[:, None, :, None], cols[:, None, None, :]]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the width axis of each sample with probability ``p``.

    Shape
    -----
    (N, ..., W) -> same shape.
    """

    def __init__(self, p: float = 0.5):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise NormlabValueError(f"RandomHorizontalFlip: expected p in [0, 1], got {p!r}.")
        self.p = float(p)

    def __call__(self, x, rng):
        if getattr(x, "ndim", 0) < 2:
            raise NormlabValueError(f"RandomHorizontalFlip: expected a batch (N, ..., W), got "
                             f"{getattr(x, 'shape', type(x).__name__)}.")
        xp = backend.namespace(x)
        flip = xp.asarray(rng.random(x.shape[0]) < self.p)
        flip = flip.reshape((-1,) + (1,) * (x.ndim - 1))
        return xp.where(flip, x[..., ::-1], x)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel (axis 1); the dtype of ``x`` is kept.

    Raises
    ------
    ValueError
        Mean and std of different lengths, a std <= 0, or a batch whose channel count differs.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise NormlabValueError(f"Normalize: expected mean and std of the same length, got "
                             f"{self.mean.size} and {self.std.size}.")
        if np.any(self.std <= 0):
            raise NormlabValueError(f"Normalize: expected every std > 0, got {self.std.tolist()}.")

    def __call__(self, x, rng=None):
        if getattr(x, "ndim", 0) < 2 or x.shape[1] != self.mean.size:
            raise NormlabValueError(f"Normalize: expected a batch with {self.mean.size} channels on "
                             f"axis 1, got shape {tuple(getattr(x, 'shape', ()))}.")
        xp = backend.namespace(x)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = xp.asarray(self.mean.reshape(shape), dtype=x.dtype)
        std = xp.asarray(self.std.reshape(shape), dtype=x.dtype)
        return (x - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Compose:
    """Apply ``transforms`` in order, each with the same ``rng``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise NormlabTypeError(f"Compose: expected callables t(x, rng), got "
                                f"{type(t).__name__}.")

    def __call__(self, x, rng):
        for t in self.transforms:
            x = t(x, rng)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


def parse_augment(spec: str, input_shape, padding: int = 4):
    """The CLI's ``--augment``: ``"none"``, or comma-separated names from ``AUGMENTATIONS``.

    ``crop`` is ``RandomCrop((H, W), padding)`` for an ``(C, H, W)`` input; ``flip`` is
    ``RandomHorizontalFlip(0.5)``. Returns a :class:`Compose`, or None for ``"none"``.

    Raises
    ------
    ValueError
        Unknown names, or ``crop`` for an input that is not an image.
    """
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if names == ["none"] or not names:
        return None
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise NormlabValueError(f"augment: expected 'none' or names from {', '.join(AUGMENTATIONS)}, "
                         f"got {spec!r}.")
    out = []
    for n in names:
        if n == "crop":
            if len(input_shape) != 3:
                raise NormlabValueError(f"augment: expected image inputs (C, H, W) for 'crop', got "
                                 f"input shape {tuple(input_shape)}.")
            out.append(RandomCrop(tuple(input_shape[1:]), padding=padding))
        else:
            out.append(RandomHorizontalFlip(0.5))
    return Compose(out)
