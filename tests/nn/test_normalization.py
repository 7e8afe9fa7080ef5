"""LayerNorm, GroupNorm, InstanceNorm1d/2d/3d, RMSNorm: PyTorch parity, buffers, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normlab import nn

# name: (normlab module, torch module, input shape); constructor args are identical.
MODULES = {
    "LayerNorm(5)": (lambda: nn.LayerNorm(5), lambda: torch.nn.LayerNorm(5), (4, 5)),
    "LayerNorm((3, 4))": (lambda: nn.LayerNorm((3, 4)), lambda: torch.nn.LayerNorm((3, 4)),
                          (2, 3, 4)),
    "LayerNorm(bias=False)": (lambda: nn.LayerNorm(4, bias=False),
                              lambda: torch.nn.LayerNorm(4, bias=False), (2, 3, 4)),
    "LayerNorm(no affine, eps)": (lambda: nn.LayerNorm([2, 3], 1e-3, False),
                                  lambda: torch.nn.LayerNorm([2, 3], 1e-3, False),
                                  (2, 4, 2, 3)),
    "GroupNorm(2, 4)": (lambda: nn.GroupNorm(2, 4), lambda: torch.nn.GroupNorm(2, 4),
                        (3, 4, 3, 2)),
    "GroupNorm(3, 6) 2D": (lambda: nn.GroupNorm(3, 6), lambda: torch.nn.GroupNorm(3, 6), (4, 6)),
    "GroupNorm(1, 2) 5D": (lambda: nn.GroupNorm(1, 2), lambda: torch.nn.GroupNorm(1, 2),
                           (2, 2, 2, 2, 3)),
    "GroupNorm(affine=False)": (lambda: nn.GroupNorm(2, 4, affine=False),
                                lambda: torch.nn.GroupNorm(2, 4, affine=False), (2, 4, 5)),
    "GroupNorm(bias=False)": (lambda: nn.GroupNorm(2, 4, bias=False),
                              lambda: torch.nn.GroupNorm(2, 4, bias=False), (2, 4, 5)),
    "InstanceNorm1d": (lambda: nn.InstanceNorm1d(3), lambda: torch.nn.InstanceNorm1d(3),
                       (2, 3, 5)),
    "InstanceNorm1d unbatched": (lambda: nn.InstanceNorm1d(3, affine=True),
                                 lambda: torch.nn.InstanceNorm1d(3, affine=True), (3, 5)),
    "InstanceNorm1d(track)": (lambda: nn.InstanceNorm1d(3, track_running_stats=True),
                              lambda: torch.nn.InstanceNorm1d(3, track_running_stats=True),
                              (4, 3, 5)),
    "InstanceNorm2d(affine, track, momentum=0.3)": (
        lambda: nn.InstanceNorm2d(2, momentum=0.3, affine=True, track_running_stats=True),
        lambda: torch.nn.InstanceNorm2d(2, momentum=0.3, affine=True,
                                        track_running_stats=True), (3, 2, 3, 2)),
    "InstanceNorm2d(track, momentum=None)": (
        lambda: nn.InstanceNorm2d(2, momentum=None, track_running_stats=True),
        lambda: torch.nn.InstanceNorm2d(2, momentum=None, track_running_stats=True),
        (3, 2, 2, 2)),
    "InstanceNorm2d unbatched(track)": (
        lambda: nn.InstanceNorm2d(2, affine=True, track_running_stats=True),
        lambda: torch.nn.InstanceNorm2d(2, affine=True, track_running_stats=True), (2, 3, 3)),
    "InstanceNorm2d(bias=False)": (lambda: nn.InstanceNorm2d(2, affine=True, bias=False),
                                   lambda: torch.nn.InstanceNorm2d(2, affine=True, bias=False),
                                   (2, 2, 3, 3)),
    "InstanceNorm3d": (lambda: nn.InstanceNorm3d(2), lambda: torch.nn.InstanceNorm3d(2),
                       (2, 2, 3, 2, 2)),
    "InstanceNorm3d unbatched(affine)": (lambda: nn.InstanceNorm3d(2, affine=True),
                                         lambda: torch.nn.InstanceNorm3d(2, affine=True),
                                         (2, 2, 3, 2)),
    "InstanceNorm3d(affine, track, momentum=0.2)": (
        lambda: nn.InstanceNorm3d(3, momentum=0.2, affine=True, track_running_stats=True),
        lambda: torch.nn.InstanceNorm3d(3, momentum=0.2, affine=True, track_running_stats=True),
        (2, 3, 2, 3, 2)),
    "InstanceNorm3d(track, momentum=None)": (
        lambda: nn.InstanceNorm3d(2, momentum=None, track_running_stats=True),
        lambda: torch.nn.InstanceNorm3d(2, momentum=None, track_running_stats=True),
        (3, 2, 2, 2, 2)),
    "RMSNorm(5)": (lambda: nn.RMSNorm(5), lambda: torch.nn.RMSNorm(5), (4, 5)),
    "RMSNorm((3, 4), eps)": (lambda: nn.RMSNorm((3, 4), eps=1e-3),
                             lambda: torch.nn.RMSNorm((3, 4), eps=1e-3), (2, 3, 4)),
    "RMSNorm(no affine)": (lambda: nn.RMSNorm(4, elementwise_affine=False),
                           lambda: torch.nn.RMSNorm(4, elementwise_affine=False), (3, 2, 4)),
}


def _close(ours, theirs):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("name", list(MODULES))
def test_matches_torch_over_training_steps_then_eval(rng, name):
    """Outputs, dx, parameter grads and buffers after 3 training steps, then one eval step
    (buffers must stay bit for bit)."""
    make_ours, make_theirs, shape = MODULES[name]
    ours, theirs = make_ours().to(dtype=np.float64), make_theirs().double()
    for key, p in ours.params.items():
        ours.params[key] = p + rng.standard_normal(p.shape)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v))
                            for k, v in ours.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for step in range(4):
        training = step < 3
        ours.train(training)
        theirs.train(training)
        before = {k: v.copy() for k, v in ours.buffers.items()}
        x = 2.0 * rng.standard_normal(shape) + 0.5 * step
        dout = rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        for p in theirs.parameters():
            p.grad = None
        ot = theirs(xt)
        ot.backward(torch.tensor(dout))
        _close(ours(x), ot)
        _close(ours.backward(dout), xt.grad)
        theirs_params = dict(theirs.named_parameters())
        assert set(ours.grads) == set(theirs_params)
        for key, g in ours.grads.items():
            _close(g, theirs_params[key].grad)
        for key, v in theirs.state_dict().items():
            _close(ours.state_dict()[key], v)
        if not training:
            for key, v in before.items():
                np.testing.assert_array_equal(ours.buffers[key], v)


@pytest.mark.parametrize("name", list(MODULES))
def test_state_dict_matches_torch_at_construction(name):
    make_ours, make_theirs, _ = MODULES[name]
    ours, theirs = make_ours(), make_theirs()
    assert list(ours.params) == [n for n, _ in theirs.named_parameters()]
    for key, t in theirs.state_dict().items():
        v = ours.state_dict()[key]
        np.testing.assert_array_equal(v, t.numpy())
        assert v.dtype == (np.int64 if key == "num_batches_tracked" else np.float32)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_hyperparameters_stored_like_torch():
    assert nn.LayerNorm(4).normalized_shape == torch.nn.LayerNorm(4).normalized_shape == (4,)
    assert nn.RMSNorm([2, 3]).normalized_shape == (2, 3) and nn.RMSNorm(3).eps is None
    gn = nn.GroupNorm(2, 4)
    assert (gn.num_groups, gn.num_channels, gn.eps, gn.affine) == (2, 4, 1e-5, True)
    inorm = nn.InstanceNorm2d(3)
    assert (inorm.affine, inorm.track_running_stats, inorm.momentum) == (False, False, 0.1)


@pytest.mark.parametrize("name", list(MODULES))
def test_float32_in_float32_out(rng, name):
    m = MODULES[name][0]()
    x = rng.standard_normal(MODULES[name][2]).astype(np.float32)
    out = m(x)
    assert out.dtype == np.float32 and m.backward(np.ones_like(out)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in m.grads.values())


def test_instance_norm_eval_without_running_stats_uses_input_stats(rng):
    m = nn.InstanceNorm1d(2).eval().to(dtype=np.float64)
    x = rng.standard_normal((3, 2, 6)) * 3 + 1
    expected = (x - x.mean(2, keepdims=True)) / np.sqrt(x.var(2, keepdims=True) + 1e-5)
    np.testing.assert_allclose(m(x), expected, rtol=1e-12)


def test_instance_norm_channel_mismatch_without_arrays_warns_like_torch(rng):
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"InstanceNorm1d: input has 4 channels but "
                                         r"num_features=3; num_features is unused"):
        assert nn.InstanceNorm1d(3)(x).shape == x.shape


# ------------------------------------------------------------------ errors
def _f32(shape):
    return np.zeros(shape, dtype=np.float32)


@pytest.mark.parametrize("make,shape,msg", [
    (lambda: nn.LayerNorm((3, 4)), (2, 4, 3), r"LayerNorm: expected input of shape \(\*, 3, 4\) "
                                              r"ending in normalized_shape=\(3, 4\), got input "
                                              r"of shape \(2, 4, 3\)"),
    (lambda: nn.LayerNorm(4), (3,), r"LayerNorm: expected input of shape \(\*, 4\).*got input "
                                    r"of shape \(3,\)"),
    (lambda: nn.RMSNorm(4), (2, 5), r"RMSNorm: expected input of shape \(\*, 4\) ending in "
                                    r"normalized_shape=\(4,\), got input of shape \(2, 5\)"),
    (lambda: nn.GroupNorm(2, 4), (2, 6), r"GroupNorm: expected input \(N, C, \*\) with C=4 "
                                         r"channels \(num_channels\), got input of shape "
                                         r"\(2, 6\)"),
    (lambda: nn.GroupNorm(2, 4), (4,), r"GroupNorm: expected input \(N, C, \*\).*\(4,\)"),
    (lambda: nn.InstanceNorm1d(3), (2, 3, 4, 5), r"InstanceNorm1d: expected 2D \(unbatched\) or "
                                                 r"3D input \(N, C, L\), got 4D input of shape "
                                                 r"\(2, 3, 4, 5\)"),
    (lambda: nn.InstanceNorm2d(3), (2, 3), r"InstanceNorm2d: expected 3D \(unbatched\) or 4D "
                                           r"input \(N, C, H, W\), got 2D input"),
    (lambda: nn.InstanceNorm2d(3, affine=True), (2, 4, 3, 3),
     r"InstanceNorm2d: expected input with 3 channels \(num_features\) at dim 1, got input "
     r"of shape \(2, 4, 3, 3\)"),
    (lambda: nn.InstanceNorm3d(3), (2, 3, 4), r"InstanceNorm3d: expected 4D \(unbatched\) or "
                                              r"5D input \(N, C, D, H, W\), got 3D input"),
    (lambda: nn.InstanceNorm3d(3), (2, 3, 1, 1, 1), r"InstanceNorm3d: expected more than 1 "
                                                    r"spatial element when training"),
    (lambda: nn.InstanceNorm1d(3), (2, 3, 1), r"InstanceNorm1d: expected more than 1 spatial "
                                              r"element when training, got input shape "
                                              r"\(2, 3, 1\)"),
    (lambda: nn.InstanceNorm1d(3), (3, 1), r"expected more than 1 spatial element when "
                                           r"training, got input shape \(3, 1\)"),
])
def test_bad_input_raises(make, shape, msg):
    with pytest.raises(ValueError, match=msg):
        make()(_f32(shape))


@pytest.mark.parametrize("make,exc,msg", [
    (lambda: nn.GroupNorm(3, 4), ValueError, r"GroupNorm: expected num_channels divisible by "
                                             r"num_groups, got num_channels=4, num_groups=3\. "
                                             r"Pick a divisor of 4"),
    (lambda: nn.GroupNorm(0, 4), ValueError, r"GroupNorm: expected num_groups to be a positive "
                                             r"int, got 0"),
    (lambda: nn.GroupNorm(2, 4, eps=0.0), ValueError, r"GroupNorm: expected eps > 0"),
    (lambda: nn.LayerNorm(0), ValueError, r"LayerNorm: expected normalized_shape to be a "
                                          r"positive int or a non-empty tuple of positive ints, "
                                          r"got 0"),
    (lambda: nn.LayerNorm(()), ValueError, r"LayerNorm: expected normalized_shape .*got \(\)"),
    (lambda: nn.LayerNorm("4"), ValueError, r"LayerNorm: expected normalized_shape .*got '4'"),
    (lambda: nn.LayerNorm(4, eps=-1.0), ValueError, r"LayerNorm: expected eps > 0, got "
                                                    r"eps=-1\.0"),
    (lambda: nn.RMSNorm(4, eps=0.0), ValueError, r"RMSNorm: expected eps > 0, got eps=0\.0"),
    (lambda: nn.RMSNorm(4, eps="x"), TypeError, r"RMSNorm: expected eps to be a float, got str"),
    (lambda: nn.RMSNorm([2, -1]), ValueError, r"RMSNorm: expected normalized_shape .*got "
                                              r"\[2, -1\]"),
    (lambda: nn.InstanceNorm1d(3, momentum=2.0), ValueError, r"InstanceNorm1d: expected "
                                                             r"momentum in \[0, 1\]"),
    (lambda: nn.InstanceNorm2d(0), ValueError, r"InstanceNorm2d: expected num_features to be "
                                               r"a positive int, got 0"),
])
def test_bad_hyperparameters_rejected_at_construction(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


@pytest.mark.parametrize("cls", [nn.LayerNorm, nn.RMSNorm])
def test_integer_input_rejected(cls):
    with pytest.raises(TypeError, match=rf"{cls.__name__}: expected a floating-point array, "
                                        r"got int32"):
        cls(3)(np.zeros((2, 3), dtype=np.int32))


def test_group_norm_integer_input_rejected():
    with pytest.raises(TypeError, match=r"GroupNorm: expected a floating-point array, got "
                                        r"int32"):
        nn.GroupNorm(1, 3)(np.zeros((2, 3), dtype=np.int32))
