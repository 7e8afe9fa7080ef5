"""Batch augmentation: crop/flip semantics on known arrays, determinism, loader resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from normlab.data import DataLoader
from normlab.data.transforms import (Compose, Normalize, RandomCrop, RandomHorizontalFlip,
                                     parse_augment)


def _batch(N=6, C=2, H=5, W=7):
    return np.arange(N * C * H * W, dtype=np.float32).reshape(N, C, H, W)


def test_random_crop_is_a_window_of_the_padded_image_per_sample():
    x = _batch()
    rng = np.random.default_rng(3)
    out = RandomCrop((5, 7), padding=2)(x, rng)
    assert out.shape == x.shape and out.dtype == x.dtype
    # Redraw the offsets the transform drew (same order: rows, then columns) and compare.
    rng2 = np.random.default_rng(3)
    top, left = rng2.integers(0, 5, size=6), rng2.integers(0, 5, size=6)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for n in range(6):
        np.testing.assert_array_equal(out[n], padded[n, :, top[n]:top[n] + 5,
                                                     left[n]:left[n] + 7])
    assert len({(t, l) for t, l in zip(top, left)}) > 1  # offsets differ between samples


def test_random_crop_smaller_size_and_no_padding_keeps_pixels():
    x = _batch(N=4, H=6, W=6)
    out = RandomCrop(4)(x, np.random.default_rng(0))
    assert out.shape == (4, 2, 4, 4)
    for n in range(4):  # every crop is a contiguous block of the original
        first = out[n, 0, 0, 0]
        i, j = np.argwhere(x[n, 0] == first)[0]
        np.testing.assert_array_equal(out[n], x[n, :, i:i + 4, j:j + 4])


def test_zero_padding_shows_at_extreme_offsets():
    x = np.ones((200, 1, 3, 3), np.float32)
    out = RandomCrop(3, padding=1)(x, np.random.default_rng(0))
    assert out.min() == 0.0 and out.max() == 1.0
    # A 3x3 window of a 5x5 padded image always keeps the centre pixel.
    assert np.all(out[:, 0, 1, 1] == 1.0)


def test_horizontal_flip_mirrors_exactly_the_drawn_samples():
    x = _batch(N=50)
    out = RandomHorizontalFlip(0.5)(x, np.random.default_rng(7))
    flipped = np.random.default_rng(7).random(50) < 0.5
    np.testing.assert_array_equal(out[flipped], x[flipped][..., ::-1])
    np.testing.assert_array_equal(out[~flipped], x[~flipped])
    assert 0 < flipped.sum() < 50
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(x, np.random.default_rng(0)),
                                  x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(x, np.random.default_rng(0)), x)


def test_normalize_per_channel_keeps_dtype():
    x = _batch(C=3)
    out = Normalize([1.0, 2.0, 3.0], [2.0, 4.0, 0.5])(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, 1], (x[:, 1] - 2.0) / 4.0, rtol=1e-6)
    np.testing.assert_allclose(out[:, 2], (x[:, 2] - 3.0) / 0.5, rtol=1e-6)


def test_compose_is_deterministic_under_a_seed_and_varies_with_it():
    t = Compose([RandomCrop(5, padding=2), RandomHorizontalFlip()])
    x = _batch(H=5, W=5)
    a = t(x, np.random.default_rng(1))
    b = t(x, np.random.default_rng(1))
    c = t(x, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_parse_augment():
    t = parse_augment("crop,flip", (3, 32, 32))
    assert [type(s).__name__ for s in t.transforms] == ["RandomCrop", "RandomHorizontalFlip"]
    assert t.transforms[0].size == (32, 32) and t.transforms[0].padding == 4
    assert parse_augment("none", (3, 32, 32)) is None
    with pytest.raises(ValueError, match="augment: expected 'none' or names from crop, flip, "
                                         "got 'crop,rotate'"):
        parse_augment("crop,rotate", (3, 32, 32))
    with pytest.raises(ValueError, match=r"expected image inputs \(C, H, W\) for 'crop'"):
        parse_augment("crop", (1, 40)[1:])


def test_errors():
    with pytest.raises(ValueError, match=r"RandomCrop: expected a batch of shape \(N, C, H, W\), "
                                         r"got shape \(3, 4\)"):
        RandomCrop(2)(np.zeros((3, 4)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="RandomCrop: expected a batch of at least 9x9 after "
                                         "padding 1, got 7x7"):
        RandomCrop(9, padding=1)(np.zeros((1, 1, 5, 5)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="RandomCrop: expected padding an int >= 0, got -1"):
        RandomCrop(2, padding=-1)
    with pytest.raises(TypeError, match="RandomCrop: expected size an int or a pair of ints"):
        RandomCrop(2.5)
    with pytest.raises(ValueError, match=r"RandomHorizontalFlip: expected p in \[0, 1\]"):
        RandomHorizontalFlip(1.5)
    with pytest.raises(ValueError, match="Normalize: expected every std > 0"):
        Normalize([0.0], [0.0])
    with pytest.raises(ValueError, match="Normalize: expected a batch with 2 channels"):
        Normalize([0, 0], [1, 1])(np.zeros((2, 3, 4, 4)))
    with pytest.raises(TypeError, match="DataLoader: expected transform a callable"):
        DataLoader(np.zeros((4, 1, 2, 2)), np.zeros(4), 2, transform="flip")
    with pytest.raises(TypeError, match="Compose: expected callables"):
        Compose([1])


def _epochs(loader, n):
    return [(xb.copy(), yb.copy()) for _ in range(n) for xb, yb in loader]


def test_loader_applies_the_transform_with_its_own_generator():
    X, y = _batch(N=10, H=4, W=4), np.arange(10)
    t = Compose([RandomCrop(4, padding=1), RandomHorizontalFlip()])
    aug = _epochs(DataLoader(X, y, 4, rng=5, transform=t), 2)
    plain = _epochs(DataLoader(X, y, 4, rng=5), 2)
    assert [a[1].tolist() for a in aug][:3] == [p[1].tolist() for p in plain][:3]  # same order
    assert any(not np.array_equal(a[0], p[0]) for a, p in zip(aug, plain))
    again = _epochs(DataLoader(X, y, 4, rng=5, transform=t), 2)
    for a, b in zip(aug, again):
        np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("stop_after", [1, 2, 3, 5])
def test_loader_state_resume_with_augmentation_is_bit_identical(stop_after):
    X, y = _batch(N=11, H=4, W=4), np.arange(11)
    t = Compose([RandomCrop(4, padding=1), RandomHorizontalFlip()])
    full = _epochs(DataLoader(X, y, 4, rng=9, transform=t), 3)  # 3 batches per epoch
    first = DataLoader(X, y, 4, rng=9, transform=t)
    got, it = [], iter(first)
    for _ in range(stop_after):
        try:
            xb, yb = next(it)
        except StopIteration:
            it = iter(first)
            xb, yb = next(it)
        got.append((xb.copy(), yb.copy()))
    state = json.loads(json.dumps(first.state_dict()))
    second = DataLoader(X, y, 4, rng=123, transform=t)
    second.load_state_dict(state)
    while len(got) < len(full):
        got += _epochs(second, 1)
    for (xa, ya), (xb, yb) in zip(full, got[:len(full)]):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
