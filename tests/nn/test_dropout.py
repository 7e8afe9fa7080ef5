"""Dropout module: validation, generator ownership, train/eval behaviour, checkpoints."""

import copy

import numpy as np
import pytest
import torch

from normlab import nn


def test_keeps_its_generator_and_named_generators_finds_it():
    g = np.random.default_rng(0)
    d = nn.Dropout(0.2, rng=g)
    assert d.rng is g
    model = nn.Sequential(nn.Linear(3, 3, rng=1), nn.Dropout(0.5, rng=2))
    names = [name for name, _ in model.named_generators()]
    assert names == ["1"]


def test_seeded_modules_draw_the_same_masks_and_advance():
    x = np.ones((4, 6))
    a, b = nn.Dropout(0.5, rng=7), nn.Dropout(0.5, rng=7)
    first = a(x)
    np.testing.assert_array_equal(first, b(x))
    assert not np.array_equal(first, a(x))  # the Generator advances between calls


def test_restoring_the_generator_state_replays_the_mask():
    d = nn.Dropout(0.5, rng=3)
    state = copy.deepcopy(d.rng.bit_generator.state)
    first = d(np.ones(50))
    d.rng.bit_generator.state = state
    np.testing.assert_array_equal(d(np.ones(50)), first)


def test_eval_is_identity_and_train_drops(rng):
    d = nn.Dropout(0.5, rng=0)
    x = rng.standard_normal((10, 10))
    out = d(x)
    assert np.any(out == 0)
    np.testing.assert_array_equal(out[out != 0], x[out != 0] * 2.0)
    d.eval()
    np.testing.assert_array_equal(d(x), x)
    np.testing.assert_array_equal(d.backward(np.ones_like(x)), np.ones_like(x))


def test_backward_reuses_the_forward_mask(rng):
    d = nn.Dropout(0.3, rng=1)
    x = rng.standard_normal((8, 8))
    out = d(x)
    dx = d.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx == 0, out == 0)
    np.testing.assert_allclose(dx[out != 0], 1.0 / 0.7, rtol=1e-15)


def test_matches_torch_scaling_given_the_same_mask(rng):
    """Same mask in both: the kept values and gradients equal torch's native dropout rule."""
    d = nn.Dropout(0.25, rng=2)
    x = rng.standard_normal((5, 6))
    out = d(x)
    mask = torch.tensor((out != 0).astype(np.float64))
    xt = torch.tensor(x, requires_grad=True)
    yt = xt * mask / (1 - 0.25)
    dout = rng.standard_normal((5, 6))
    yt.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-7, atol=0)
    np.testing.assert_allclose(d.backward(dout), xt.grad.numpy(), rtol=1e-7, atol=0)


def test_p_one_gives_zeros():
    d = nn.Dropout(1.0, rng=0)
    out = d(np.ones((3, 3), dtype=np.float32))
    assert out.dtype == np.float32 and not np.any(out)
    assert not np.any(d.backward(np.ones((3, 3), dtype=np.float32)))


def test_validation():
    with pytest.raises(ValueError, match=r"Dropout: expected dropout probability p in \[0, 1\], "
                                         r"got 1\.2"):
        nn.Dropout(1.2)
    with pytest.raises(TypeError, match=r"Dropout: expected p to be a float in \[0, 1\], got "
                                        r"NoneType None"):
        nn.Dropout(None)
    with pytest.raises(ValueError, match=r"Dropout: expected inplace=False, got inplace=True"):
        nn.Dropout(0.5, inplace=True)
    with pytest.raises(TypeError, match=r"as_generator: expected None, an int seed or a "
                                        r"np\.random\.Generator"):
        nn.Dropout(0.5, rng=np.random.RandomState(0))


def test_repr_and_no_state():
    d = nn.Dropout(0.1)
    assert repr(d) == "Dropout(p=0.1)" and d.state_dict() == {}
