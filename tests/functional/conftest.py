"""Fixtures for functional tests: run kernels on the reference path and the compiled one."""

from __future__ import annotations

import numpy as np
import pytest

from normlab import functional as F
from normlab.functional import _kernels, dispatch
from normlab.functional import conv_naive


@pytest.fixture
def kernels(kernel_setting):
    """Run the test once with the reference xp code and once with the compiled kernels."""
    assert (dispatch.lookup("col2im", np) is not None) == (kernel_setting == "compiled")
    return kernel_setting


@pytest.fixture
def one_chunk_vs_chunks_on_threads(monkeypatch, threads):
    """``run(x, w, **conv_kw) -> (cache, (out, grads) whole, (out, grads) chunked)``: a conv
    on one thread with the default chunks, then on two threads with one sample per chunk
    (``dout`` the same standard-normal draw for both)."""
    def run(x, w, **kw):
        out1, cache1 = F.conv2d_forward(x, w, **kw)
        dout = np.random.default_rng(7).standard_normal(out1.shape).astype(x.dtype)
        grads1 = F.conv2d_backward(dout, cache1)
        threads(2)
        monkeypatch.setattr(_kernels, "CHUNK_BYTES", 1)  # one sample per chunk
        out2, cache2 = F.conv2d_forward(x, w, **kw)
        return cache2, (out1, grads1), (out2, F.conv2d_backward(dout, cache2))
    return run


@pytest.fixture
def conv_matches_loop_reference():
    """``check(x, w, b, **conv_kw) -> (out, cache)``: conv2d's output, both gradients (with
    and without ``dx``) equal the loop reference's to 1e-12, the inputs untouched."""
    tight = dict(rtol=1e-12, atol=1e-12)

    def check(x, w, b, **kw):
        x0, w0 = x.copy(), w.copy()
        out, cache = F.conv2d_forward(x, w, b, **kw)
        ref, ref_cache = conv_naive.conv2d_forward_naive(x, w, b, **kw)
        np.testing.assert_allclose(out, ref, **tight)
        dout = np.random.default_rng(5).standard_normal(out.shape)
        want = conv_naive.conv2d_backward_naive(dout, ref_cache)
        for got, exp in zip(F.conv2d_backward(dout, cache), want):
            if exp is None:
                assert got is None
            else:
                np.testing.assert_allclose(got, exp, **tight)
        dx, dw, _ = F.conv2d_backward(dout, cache, need_dx=False)
        assert dx is None
        np.testing.assert_allclose(dw, want[1], **tight)
        np.testing.assert_array_equal(x, x0)  # inputs untouched
        np.testing.assert_array_equal(w, w0)
        return out, cache
    return check
