"""Dropout module (PyTorch semantics: ``p`` is the drop probability, inverted scaling)."""

from __future__ import annotations

from normlab import functional as F
from normlab._random import as_generator
from normlab.functional.dropout import check_dropout_p
from normlab.nn.activation import check_not_inplace
from normlab.nn.module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zeroes each element with probability ``p`` in training and scales the rest by ``1/(1-p)``.

    ``out = x * Bernoulli(1 - p) / (1 - p)``; the identity in eval mode.

    Parameters
    ----------
    p : float in [0, 1], default 0.5
        Probability of dropping an element.
    inplace : bool, default False
        Accepted for PyTorch compatibility; only ``False`` is allowed.
    rng : np.random.Generator or int, optional
        Draws the masks; kept as ``self.rng`` so that checkpoints can save its state
        (``Module.named_generators``).

    Shape
    -----
    input (*) -> output (*), same dtype.

    Raises
    ------
    TypeError
        For a non-numeric ``p``.
    ValueError
        For ``p`` outside [0, 1] or ``inplace=True``.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, rng=None):
        super().__init__()
        self.p = check_dropout_p("Dropout", p)
        check_not_inplace("Dropout", inplace)
        self.inplace = False
        self.rng = as_generator(rng)

    def forward(self, x):
        out, self._cache = F.dropout_forward(x, self.p, self.training, self.rng)
        return out

    def backward(self, dout):
        return F.dropout_backward(dout, self._require_cache())

    def extra_repr(self) -> str:
        return f"p={self.p}"
