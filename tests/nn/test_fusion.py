"""normlab.nn._fusion: an eval BatchNorm followed by a ReLU runs as one pass in Sequential
and ResNet's blocks; outputs, caches and gradients are those of the modules run one by
one, and only the library's own forwards are fused."""

from __future__ import annotations

import numpy as np
import pytest

from normlab import functional as F
from normlab import models, nn
from normlab.errors import CallOrderError
from normlab.nn import _fusion


def _bn(C, rng, cls=nn.BatchNorm2d):
    bn = cls(C)
    bn.params["weight"] = rng.standard_normal(C).astype(np.float32)
    bn.params["bias"] = rng.standard_normal(C).astype(np.float32)
    bn.buffers["running_mean"] = rng.standard_normal(C).astype(np.float32)
    bn.buffers["running_var"] = rng.uniform(0.5, 2.0, C).astype(np.float32)
    return bn.eval()


@pytest.fixture
def spy(monkeypatch):
    """Counts the fused forwards the containers run."""
    calls = []
    real = _fusion.bn_relu

    def counted(*args, **kwargs):
        calls.append(type(args[0]).__name__)
        return real(*args, **kwargs)

    monkeypatch.setattr(_fusion, "bn_relu", counted)
    return calls


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm2d, (4, 3, 5, 5)),
                                       (nn.BatchNorm1d, (6, 3))])
def test_sequential_fuses_an_eval_bn_relu_pair_with_the_separate_results(cls, shape, rng,
                                                                         spy):
    bn, relu = _bn(3, rng, cls), nn.ReLU()
    model = nn.Sequential(bn, relu)
    x = rng.standard_normal(shape).astype(np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    out = model(x)
    dx = model.backward(dout)
    assert spy == [cls.__name__]
    grads = {k: bn.grads[k].copy() for k in ("weight", "bias")}
    want = relu.forward(bn.forward(x))  # each module's own forward
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(dx, bn.backward(relu.backward(dout)))
    for k in grads:
        np.testing.assert_array_equal(grads[k], bn.grads[k])


def test_training_mode_and_other_modules_are_not_fused(rng, spy):
    bn = _bn(3, rng)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    nn.Sequential(bn.train(), nn.ReLU())(x)  # batch statistics: not an affine map
    nn.Sequential(bn.eval(), nn.LeakyReLU(0.1))(x)
    nn.Sequential(nn.ReLU(), bn)(x)
    untracked = nn.BatchNorm2d(3, track_running_stats=False).eval()  # batch statistics too
    nn.Sequential(untracked, nn.ReLU())(x)
    assert spy == []


def test_a_subclass_with_its_own_forward_runs_as_written(rng, spy):
    seen = []

    class Recorder(nn.ReLU):  # e.g. to record activations
        def forward(self, x):
            seen.append(x)
            return super().forward(x)

    bn = _bn(3, rng)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    out = nn.Sequential(bn, Recorder())(x)
    assert spy == [] and len(seen) == 1
    np.testing.assert_array_equal(seen[0], bn.forward(x))
    np.testing.assert_array_equal(out, np.maximum(seen[0], 0))


def test_under_no_grad_both_modules_drop_their_caches(rng):
    bn, relu = _bn(3, rng), nn.ReLU()
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    with nn.no_grad():
        out = nn.Sequential(bn, relu)(x)
    assert bn._cache is None and relu._cache is None
    for m in (bn, relu):
        with pytest.raises(CallOrderError, match="no_grad"):
            m.backward(np.ones_like(out))


def test_a_wrong_input_gets_batch_norms_own_error(rng):
    model = nn.Sequential(_bn(3, rng), nn.ReLU())
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4D input"):
        model(rng.standard_normal((4, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="BatchNorm2d"):
        model(rng.standard_normal((4, 2, 5, 5)).astype(np.float32))


def test_resnet_blocks_fuse_both_pairs_in_eval_with_the_same_bits(rng, spy, monkeypatch):
    model = models.resnet20(rng=0)
    x = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    model.train()
    model(x)  # running statistics that are not the initial ones
    model.eval()
    spy.clear()
    out = model(x)
    dx = model.backward(np.ones_like(out))
    # stem + 9 blocks x (bn1-relu1, bn2 + shortcut - relu2)
    assert len(spy) == 1 + 9 * 2
    monkeypatch.setattr(_fusion, "fusable", lambda bn, relu: False)  # module by module
    spy.clear()
    np.testing.assert_array_equal(out, model(x))
    np.testing.assert_array_equal(dx, model.backward(np.ones_like(out)))
    assert spy == []


def test_the_functional_op_is_the_one_composition(rng):
    bn = _bn(3, rng)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    r = rng.standard_normal(x.shape).astype(np.float32)
    out = _fusion.bn_relu(bn, nn.ReLU(), x, residual=r)
    np.testing.assert_array_equal(out, F.relu_forward(bn.forward(x) + r)[0])
