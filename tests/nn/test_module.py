import numpy as np
import pytest

from normlab import nn


def test_state_dict_keys_are_dotted_and_ordered(rng):
    net = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Identity(), nn.Linear(4, 2, rng=rng))
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [n for n, _, _ in net.named_parameters()] == list(net.state_dict())


def test_load_state_dict_reports_every_bad_key(rng):
    net = nn.Sequential(nn.Linear(3, 4, rng=rng))
    bad = {"0.weight": np.zeros((4, 2)), "0.extra": np.zeros(1)}
    with pytest.raises(ValueError, match=r"missing keys \['0.bias'\].*unexpected keys "
                                         r"\['0.extra'\].*'0.weight': expected shape \(4, 3\), got \(4, 2\)"):
        net.load_state_dict(bad)


def test_load_state_dict_keeps_dtype(rng):
    m = nn.Linear(3, 2, rng=rng)
    m.load_state_dict({k: v.astype(np.float64) for k, v in m.state_dict().items()})
    assert m.params["weight"].dtype == np.float32


def test_to_casts_params_grads_and_returns_self(rng):
    m = nn.Linear(3, 2, rng=rng)
    assert m.to(dtype=np.float64) is m
    assert m.params["weight"].dtype == np.float64 and m.grads["weight"].dtype == np.float64


def test_to_rejects_bad_arguments(rng):
    m = nn.Linear(3, 2, rng=rng)
    with pytest.raises(ValueError, match="expected device 'cpu' or 'cuda', got 'tpu'"):
        m.to("tpu")
    with pytest.raises(TypeError, match="expected a floating dtype, got int32"):
        m.to(dtype=np.int32)


def test_train_eval_recurse(rng):
    net = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Sequential(nn.Identity()))
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_parameters_refs_follow_grad_replacement(rng):
    m = nn.Linear(3, 2, rng=rng)
    (w, b) = m.parameters()
    assert w.name == "weight" and b.name == "bias"
    m(rng.standard_normal((4, 3)).astype(np.float32))
    m.backward(np.ones((4, 2), np.float32))
    np.testing.assert_array_equal(w.grad, m.grads["weight"])


def test_linear_rejects_wrong_last_dim(rng):
    with pytest.raises(ValueError, match=r"Linear: expected input with last dimension 3 "
                                         r"\(in_features\), got input of shape \(2, 4\)"):
        nn.Linear(3, 2, rng=rng)(np.zeros((2, 4), np.float32))


def test_linear_rejects_bad_features():
    with pytest.raises(ValueError, match="expected in_features to be a positive int, got 0"):
        nn.Linear(0, 2)


def test_submodule_before_init_raises():
    class Bad(nn.Module):
        def __init__(self):
            self.child = nn.Identity()

    with pytest.raises(RuntimeError, match="Call super\\(\\).__init__\\(\\) first"):
        Bad()


def test_sequential_from_a_dict_keeps_names(rng):
    net = nn.Sequential({"fc": nn.Linear(3, 4, rng=rng), "act": nn.Identity()})
    assert list(net.state_dict()) == ["fc.weight", "fc.bias"]
    assert net(np.zeros((2, 3), np.float32)).shape == (2, 4)


def test_sequential_rejects_a_non_module(rng):
    with pytest.raises(TypeError, match="expected a normlab Module, got int"):
        nn.Sequential(nn.Identity(), 3)


def _net(rng):
    return nn.Sequential(nn.Linear(3, 4, rng=rng), nn.BatchNorm1d(4), nn.ReLU(),
                         nn.Linear(4, 2, rng=rng))


def test_backward_frees_every_cache_and_a_second_backward_raises(rng):
    net = _net(rng)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    out = net(x)
    assert all(m._cache is not None for m in net.modules())
    net.backward(np.ones_like(out))
    assert all(m._cache is None for m in net.modules())  # freed as PyTorch frees its graph
    with pytest.raises(RuntimeError, match=r"Sequential: expected a forward\(\) before each "
                                           r"backward\(\), got a second backward\(\) of one "
                                           r"forward pass.*normlab.nn.retain_caches\(\)"):
        net.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match=r"Linear: expected a forward\(\) before each"):
        net[3].backward(np.ones_like(out))
    net(x)  # a new forward: backward works again
    net.backward(np.ones_like(out))


def test_retain_caches_keeps_them_for_a_second_identical_backward(rng):
    net = _net(rng)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    dout = rng.standard_normal((5, 2)).astype(np.float32)
    net(x)
    with nn.retain_caches():
        dx1 = net.backward(dout)
        g1 = {k: v.copy() for k, v in net[0].grads.items()}
    assert all(m._cache is not None for m in net.modules())
    dx2 = net.backward(dout)  # outside the block: this one frees them
    np.testing.assert_array_equal(dx1, dx2)
    for k, v in g1.items():
        np.testing.assert_array_equal(v, net[0].grads[k])
    assert all(m._cache is None for m in net.modules())


def test_a_subclass_backward_calling_super_keeps_the_cache_until_it_returns(rng):
    class Scaled(nn.Linear):
        def backward(self, dout):
            dx = super().backward(dout)
            assert self._cache is not None  # the inner call must not free it
            return 2.0 * dx

    m = Scaled(3, 2, rng=rng)
    m(rng.standard_normal((4, 3)).astype(np.float32))
    m.backward(np.ones((4, 2), np.float32))
    assert m._cache is None


def test_no_grad_forward_keeps_no_cache_gives_the_same_output_and_backward_raises(rng):
    net = _net(rng).eval()
    x = rng.standard_normal((5, 3)).astype(np.float32)
    want = net(x)
    with nn.no_grad():
        got = net(x)
        assert all(m._cache is None for m in net.modules())
    np.testing.assert_array_equal(got, want)
    with pytest.raises(RuntimeError, match=r"Sequential: expected a forward\(\) outside "
                                           r"normlab.nn.no_grad\(\) before backward\(\), got "
                                           r"a forward under no_grad\(\)"):
        net.backward(np.ones_like(got))
    net(x)  # outside the block: caches again, backward works
    assert net.backward(np.ones_like(got)).shape == x.shape


def test_no_grad_drops_the_cache_only_when_the_outermost_forward_returns(rng):
    class Doubled(nn.Linear):
        def forward(self, x):
            out = super().forward(x)
            assert self._cache is not None  # the inner forward must not drop it
            return 2.0 * out

    m = Doubled(3, 2, rng=rng)
    with nn.no_grad():
        m(rng.standard_normal((4, 3)).astype(np.float32))
    assert m._cache is None


def test_a_model_pass_runs_with_blas_held_at_one_thread(threads, blas_counts):
    # normlab's threads split the work; a second BLAS thread would spin on their cores
    from threadpoolctl import threadpool_limits

    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(("forward", blas_counts()))
            return x

        def backward(self, dout):
            seen.append(("backward", blas_counts()))
            return dout

    model = nn.Sequential(nn.Linear(3, 3, rng=0), Probe())
    threads(2)
    with threadpool_limits(limits=2, user_api="blas"):  # as without set_num_threads
        model.backward(model(np.ones((2, 3))))
        after = blas_counts()
    assert [name for name, _ in seen] == ["forward", "backward"]
    assert all(c == 1 for _, counts in seen for c in counts)
    assert after and all(c == 2 for c in after)  # restored after the pass
