"""Activation pairs: PyTorch parity, gradient checks through a linear layer, closed forms."""

import numpy as np
import pytest
import torch

import normlab
from normlab import backend
from normlab import functional as F
from normlab.gradcheck import numerical_gradient, rel_error

# every test here runs on the reference code and on the compiled kernels
pytestmark = pytest.mark.usefixtures("kernel_setting")

PAIRS = {
    "relu": (F.relu_forward, F.relu_backward, torch.relu, {}),
    "leaky_relu": (F.leaky_relu_forward, F.leaky_relu_backward,
                   lambda t: torch.nn.functional.leaky_relu(t, 0.2), {"negative_slope": 0.2}),
    "leaky_relu_default": (F.leaky_relu_forward, F.leaky_relu_backward,
                           torch.nn.functional.leaky_relu, {}),
    "tanh": (F.tanh_forward, F.tanh_backward, torch.tanh, {}),
    "sigmoid": (F.sigmoid_forward, F.sigmoid_backward, torch.sigmoid, {}),
}


@pytest.fixture(params=list(PAIRS), ids=list(PAIRS))
def pair(request):
    return PAIRS[request.param]


def test_torch_parity_forward_and_backward(pair, rng):
    fwd, bwd, ref, hyper = pair
    x = rng.standard_normal((6, 7)) * 3.0
    x[0, :3] = 0.0  # the kink: ReLU's subgradient at 0 must be PyTorch's (0)
    dout = rng.standard_normal((6, 7))
    out, cache = fwd(x, **hyper)
    dx = bwd(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    yt.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-7, atol=0)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=0)


def test_gradcheck_after_a_linear_layer(pair, rng):
    fwd, bwd, _, hyper = pair
    x = rng.standard_normal((4, 5))
    w = rng.standard_normal((6, 5))
    b = rng.standard_normal(6)
    dout = rng.standard_normal((4, 6))

    def f(xin):
        return fwd(F.linear_forward(xin, w, b)[0], **hyper)[0]

    h, lin_cache = F.linear_forward(x, w, b)
    _, cache = fwd(h, **hyper)
    dx, _, _ = F.linear_backward(bwd(dout, cache), lin_cache)
    assert rel_error(dx, numerical_gradient(f, x, dout)) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_input_not_mutated(pair, rng, dtype):
    fwd, bwd, _, hyper = pair
    x = rng.standard_normal((3, 4)).astype(dtype)
    before = x.copy()
    out, cache = fwd(x, **hyper)
    dx = bwd(np.ones_like(out), cache)
    assert out.dtype == dtype and dx.dtype == dtype
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_large_magnitudes(dtype):
    # RuntimeWarning is an error in this suite: overflow in exp would fail the test
    x = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4], dtype=dtype)
    out, cache = F.sigmoid_forward(x)
    assert np.all(np.isfinite(out))
    expected = torch.sigmoid(torch.tensor(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(out, expected.astype(dtype), rtol=1e-6, atol=0)
    assert out[0] == 0.0 and out[-1] == 1.0 and out[3] == 0.5
    dx = F.sigmoid_backward(np.ones_like(x), cache)
    assert np.all(np.isfinite(dx)) and dx[3] == 0.25


def test_relu_and_leaky_relu_closed_form():
    x = np.array([-2.0, -0.0, 0.0, 3.0])
    np.testing.assert_array_equal(F.relu_forward(x)[0], [0.0, 0.0, 0.0, 3.0])
    out, cache = F.leaky_relu_forward(x, negative_slope=0.5)
    np.testing.assert_array_equal(out, [-1.0, 0.0, 0.0, 3.0])
    np.testing.assert_array_equal(F.leaky_relu_backward(np.ones(4), cache), [0.5, 0.5, 0.5, 1.0])


def test_relu_propagates_nan_like_torch():
    out, _ = F.relu_forward(np.array([np.nan, -1.0]))
    assert np.isnan(out[0]) and out[1] == 0.0


def test_tanh_backward_uses_saved_output(rng):
    x = rng.standard_normal(10)
    out, cache = F.tanh_forward(x)
    np.testing.assert_allclose(F.tanh_backward(np.ones(10), cache), 1.0 / np.cosh(x) ** 2,
                               rtol=1e-12)


@pytest.mark.gpu
def test_cuda_matches_cpu(pair, rng):
    fwd, bwd, _, hyper = pair
    x = rng.standard_normal((5, 6))
    dout = rng.standard_normal((5, 6))
    out, cache = fwd(backend.to_device(x, "cuda"), **hyper)
    dx = bwd(backend.to_device(dout, "cuda"), cache)
    ref, ref_cache = fwd(x, **hyper)
    assert backend.device_of(out) == "cuda" and backend.device_of(dx) == "cuda"
    np.testing.assert_allclose(backend.to_numpy(out), ref, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(dx), bwd(dout, ref_cache), rtol=1e-12)


def correctly_rounded_sigmoid(x):
    """sigmoid(x) in float64 by the stable branches, rounded once to x's dtype."""
    x64 = x.astype(np.float64)
    e = np.exp(-np.abs(x64))
    return np.where(x64 >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def ulp_distance(a, b):
    """Steps between float32 values of one sign (sigmoid's outputs are >= 0)."""
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (40, 3, 16, 30)], ids=["one-block", "blocks"])
def test_compiled_and_reference_agree_on_nan_inf_and_signed_zero(dtype, layout, shape, rng,
                                                                  monkeypatch, threads):
    # one-block: one call of each kernel; blocks: the kernels on parts of the arrays on
    # normlab's 2 threads, from 2 * _parallel.MIN_ELEMENTS elements (lowered here)
    from normlab.functional import _parallel

    threads(2)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1024)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[:6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-30]
    dout = rng.standard_normal(x.shape).astype(dtype)
    dout.flat[:3] = np.nan  # masked out (-0 -> 0), kept (x = NaN is not > 0 either), ...
    dout.flat[7] = np.nan  # ... and kept where x > 0
    if layout == "strided":  # the compiled kernels take contiguous arrays; others fall back
        x, dout = x[:, :, ::2], dout[:, :, ::2]
    got, sigmoid_out = {}, {}
    _, shared = F.sigmoid_forward(x)  # one cache for both backwards (see below)
    for setting in ("compiled", "reference"):
        with normlab.kernels(setting):
            out, cache = F.relu_forward(x)
            lout, lcache = F.leaky_relu_forward(x, 0.1)
            sigmoid_out[setting] = F.sigmoid_forward(x)[0]
            got[setting] = (out, F.relu_backward(dout, cache), lout,
                            F.leaky_relu_backward(dout, lcache),
                            F.sigmoid_backward(dout, shared))
    for k, (a, b) in enumerate(zip(got["compiled"], got["reference"])):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)  # NaN where NaN, bit for bit otherwise
        # the sign of a NaN out of NaN * NaN follows the operand order the compiler picks
        # (sigmoid backward's products): signed zeros must match, NaN signs there need not
        sign = ~np.isnan(a) if k == 4 else slice(None)
        np.testing.assert_array_equal(np.signbit(a)[sign], np.signbit(b)[sign])
    # sigmoid's forward: float64 the reference's bits (NumPy's exp); float32 compiled
    # computes its own exp (compiled/_fpmath.py), within 2 ulp of the correctly rounded
    # value; NaN, the infinities and the zeros give exactly the reference's values
    a, b = sigmoid_out["compiled"], sigmoid_out["reference"]
    assert a.dtype == b.dtype == dtype
    if dtype == np.float64 or layout == "strided":  # strided: the reference code runs
        np.testing.assert_array_equal(a, b)
    else:
        finite = np.isfinite(x)
        assert ulp_distance(a[finite], correctly_rounded_sigmoid(x[finite])).max() <= 2
        np.testing.assert_array_equal(a[~finite], b[~finite])
        np.testing.assert_array_equal(a.flat[1:3], [0.5, 0.5])
        assert a.flat[5] == b.flat[5] == 0.5


def test_float32_sigmoid_within_ulps_of_correctly_rounded(kernel_setting):
    # a dense grid over both tails, the subnormal outputs below -87.3 included, and the
    # float32 values nearest the branch at 0: compiled 2 ulp at most (as PyTorch's float32
    # sigmoid), the reference (NumPy's float32 exp, float32 divisions) 3
    grid = np.linspace(-110, 110, 400_001).astype(np.float32)
    tiny = np.float32(1e-30) * np.arange(-50, 51, dtype=np.float32)
    x = np.concatenate([grid, tiny, [-103.9, -103.0, -88.0, -87.3, 87.3, 88.0]]).astype(
        np.float32)
    out, _ = F.sigmoid_forward(x)
    truth = correctly_rounded_sigmoid(x)
    assert ulp_distance(out, truth).max() <= (2 if kernel_setting == "compiled" else 3)
    assert np.any((out > 0) & (out < np.finfo(np.float32).tiny))  # subnormals kept
    assert out.max() == 1.0 and out.min() == 0.0


ACTS = [(F.relu_forward, F.relu_backward), (F.sigmoid_forward, F.sigmoid_backward)]


@pytest.mark.parametrize("fwd,bwd", ACTS, ids=["relu", "sigmoid"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_overwrite_dout_writes_the_same_bits_over_dout(fwd, bwd, dtype, rng, kernels):
    """``overwrite_dout``: the gradient lands in ``dout`` itself (ReLU: NaN kept where the
    mask is set, 0 where it is not), bit for bit the new array's values."""
    x = rng.standard_normal((5, 3, 4, 6)).astype(dtype)
    x.flat[:3] = [np.nan, -0.0, 0.0]
    dout = rng.standard_normal(x.shape).astype(dtype)
    dout.flat[[0, 1, 7]] = np.nan
    _, cache = fwd(x)
    want = bwd(dout, cache)
    got = bwd(dout, cache, overwrite_dout=True)
    assert got is dout
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fwd,bwd", ACTS, ids=["relu", "sigmoid"])
def test_overwrite_dout_is_only_a_permission(fwd, bwd, rng, kernels):
    """A read-only or a strided dout, a narrower dout than the gradient (Sigmoid: float32
    dout, float64 forward), a Python float for a 0-d output: a new gradient, ``dout``
    untouched."""
    x = rng.standard_normal((3, 4))
    _, cache = fwd(x.astype(np.float32))
    dout = rng.standard_normal(x.shape).astype(np.float32)
    keep = dout.copy()
    want = bwd(keep, cache)
    read_only = dout.copy()
    read_only.flags.writeable = False
    strided = np.repeat(dout, 2, axis=1)[:, ::2]
    for other in (read_only, strided):
        got = bwd(other, cache, overwrite_dout=True)
        assert got is not other
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(other, keep)
    _, wide = fwd(x)  # float64
    got = bwd(dout, wide, overwrite_dout=True)
    assert (got is dout) == (bwd is F.relu_backward)  # ReLU's gradient has dout's dtype
    if bwd is F.sigmoid_backward:
        np.testing.assert_array_equal(dout, keep)
    _, scalar_cache = fwd(np.array(2.0, dtype=np.float32))
    assert np.isfinite(bwd(1.0, scalar_cache, overwrite_dout=True))
    with pytest.raises(TypeError, match="overwrite_dout to be a bool, got 'yes'"):
        bwd(keep, cache, overwrite_dout="yes")


@pytest.mark.parametrize("setting", ["compiled", "reference"])
def test_zero_dim_input_with_a_scalar_dout_runs_the_reference_path(setting):
    # regression: the compiled select read .dtype of a Python float dout (AttributeError)
    x = np.array(-1.5, dtype=np.float32)
    with normlab.kernels(setting):
        for fwd, bwd in ((F.relu_forward, F.relu_backward),
                         (F.leaky_relu_forward, F.leaky_relu_backward)):
            out, cache = fwd(x)
            assert np.ndim(out) == 0
            dx = bwd(1.0, cache)
            assert np.ndim(dx) == 0 and np.isfinite(dx)
