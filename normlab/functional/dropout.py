"""Inverted dropout with PyTorch semantics: ``p`` is the probability of dropping a unit."""

from __future__ import annotations

import numbers
from typing import NamedTuple

from normlab import backend
from normlab._random import as_generator
from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.validation import check_array, check_cache, check_dout

__all__ = ["DropoutCache", "check_dropout_p", "dropout_forward", "dropout_backward"]


class DropoutCache(NamedTuple):
    mask: object  # (shape of x) kept / (1 - p), zeros where dropped; None for the identity
    shape: tuple | None = None  # x's shape (what dout must have); None: not recorded


def check_dropout_p(owner: str, p) -> float:
    """Return ``p`` as a float if it is a number in [0, 1]; raise otherwise."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise NormlabTypeError(f"{owner}: expected p to be a float in [0, 1], got "
                        f"{type(p).__name__} {p!r}.")
    if not 0.0 <= float(p) <= 1.0:  # also rejects NaN
        raise NormlabValueError(
            f"{owner}: expected dropout probability p in [0, 1], got {p!r}. "
            "p is the probability of DROPPING a unit (PyTorch convention), not of keeping it."
        )
    return float(p)


def dropout_forward(x, p: float, training: bool, rng):
    """``out = x * mask / (1 - p)`` with ``mask ~ Bernoulli(1 - p)`` elementwise.

    The identity when not training or ``p == 0`` (``out`` is ``x`` itself); all zeros
    when ``p == 1`` (no division by zero). ``E[out] = x``.

    Parameters
    ----------
    x : ndarray, any shape
    p : float in [0, 1]
        Drop probability.
    training : bool
    rng : np.random.Generator or int
        Draws the mask. The mask is drawn on the host and then moved to ``x``'s device,
        so a CuPy input gives the same mask as a NumPy one under the same Generator.

    Shape
    -----
    out has the shape and dtype of ``x``.

    Returns
    -------
    out : ndarray
    cache : DropoutCache

    Raises
    ------
    TypeError, ValueError
        For a ``p`` that is not a number in [0, 1].
    """
    x = check_array(x, "dropout_forward", name="x", allow_empty=True)
    p = check_dropout_p("dropout_forward", p)
    if not training or p == 0.0:
        return x, DropoutCache(None, tuple(x.shape))
    xp = backend.namespace(x)
    if p == 1.0:
        mask = xp.zeros(x.shape, dtype=x.dtype)
    else:
        keep = as_generator(rng).random(tuple(x.shape)) >= p  # True with probability 1 - p
        keep = backend.to_device(keep, backend.device_of(x))
        mask = keep.astype(x.dtype) * (1.0 / (1.0 - p))
    return x * mask, DropoutCache(mask)


def dropout_backward(dout, cache: DropoutCache):
    """``dx = dout * mask / (1 - p)`` with the forward's mask (``dout`` in eval mode).

    Returns
    -------
    dx : ndarray shaped like ``dout``
    """
    mask, shape = check_cache(cache, DropoutCache, "dropout_backward")
    if mask is None:  # the identity
        shape = getattr(dout, "shape", ()) if shape is None else shape
        return check_dout(dout, shape, "dropout_backward")
    dout = check_dout(dout, mask.shape, "dropout_backward", like=mask)
    return dout * mask
