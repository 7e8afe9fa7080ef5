"""The course's ``cs231n.vis_utils``: tile a batch of images into one picture.

``visualize_grid`` is what the ConvolutionalNetworks notebook's "Visualize Filters" cell calls
on the first-layer weights, ``grid = visualize_grid(model.params['W1'].transpose(0, 2, 3, 1))``,
then ``plt.imshow(grid.astype('uint8'))``. Layout and scaling follow the course:

- ``visualize_grid``: ``G = ceil(sqrt(N))`` tiles per side, ``padding`` zero pixels between
  tiles (none around them), each image min-max scaled to ``[0, ubound]`` on its own; unused
  tiles stay 0.
- ``vis_grid``: the same square layout with a one-pixel gap after every tile (rows and columns
  ``G * (H + 1)``), gaps filled with the smallest input value, then the whole grid scaled
  to ``[0, 1]`` at once.
- ``vis_nn``: a list of rows of images, laid out as given, one-pixel gaps (filled with 1 before
  scaling, as the course does), the whole grid scaled to ``[0, 1]``.

Difference from the course: an image (or grid) with a single value everywhere would divide
0 by 0 there and give NaN; here it maps to 0.
"""

from __future__ import annotations

import math

import numpy as np
from normlab.errors import NormlabValueError

__all__ = ["visualize_grid", "vis_grid", "vis_nn"]


def _check_images(owner: str, Xs) -> np.ndarray:
    Xs = np.asarray(Xs)
    if Xs.ndim != 4 or Xs.shape[0] == 0:
        raise NormlabValueError(
            f"{owner}: expected a non-empty 4D array of images (N, H, W, C), got shape "
            f"{Xs.shape}. Conv weights (F, C, HH, WW) go in as W.transpose(0, 2, 3, 1)."
        )
    return Xs


def _scale(a, low, high, ubound):
    """``ubound * (a - low) / (high - low)``, and 0 where ``high == low`` (no 0/0 NaN)."""
    span = high - low
    safe = np.where(span > 0, span, 1.0)
    return np.where(span > 0, ubound * (a - low) / safe, 0.0)


def _tile(tiles, rows: int, cols: int, gap: int, lead: bool, fill) -> np.ndarray:
    """Place ``tiles`` (N, H, W, C) row-major into a ``rows x cols`` grid.

    ``gap`` pixels separate tiles; with ``lead=False`` there is no gap after the last row and
    column (visualize_grid), with ``lead=True`` a gap follows every tile (vis_grid, vis_nn).
    """
    N, H, W, C = tiles.shape
    extra = rows if lead else rows - 1
    extra_w = cols if lead else cols - 1
    grid = np.full((rows * H + extra * gap, cols * W + extra_w * gap, C), fill,
                   dtype=tiles.dtype)
    for n in range(N):
        r, c = divmod(n, cols)
        y, x = r * (H + gap), c * (W + gap)
        grid[y:y + H, x:x + W] = tiles[n]
    return grid


def visualize_grid(Xs, ubound=255.0, padding=1):
    """Tile images into a square grid, each scaled on its own to ``[0, ubound]``.

    Parameters
    ----------
    Xs : ndarray, shape (N, H, W, C)
    ubound : float
        Upper end of every tile's range.
    padding : int
        Zero pixels between neighbouring tiles.

    Shape
    -----
    (N, H, W, C) -> (G*H + (G-1)*padding, G*W + (G-1)*padding, C), ``G = ceil(sqrt(N))``.

    Returns
    -------
    grid : float64 ndarray with values in ``[0, ubound]``

    Raises
    ------
    ValueError
        For input that is not a non-empty 4D array, or a negative padding.
    """
    Xs = _check_images("visualize_grid", Xs)
    if int(padding) != padding or padding < 0:
        raise NormlabValueError(f"visualize_grid: expected padding a non-negative int, got {padding!r}.")
    N = Xs.shape[0]
    G = int(math.ceil(math.sqrt(N)))
    flat = Xs.reshape(N, -1).astype(np.float64)
    low = flat.min(axis=1).reshape(N, 1, 1, 1)
    high = flat.max(axis=1).reshape(N, 1, 1, 1)
    tiles = _scale(Xs.astype(np.float64), low, high, float(ubound))
    return _tile(tiles, G, G, int(padding), lead=False, fill=0.0)


def vis_grid(Xs):
    """Tile images into a square grid with one-pixel gaps, scaled jointly to ``[0, 1]``.

    Shape
    -----
    (N, H, W, C) -> (G * (H + 1), G * (W + 1), C), ``G = ceil(sqrt N)``.

    Returns
    -------
    grid : ndarray, float dtype of ``Xs`` (float64 for integer input)
    """
    Xs = _check_images("vis_grid", Xs)
    N = Xs.shape[0]
    A = int(math.ceil(math.sqrt(N)))
    dtype = Xs.dtype if np.issubdtype(Xs.dtype, np.floating) else np.float64
    grid = _tile(Xs.astype(dtype), A, A, 1, lead=True, fill=Xs.min())
    return _scale(grid, grid.min(), grid.max(), 1.0).astype(dtype)


def vis_nn(rows):
    """Lay out a list of rows of (H, W, C) images as given, scaled jointly to ``[0, 1]``.

    Parameters
    ----------
    rows : sequence of sequences of ndarray (H, W, C)
        ``rows[y][x]`` goes to grid row ``y``, column ``x``; every row as long as the first.

    Shape
    -----
    R rows of D images (H, W, C) -> (R * (H + 1), D * (W + 1), C).

    Raises
    ------
    ValueError
        For ragged rows or images of different shapes.
    """
    R = len(rows)
    D = len(rows[0]) if R else 0
    if R == 0 or D == 0 or any(len(r) != D for r in rows):
        raise NormlabValueError(
            f"vis_nn: expected a non-empty list of equally long rows of images, got row "
            f"lengths {[len(r) for r in rows]}."
        )
    first = np.asarray(rows[0][0])
    shapes = {np.shape(img) for r in rows for img in r}
    if first.ndim != 3 or len(shapes) != 1:
        raise NormlabValueError(
            f"vis_nn: expected images of one shape (H, W, C), got shapes {sorted(shapes)}."
        )
    dtype = first.dtype if np.issubdtype(first.dtype, np.floating) else np.float64
    tiles = np.stack([np.asarray(img, dtype=dtype) for r in rows for img in r])
    grid = _tile(tiles, R, D, 1, lead=True, fill=1.0)
    return _scale(grid, grid.min(), grid.max(), 1.0).astype(dtype)
