"""normlab.nn._fusion: a BatchNorm followed by a ReLU or a Sigmoid runs as one pass in
Sequential and ResNet's blocks; outputs, caches and gradients are those of the
modules run one by one, and only the library's own forwards are fused."""

from __future__ import annotations

import copy

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


def _assert_same_state(a, b):
    """Equal parameters and buffers (running statistics included) and gradients."""
    for (name, u), (_, v) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(u, v, err_msg=name)
    for m, p in zip(a.modules(), b.modules()):
        for k in m.grads:
            np.testing.assert_array_equal(m.grads[k], p.grads[k])


@pytest.fixture
def spy(monkeypatch):
    """Counts the fused forwards the containers run."""
    calls = []
    real = _fusion.bn_act

    def counted(*args, **kwargs):
        calls.append(type(args[0]).__name__)
        return real(*args, **kwargs)

    monkeypatch.setattr(_fusion, "bn_act", counted)
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


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm2d, (4, 3, 5, 5)),
                                       (nn.BatchNorm1d, (6, 3))])
def test_a_training_pair_fuses_with_the_separate_results_and_running_stats(cls, shape, rng,
                                                                           spy):
    bn = _bn(3, rng, cls).train()
    twin = copy.deepcopy(bn)
    relu = nn.ReLU()
    x = rng.standard_normal(shape).astype(np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    out = nn.Sequential(bn, relu)(x)
    dx = bn.backward(relu.backward(dout))
    assert spy == [cls.__name__]
    twin_relu = nn.ReLU()
    want = twin_relu.forward(twin.forward(x))  # each module's own forward
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(dx, twin.backward(twin_relu.backward(dout)))
    for k in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_array_equal(bn.buffers[k], twin.buffers[k])
    for k in ("weight", "bias"):
        np.testing.assert_array_equal(bn.grads[k], twin.grads[k])


def test_other_pairs_and_batch_norms_with_their_own_statistics_are_not_fused(rng, spy):
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    bn = _bn(3, rng)
    nn.Sequential(bn, nn.LeakyReLU(0.1))(x)
    nn.Sequential(nn.ReLU(), bn)(x)
    ghost = nn.GhostBatchNorm2d(3, virtual_batch_size=2)
    nn.Sequential(ghost, nn.ReLU())(x)  # training: its own (ghost) statistics
    renorm = nn.BatchRenorm2d(3)
    nn.Sequential(renorm, nn.ReLU())(x)
    assert spy == []
    nn.Sequential(ghost.eval(), nn.ReLU())(x)  # eval: the running statistics, as BN's
    assert spy == ["GhostBatchNorm2d"]


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


def test_a_forward_set_on_the_instance_runs_as_written(rng, spy):
    from normlab.lab.setups import input_of_last

    bn = _bn(3, rng)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    seen = input_of_last(nn.Sequential(bn, nn.ReLU()), nn.ReLU, x)  # spies on forward
    assert spy == []
    np.testing.assert_array_equal(seen, bn.forward(x))


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


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_resnet_blocks_fuse_both_pairs_with_the_same_bits(mode, rng, spy, monkeypatch):
    x = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    models_ = []
    for _ in range(2):
        model = models.resnet20(rng=0)
        model.train()
        model(x)  # running statistics that are not the initial ones
        models_.append(model.train(mode == "train"))
    fused_model, plain = models_
    spy.clear()
    out = fused_model(x)
    dx = fused_model.backward(np.ones_like(out))
    # stem + 9 blocks x (bn1-relu1, bn2 + shortcut - relu2)
    assert len(spy) == 1 + 9 * 2
    monkeypatch.setattr(_fusion, "fusable", lambda bn, relu: False)  # module by module
    spy.clear()
    np.testing.assert_array_equal(out, plain(x))
    np.testing.assert_array_equal(dx, plain.backward(np.ones_like(out)))
    assert spy == []
    _assert_same_state(fused_model, plain)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_lenet_fuses_its_bn_sigmoid_pairs_with_the_same_bits(mode, rng, spy, monkeypatch):
    x = rng.standard_normal((6, 1, 28, 28)).astype(np.float32)
    models_ = []
    for _ in range(2):
        model = models.LeNet(norm="batch", rng=0)
        model(x)  # training: running statistics that are not the initial ones
        models_.append(model.train(mode == "train"))
    fused_model, plain = models_
    spy.clear()
    out = fused_model(x)
    dx = fused_model.backward(np.ones_like(out))
    assert spy == ["BatchNorm2d"] * 2 + ["BatchNorm1d"] * 2
    monkeypatch.setattr(_fusion, "fusable", lambda bn, act: False)
    np.testing.assert_array_equal(out, plain(x))
    np.testing.assert_array_equal(dx, plain.backward(np.ones_like(out)))
    _assert_same_state(fused_model, plain)


def test_the_functional_op_is_the_one_composition(rng):
    bn = _bn(3, rng)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    r = rng.standard_normal(x.shape).astype(np.float32)
    out = _fusion.bn_act(bn, nn.ReLU(), x, residual=r)
    np.testing.assert_array_equal(out, F.relu_forward(bn.forward(x) + r)[0])
    out = _fusion.bn_act(bn, nn.Sigmoid(), x)
    np.testing.assert_array_equal(out, F.sigmoid_forward(bn.forward(x))[0])


@pytest.mark.parametrize("build,shape,pairs,convs", [
    # the stem's and 18 block convs' pairs (the 1x1 shortcuts' BN has no activation);
    # 21 convs in call order (stem; per block conv1, conv2, then the 1x1 shortcut where
    # there is one), of which each block's conv2 writes over its input
    (lambda: models.resnet20(rng=0), (4, 3, 16, 16), [True] * 19,
     [False] + [False, True] * 3 + ([False, True, False] + [False, True] * 2) * 2),
    # two conv pairs, then two BatchNorm1d pairs after Linear layers; pools between
    (lambda: models.LeNet(norm="batch", rng=0), (6, 1, 28, 28), [True] * 2 + [False] * 2,
     [False] * 2)])
def test_inference_overwrites_fresh_conv_outputs_with_the_same_bits(build, shape, pairs,
                                                                    convs, rng,
                                                                    monkeypatch):
    """Under no_grad a fused batch norm right after a Conv2d writes over the conv's new
    output, and a block's second conv over that: the same outputs as with every op
    writing a new array, and only where the container holds the only reference."""
    x = rng.standard_normal(shape).astype(np.float32)
    model = build()
    model(x)  # training: running statistics that are not the initial ones
    model.eval()
    bn_over, conv_over = [], []
    real_bn, real_conv = F.fused.batch_norm_eval_act_forward, nn.Conv2d._forward

    def recording_bn(x, *args, **kwargs):
        out, cache = real_bn(x, *args, **kwargs)
        bn_over.append(out is x)
        return out, cache

    def recording_conv(x, *args, **kwargs):
        out, cache = real_conv(x, *args, **kwargs)
        conv_over.append(out is x)
        return out, cache

    monkeypatch.setattr(F.fused, "batch_norm_eval_act_forward", recording_bn)
    monkeypatch.setattr(nn.Conv2d, "_forward", staticmethod(recording_conv))
    with nn.no_grad():
        out = model(x)
    assert bn_over == pairs and conv_over == convs
    fresh = _fusion.fresh_output
    for where, grad in ((lambda m: False, False), (fresh, True)):
        monkeypatch.setattr(_fusion, "fresh_output", where)
        bn_over.clear()
        conv_over.clear()
        if grad:  # with grad: caches kept, nothing overwritten
            np.testing.assert_array_equal(out, model(x))
        else:
            with nn.no_grad():
                np.testing.assert_array_equal(out, model(x))
        assert not any(bn_over + conv_over) and len(conv_over) == len(convs)


def test_a_conv_output_someone_else_holds_is_not_overwritten(rng):
    """A Conv2d subclass that keeps its output (or any forward but the library's) does not
    hand it over: the kept array is intact after the batch norm ran."""
    class Keeping(nn.Conv2d):
        def forward(self, x):
            self.kept = super().forward(x)
            return self.kept

    conv = Keeping(3, 4, 3, padding=1, rng=0)
    model = nn.Sequential(conv, _bn(4, rng), nn.ReLU()).eval()
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    with nn.no_grad():
        out = model(x)
        kept = conv.kept.copy()
        assert not _fusion.fresh_output(conv)
    np.testing.assert_array_equal(conv.kept, kept)
    assert not np.shares_memory(out, conv.kept)
    plain = nn.Conv2d(3, 4, 3, padding=1, rng=0)
    with nn.no_grad():
        assert _fusion.fresh_output(plain)
    assert not _fusion.fresh_output(plain)  # with grad: its cache holds the input
