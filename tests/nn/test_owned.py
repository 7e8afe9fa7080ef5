"""normlab.nn._owned: containers hand a gradient over to the next child where nothing else
holds it; the results are the bits of a backward that writes every gradient into a new
array, and no array that someone else holds is written."""

from __future__ import annotations

import numpy as np
import pytest

from normlab import functional as F
from normlab import models, nn
from normlab.nn import _owned


@pytest.fixture
def overwrites(monkeypatch):
    """Records, per call, whether an activation's (ReLU's, Sigmoid's) and Conv2d's backward
    wrote over their dout."""
    calls = {"act": [], "conv": []}
    real_relu, real_sigmoid, real_conv = F.relu_backward, F.sigmoid_backward, nn.Conv2d._backward

    def recording(real):
        def backward(dout, cache, overwrite_dout=False):
            dx = real(dout, cache, overwrite_dout=overwrite_dout)
            calls["act"].append(dx is dout)
            return dx
        return backward

    def conv_backward(dout, cache, need_dx=True, overwrite_dout=False):
        grads = real_conv(dout, cache, need_dx, overwrite_dout=overwrite_dout)
        calls["conv"].append(grads[0] is dout)
        return grads

    monkeypatch.setattr(F, "relu_backward", recording(real_relu))
    monkeypatch.setattr(F, "sigmoid_backward", recording(real_sigmoid))
    monkeypatch.setattr(nn.Conv2d, "_backward", staticmethod(conv_backward))
    return calls


def _step(model, x, dout):
    """Forward and backward of a training step: ``(dx, gradients)``."""
    model.train()
    model(x)
    dx = model.backward(dout)
    return dx, [g.copy() for _, _, g in model.named_parameters()]


@pytest.mark.parametrize("build,shape", [
    (lambda: models.resnet20(base_width=16, rng=0), (3, 3, 8, 8)),
    (lambda: models.LeNet(norm="batch", rng=0), (4, 1, 28, 28)),
    (lambda: models.ThreeLayerConvNet(rng=0), (2, 3, 32, 32)),
], ids=["resnet20", "lenet", "convnet"])
def test_handed_over_gradients_give_the_same_bits(build, shape, rng, overwrites,
                                                  monkeypatch):
    """A training backward with handovers (ReLUs and Sigmoids in place, the Winograd convs'
    dx over their dout) against one with none: the same bits, the caller's dout intact."""
    from normlab.functional import _winograd

    old = _winograd.use_winograd(True)  # the test-sized ResNet's 16-channel convs
    try:
        model = build()
        x = rng.standard_normal(shape).astype(np.float32)
        out = model(x)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        keep = dout.copy()
        got = _step(model, x, dout)
        act, conv = list(overwrites["act"]), list(overwrites["conv"])
        real = _owned.backward
        monkeypatch.setattr(_owned, "backward", lambda m, d, owned: real(m, d, False))
        overwrites["act"].clear(), overwrites["conv"].clear()
        want = _step(model, x, dout)
        assert not any(overwrites["act"]) and not any(overwrites["conv"])
    finally:
        _winograd.use_winograd(old)
    np.testing.assert_array_equal(dout, keep)
    for a, b in zip([got[0]] + got[1], [want[0]] + want[1]):
        np.testing.assert_array_equal(a, b)
    # every activation's dout is a new gradient from the layer after it (conv, pool, linear)
    assert act and all(act)
    if isinstance(model, models.ResNet):
        # the stride-1 convs with as many in as out channels: all 6 of layer1, 5 of the 7
        # in layers 2 and 3 (not the stride-2 conv and the projection), not the stem
        assert conv.count(True) == 6 + 5 + 5 and len(conv) == 1 + 6 + 7 + 7


class Recording(nn.ReLU):
    """A ReLU that keeps the gradient it was given (its own backward: handed nothing)."""

    def backward(self, dout):
        self.seen = dout
        self.seen_copy = dout.copy()
        return super().backward(dout)


class KeepingIdentity(nn.Module):
    """Returns its input and the gradient unchanged, and keeps the gradient."""

    def forward(self, x):
        self._cache = True
        return x

    def backward(self, dout):
        self._require_cache()
        self.kept = dout
        self.kept_copy = dout.copy()
        return dout


def test_an_array_someone_else_holds_is_not_written(rng):
    """A subclass that overrides backward is handed nothing (a ReLU after it still writes
    its own new array), and the gradient a module keeps and returns is not owned."""
    spy, keep = Recording(), KeepingIdentity()
    model = nn.Sequential(nn.Linear(5, 6, rng=0), spy, nn.Linear(6, 6, rng=1), nn.ReLU(),
                          keep, nn.Linear(6, 3, rng=2))
    x = rng.standard_normal((4, 5)).astype(np.float32)
    model(x)
    model.backward(rng.standard_normal((4, 3)).astype(np.float32))
    np.testing.assert_array_equal(spy.seen, spy.seen_copy)
    np.testing.assert_array_equal(keep.kept, keep.kept_copy)
    assert not _owned.fresh(spy) and not _owned.fresh(keep)
    assert _owned.fresh(nn.ReLU()) and _owned.fresh(model)


def test_a_flatten_view_of_a_new_gradient_is_handed_on(rng, overwrites):
    """Flatten returns a view of its dout: owned when its dout was (Linear's new dx), so
    the ReLU before it writes in place; a Sequential hands over what it is handed."""
    model = nn.Sequential(nn.Conv2d(2, 3, 3, rng=0), nn.ReLU(), nn.Flatten(),
                          nn.Linear(12, 2, rng=1))
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    model(x)
    model.backward(np.ones((2, 2), dtype=np.float32))
    assert overwrites["act"] == [True]
    inner = nn.Sequential(nn.ReLU())
    y = rng.standard_normal((3, 4)).astype(np.float32)
    inner(y)
    dout = rng.standard_normal((3, 4)).astype(np.float32)
    want = inner.backward(dout.copy())
    inner(y)
    got = inner.backward(dout, overwrite_dout=True)
    assert got is dout and overwrites["act"][1:] == [False, True]
    np.testing.assert_array_equal(got, want)


def test_requires_dx_false_still_hands_over_inside(rng, overwrites):
    """A chain that skips its input gradient still hands its inner gradients over."""
    model = models.LeNet(norm="batch", rng=0).set_requires_dx(False)
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    model(x)
    assert model.backward(np.ones((2, 10), dtype=np.float32)) is None
    assert len(overwrites["act"]) == 4 and all(overwrites["act"])  # LeNet's 4 Sigmoids
