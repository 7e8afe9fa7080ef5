"""``load_data_fashion_mnist(batch_size, resize=None)`` over normlab's local IDX reader.

The book downloads Fashion-MNIST through its framework. normlab never downloads: the four
IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, plain or ``.gz``, from
https://github.com/zalandoresearch/fashion-mnist) go in one folder, ``root`` (default
``$NORMLAB_DATA/fashion-mnist``, ``$NORMLAB_DATA`` defaulting to ``~/data``), as for
``normlab.data.load_dataset("fashion-mnist", root=...)``. A missing folder or file raises
``FileNotFoundError`` naming the folder and the four expected files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from normlab.errors import NormlabValueError
from normlab._random import as_generator
from normlab.data import DataLoader
from normlab.data.datasets import data_root
from normlab.data.files import read_idx_folder

__all__ = ["load_data_fashion_mnist", "resize_bilinear", "ResizingLoader"]


def _sizes(resize) -> tuple[int, int]:
    sizes = (resize, resize) if isinstance(resize, (int, np.integer)) else tuple(resize)
    if len(sizes) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                  and s > 0 for s in sizes):
        raise NormlabValueError(
            f"load_data_fashion_mnist: expected resize None, a positive int or (height, "
            f"width), got {resize!r}."
        )
    return int(sizes[0]), int(sizes[1])


def _taps(n_in: int, n_out: int):
    """Source rows (low, high) and weight of high for half-pixel-centred linear resampling."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, src - lo


def resize_bilinear(X, size):
    """Bilinear resampling of (N, C, H, W) images to ``size = (OH, OW)``.

    Pixel centres are aligned (``align_corners=False``), no antialiasing: what
    ``torch.nn.functional.interpolate(X, size, mode="bilinear")`` computes. When enlarging (the
    book's ``resize=96`` and ``224``) that is also what torchvision's ``Resize`` does.

    Shape
    -----
    (N, C, H, W) -> (N, C, OH, OW), dtype kept.
    """
    OH, OW = size
    H, W = X.shape[-2:]
    r0, r1, wr = _taps(H, OH)
    c0, c1, wc = _taps(W, OW)
    wr = wr.astype(X.dtype)[:, None]  # (OH, 1)
    wc = wc.astype(X.dtype)
    rows = X[..., r0, :] * (1 - wr) + X[..., r1, :] * wr  # (N, C, OH, W)
    return rows[..., c0] * (1 - wc) + rows[..., c1] * wc


class ResizingLoader:
    """Wraps a loader and resizes each batch as it is drawn (the full set resized at once
    would not fit: 60000 images of 96x96 float32 are 2.2 GB)."""

    def __init__(self, loader, size):
        self.loader, self.size = loader, size

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for X, y in self.loader:
            yield resize_bilinear(X, self.size), y


def load_data_fashion_mnist(batch_size: int, resize=None, root=None, *, rng=None):
    """Fashion-MNIST as the book's ``(train_iter, test_iter)``.

    Images are float32 in ``[0, 1]`` (the book's ``ToTensor``), shape (N, 1, 28, 28) or
    resized; labels int64. The training loader reshuffles every epoch, the test loader does
    not shuffle. All 60000 training images are used (no validation split, as in the book).

    Parameters
    ----------
    batch_size : int
    resize : None, int or (height, width)
        Bilinear resize of every batch (see :func:`resize_bilinear`).
    root : path, optional
        Folder with the four IDX files; default ``$NORMLAB_DATA/fashion-mnist``.
    rng : None, int or np.random.Generator
        Shuffling randomness of the training loader.

    Returns
    -------
    train_iter, test_iter : re-iterable loaders of ``(X, y)`` batches

    Raises
    ------
    FileNotFoundError
        If the folder or one of the four files is missing (the message names them).
    ValueError
        For a bad ``resize``.
    """
    size = None if resize is None else _sizes(resize)
    root = data_root() / "fashion-mnist" if root is None else Path(root).expanduser()
    a = read_idx_folder(root, "fashion-mnist")

    def feats(images):
        return (images.astype(np.float32) / 255.0)[:, None]  # (N, 1, 28, 28)

    rng = as_generator(rng)
    train = DataLoader(feats(a["x_train"]), a["y_train"], batch_size, shuffle=True, rng=rng)
    test = DataLoader(feats(a["x_test"]), a["y_test"], batch_size, shuffle=False)
    if size is not None:
        train, test = ResizingLoader(train, size), ResizingLoader(test, size)
    return train, test
