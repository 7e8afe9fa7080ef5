"""The one-input-channel conv path (functional/_flatconv.py): loop reference, PyTorch
parity, compiled against reference, its choice, chunks on threads, float32 accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import normlab
from normlab import backend
from normlab import functional as F
from normlab.functional import _flatconv

TIGHT = dict(rtol=1e-12, atol=1e-12)

# (x shape, weight shape, padding, dilation): one input channel, stride 1
CASES = [((4, 1, 9, 11), (3, 1, 5, 5), 2, 1),  # LeNet's first conv, smaller
         ((3, 1, 7, 8), (2, 1, 3, 2), (0, 1), (2, 1)),
         ((5, 1, 6, 6), (7, 1, 2, 2), (1, 0), 1),  # 4 offsets: one whole pass of four
         ((2, 1, 5, 5), (1, 1, 1, 1), 0, 1),  # a 1x1 kernel: a pass of one and 3 repeats
         ((2, 1, 6, 9), (3, 1, 6, 9), 0, 1)]  # the kernel covers the image: 1x1 output
IDS = ["5x5-pad2", "dilated", "2x2-pad-h", "1x1", "whole-image"]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_flat_matches_the_loop_reference_float64(case, bias, kernels, rng,
                                                 conv_matches_loop_reference):
    xs, ws, padding, dilation = case
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if bias else None
    out, cache = conv_matches_loop_reference(x, w, b, padding=padding, dilation=dilation)
    assert cache.flat and out.flags.c_contiguous


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_flat_matches_torch_float64(case, rng):
    xs, ws, padding, dilation = case
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    out, cache = F.conv2d_forward(x, w, b, padding=padding, dilation=dilation)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = F.conv2d_backward(dout, cache)
    t = [torch.from_numpy(a).requires_grad_() for a in (x, w, b)]
    tout = torch.nn.functional.conv2d(*t, padding=padding, dilation=dilation)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), **TIGHT)
    for got, ref in zip((dx, dw, db), t):
        np.testing.assert_allclose(got, ref.grad.numpy(), **TIGHT)


@pytest.mark.parametrize("kernel", [(5, 3), (5, 5), (3, 2), (2, 2)],
                         ids=["15-taps", "25-taps", "6-taps", "4-taps"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_forward_is_bit_identical_to_the_reference(dtype, kernel, rng):
    """The kernel adds four taps a pass, then the last one to three one at a time."""
    x = rng.standard_normal((6, 1, 12, 10)).astype(dtype)
    w = rng.standard_normal((4, 1) + kernel).astype(dtype)
    with normlab.kernels("compiled"):
        out, cache = F.conv2d_forward(x, w, padding=(2, 1), dilation=(1, 2))
        dw_c = F.conv2d_backward(np.ones_like(out), cache, need_dx=False)[1]
    with normlab.kernels("reference"):
        ref, cache_r = F.conv2d_forward(x, w, padding=(2, 1), dilation=(1, 2))
        dw_r = F.conv2d_backward(np.ones_like(out), cache_r, need_dx=False)[1]
    assert cache.flat and cache_r.flat
    np.testing.assert_array_equal(out, ref)  # the same adds in the same order
    tol = 1e-5 if dtype == np.float32 else 1e-13  # dot products reordered by the kernel
    np.testing.assert_allclose(dw_c, dw_r, rtol=tol, atol=tol)


def test_conv1d_of_one_channel_takes_the_path(rng):
    x, w = rng.standard_normal((3, 1, 40)), rng.standard_normal((5, 1, 7))
    out, cache = F.conv1d_forward(x, w, padding=3, dilation=2)
    assert cache.flat
    t = [torch.from_numpy(a).requires_grad_() for a in (x, w)]
    tout = torch.nn.functional.conv1d(*t, padding=3, dilation=2)
    np.testing.assert_allclose(out, tout.detach().numpy(), **TIGHT)
    dout = rng.standard_normal(out.shape)
    tout.backward(torch.from_numpy(dout))
    dx, dw, _ = F.conv1d_backward(dout, cache)
    np.testing.assert_allclose(dx, t[0].grad.numpy(), **TIGHT)
    np.testing.assert_allclose(dw, t[1].grad.numpy(), **TIGHT)


def test_chunks_on_two_threads_give_the_one_chunk_results(rng, one_chunk_vs_chunks_on_threads):
    x, w = rng.standard_normal((7, 1, 10, 9)), rng.standard_normal((4, 1, 5, 3))
    cache, (out1, grads1), (out2, grads2) = one_chunk_vs_chunks_on_threads(x, w, padding=1)
    assert cache.flat
    np.testing.assert_array_equal(out2, out1)  # each sample's numbers: the same code
    np.testing.assert_array_equal(grads2[0], grads1[0])  # dx: per sample
    np.testing.assert_allclose(grads2[1], grads1[1], rtol=1e-13, atol=1e-13)  # sum order
    dout = np.random.default_rng(7).standard_normal(out1.shape)
    again = F.conv2d_backward(dout, cache)  # the same chunks in the same order: same bits
    np.testing.assert_array_equal(again[1], grads2[1])


def test_the_choice():
    assert _flatconv.chosen(1, (1, 1), 1)  # LeNet's first conv, mnist1d's Conv1d
    assert not _flatconv.chosen(3, (1, 1), 1)  # more channels: im2col's product wins
    assert not _flatconv.chosen(1, (2, 1), 1)  # strided
    assert not _flatconv.chosen(1, (1, 2), 1)
    assert not _flatconv.chosen(1, (1, 1), 1, gpu=True)  # one launch per add on CuPy
    old = _flatconv.use_flat
    _flatconv.use_flat = False
    try:
        assert not _flatconv.chosen(1, (1, 1), 1)
    finally:
        _flatconv.use_flat = old


def test_an_empty_batch_runs_im2col():
    out, cache = F.conv2d_forward(np.zeros((0, 1, 28, 28)), np.zeros((6, 1, 5, 5)), padding=2)
    assert out.shape == (0, 6, 28, 28) and not cache.flat


def test_lenet_layer_float32_stays_close_to_float64(rng):
    x = rng.standard_normal((32, 1, 28, 28))
    w = rng.standard_normal((6, 1, 5, 5)) * 0.2
    out32, cache = F.conv2d_forward(x.astype(np.float32), w.astype(np.float32), padding=2)
    assert cache.flat and out32.dtype == np.float32
    out64, cache64 = F.conv2d_forward(x, w, padding=2)
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    dout = rng.standard_normal(out64.shape)
    g32 = F.conv2d_backward(dout.astype(np.float32), cache)
    g64 = F.conv2d_backward(dout, cache64)
    for a, b in zip(g32[:2], g64[:2]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_cuda_takes_im2col_and_matches_the_cpu_flat_rows(rng):
    x, w, b = rng.standard_normal((3, 1, 10, 11)), rng.standard_normal((4, 1, 5, 5)), \
        rng.standard_normal(4)
    ref, ref_cache = F.conv2d_forward(x, w, b, padding=2)
    out, cache = F.conv2d_forward(*(backend.to_device(a, "cuda") for a in (x, w, b)), padding=2)
    assert ref_cache.flat and not cache.flat and backend.device_of(out) == "cuda"
    np.testing.assert_allclose(backend.to_numpy(out), ref, **TIGHT)
    dout = rng.standard_normal(ref.shape)
    for got, want in zip(F.conv2d_backward(backend.to_device(dout, "cuda"), cache),
                         F.conv2d_backward(dout, ref_cache)):
        np.testing.assert_allclose(backend.to_numpy(got), want, **TIGHT)
