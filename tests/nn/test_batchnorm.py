"""BatchNorm1d/2d/3d: PyTorch parity (outputs, grads, buffers), modes, buffers, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normlab import nn

KINDS = {
    "1d-2D": (nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)),
    "1d-3D": (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
    "2d": (nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 3, 4, 2)),
    "3d": (nn.BatchNorm3d, torch.nn.BatchNorm3d, (2, 3, 2, 3, 2)),
}
OPTIONS = {
    "default": {},
    "affine=False": {"affine": False},
    "track_running_stats=False": {"track_running_stats": False},
    "momentum=None": {"momentum": None},
    "momentum=0.3,eps=1e-3": {"momentum": 0.3, "eps": 1e-3},
    "bias=False": {"bias": False},
}


@pytest.fixture
def bn_path(kernel_setting):
    """The compiled numba kernels (numba is a dependency) and the reference xp path."""
    return kernel_setting


def _close(ours, theirs):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-7, atol=1e-12)


def run_torch_parity(ours, theirs, shape, rng, steps=3):
    """3 training steps then an eval step on the same float64 data; every array compared.

    Checks outputs, dx, every parameter gradient and every buffer (state_dict) after each
    step, and that eval leaves normlab's buffers bit for bit unchanged.
    """
    ours.to(dtype=np.float64)
    theirs.double()
    for key, p in ours.params.items():  # random params so gamma bugs show
        ours.params[key] = p + rng.standard_normal(p.shape)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            ours.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for step in range(steps + 1):
        training = step < steps
        ours.train(training)
        theirs.train(training)
        before = {k: v.copy() for k, v in ours.buffers.items()}
        x = 2.0 * rng.standard_normal(shape) + 0.7 * step
        dout = rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        for p in theirs.parameters():
            p.grad = None
        ot = theirs(xt)
        ot.backward(torch.tensor(dout))
        out = ours(x)
        dx = ours.backward(dout)
        _close(out, ot)
        _close(dx, xt.grad)
        theirs_params = dict(theirs.named_parameters())
        assert set(ours.grads) == set(theirs_params)
        for key, g in ours.grads.items():
            _close(g, theirs_params[key].grad)
        theirs_state = theirs.state_dict()
        for key, v in ours.state_dict().items():
            if key == "num_batches_tracked":
                assert int(v) == int(theirs_state[key]) and v.dtype == np.int64
            else:
                _close(v, theirs_state[key])
        if not training:
            for key, v in before.items():
                np.testing.assert_array_equal(ours.buffers[key], v)


@pytest.mark.parametrize("options", list(OPTIONS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_matches_torch_over_training_steps_then_eval(rng, kind, options, bn_path):
    ours_cls, theirs_cls, shape = KINDS[kind]
    kw = OPTIONS[options]
    run_torch_parity(ours_cls(3, **kw), theirs_cls(3, **kw), shape, rng)


@pytest.mark.parametrize("kw", [{}, {"affine": False}, {"track_running_stats": False},
                                {"bias": False}, {"affine": False, "track_running_stats": False}])
def test_params_buffers_and_state_dict_keys_match_torch(kw):
    ours, theirs = nn.BatchNorm2d(4, **kw), torch.nn.BatchNorm2d(4, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.params) == [n for n, _ in theirs.named_parameters()]
    for key, t in theirs.state_dict().items():
        v = ours.state_dict()[key]
        assert v.shape == tuple(t.shape)
        np.testing.assert_array_equal(v, t.numpy())
        assert v.dtype == (np.int64 if key == "num_batches_tracked" else np.float32)


def test_float32_in_float32_out_and_float32_buffers(rng, bn_path):
    m = nn.BatchNorm2d(3)
    x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    out = m(x)
    dx = m.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32
    assert m.buffers["running_mean"].dtype == m.buffers["running_var"].dtype == np.float32
    assert m.grads["weight"].dtype == np.float32
    assert m.buffers["num_batches_tracked"].shape == () and \
        m.buffers["num_batches_tracked"].dtype == np.int64


def test_eval_normalises_with_buffers_only_and_never_changes_them(rng):
    m = nn.BatchNorm1d(3)
    for _ in range(3):
        m(rng.standard_normal((8, 3)).astype(np.float32) * 3 + 1)
    m.eval()
    before = {k: v.copy() for k, v in m.buffers.items()}
    x = rng.standard_normal((5, 3)).astype(np.float32)
    out = m(x)
    m.backward(np.ones_like(out))
    for k, v in before.items():
        np.testing.assert_array_equal(m.buffers[k], v)
    rm, rv = before["running_mean"], before["running_var"]
    np.testing.assert_allclose(out, (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-5, atol=1e-6)
    # each sample is normalised independently of the rest of the batch
    np.testing.assert_array_equal(m(x[:1]), out[:1])


def test_track_running_stats_false_uses_batch_stats_in_eval(rng):
    m = nn.BatchNorm1d(3, track_running_stats=False, affine=False)
    assert m.buffers == {}
    m.eval()
    x = rng.standard_normal((6, 3)) * 4 + 2
    out = m.to(dtype=np.float64)(x)
    np.testing.assert_allclose(out, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-12)


def test_affine_false_has_no_params(rng):
    m = nn.BatchNorm2d(3, affine=False)
    assert m.params == {} and m.grads == {}
    out = m(rng.standard_normal((2, 3, 2, 2)).astype(np.float32))
    m.backward(np.ones_like(out))
    assert m.grads == {}


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (2, 3, 0)])
def test_empty_batch_matches_torch(shape, bn_path):
    ours, theirs = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    x = np.zeros(shape, dtype=np.float32)
    xt = torch.zeros(shape, requires_grad=True)
    ot = theirs(xt)
    ot.sum().backward()
    out = ours(x)
    dx = ours.backward(np.ones_like(out))
    assert out.shape == tuple(ot.shape) and dx.shape == tuple(xt.grad.shape)
    for key, v in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], v.numpy())
    np.testing.assert_array_equal(ours.grads["weight"], theirs.weight.grad.numpy())
    ours.eval()
    assert ours(x).shape == shape


def test_reset_running_stats(rng):
    m = nn.BatchNorm1d(2)
    m(rng.standard_normal((4, 2)).astype(np.float32))
    m.reset_running_stats()
    np.testing.assert_array_equal(m.buffers["running_mean"], np.zeros(2))
    np.testing.assert_array_equal(m.buffers["running_var"], np.ones(2))
    assert int(m.buffers["num_batches_tracked"]) == 0


def test_repr_and_hyperparameters_stored_verbatim():
    m = nn.BatchNorm2d(8, eps=1e-3, momentum=None)
    assert (m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats) == \
        (8, 1e-3, None, True, True)
    assert repr(m) == ("BatchNorm2d(8, eps=0.001, momentum=None, affine=True, "
                       "track_running_stats=True)")


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("cls,shape,msg", [
    (nn.BatchNorm2d, (32, 10), r"BatchNorm2d: expected 4D input \(N, C, H, W\), got 2D input "
                               r"of shape \(32, 10\)\. Use BatchNorm1d for \(N, C\) input\."),
    (nn.BatchNorm1d, (2, 3, 4, 5), r"BatchNorm1d: expected 2D or 3D input \(N, C\) or "
                                   r"\(N, C, L\), got 4D input of shape \(2, 3, 4, 5\)\. Use "
                                   r"BatchNorm2d for \(N, C, H, W\) input\."),
    (nn.BatchNorm3d, (2, 3, 4, 5), r"BatchNorm3d: expected 5D input \(N, C, D, H, W\), got 4D "
                                   r"input of shape \(2, 3, 4, 5\)\. Use BatchNorm2d"),
    (nn.BatchNorm2d, (2, 3, 4, 5, 6), r"Use BatchNorm3d for \(N, C, D, H, W\) input\."),
    (nn.BatchNorm1d, (3,), r"BatchNorm1d: expected 2D or 3D input .*, got 1D input of shape "
                           r"\(3,\)\.$"),
])
def test_wrong_rank_names_the_right_class(cls, shape, msg):
    with pytest.raises(ValueError, match=msg):
        cls(3)(np.zeros(shape, dtype=np.float32))


def test_channel_mismatch():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected input with 3 channels "
                                         r"\(num_features\) at dim 1, got input of shape "
                                         r"\(2, 4, 5, 5\)\. Build the layer with "
                                         r"num_features=4"):
        nn.BatchNorm2d(3)(np.zeros((2, 4, 5, 5), dtype=np.float32))


@pytest.mark.parametrize("kw", [{}, {"track_running_stats": False}])
@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1)])
def test_one_value_per_channel_in_training_raises(kw, shape):
    m = nn.BatchNorm1d(3, **kw)
    if kw:  # without running stats eval uses batch statistics too, as in torch
        m.eval()
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected more than 1 value per channel "
                                         r"when training, got input shape \(1, 3(, 1)?\)"):
        m(np.zeros(shape, dtype=np.float32))


def test_one_value_per_channel_is_fine_in_eval_with_running_stats():
    out = nn.BatchNorm1d(3).eval()(np.ones((1, 3), dtype=np.float32))
    np.testing.assert_allclose(out, np.ones((1, 3)) / np.sqrt(1 + 1e-5), rtol=1e-6)


@pytest.mark.parametrize("kw,exc,msg", [
    ({"momentum": 1.5}, ValueError, r"BatchNorm1d: expected momentum in \[0, 1\] \(the weight "
                                    r"of the new batch statistic\) or None .*got momentum=1\.5"),
    ({"momentum": -0.1}, ValueError, r"got momentum=-0\.1\. PyTorch's default is 0\.1"),
    ({"momentum": "0.1"}, TypeError, r"BatchNorm1d: expected momentum to be a float in "
                                     r"\[0, 1\] or None, got str"),
    ({"momentum": True}, TypeError, r"expected momentum to be a float in \[0, 1\] or None, "
                                    r"got bool"),
    ({"eps": 0.0}, ValueError, r"BatchNorm1d: expected eps > 0, got eps=0\.0"),
    ({"eps": -1e-5}, ValueError, r"expected eps > 0, got eps=-1e-05"),
    ({"eps": None}, TypeError, r"BatchNorm1d: expected eps to be a float, got NoneType"),
    ({"num_features": 0}, ValueError, r"BatchNorm1d: expected num_features to be a positive "
                                      r"int, got 0"),
    ({"num_features": 2.0}, ValueError, r"expected num_features to be a positive int, got 2\.0"),
])
def test_bad_hyperparameters_rejected_at_construction(kw, exc, msg):
    kw = {"num_features": 3, **kw}
    with pytest.raises(exc, match=msg):
        nn.BatchNorm1d(**kw)


def test_integer_input_rejected():
    with pytest.raises(TypeError, match=r"BatchNorm1d: expected a floating-point array, got "
                                        r"int64\. Cast it with x\.astype\(np\.float32\)"):
        nn.BatchNorm1d(3)(np.zeros((4, 3), dtype=np.int64))
