"""The kernel-row conv path (functional/_rowconv.py): loop reference, PyTorch parity, its
choice, chunks on threads, float32 accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normlab import backend
from normlab import functional as F
from normlab.functional import _flatconv, _rowconv

TIGHT = dict(rtol=1e-12, atol=1e-12)

# (x shape, weight shape, stride, padding, dilation)
CASES = [((3, 2, 9, 8), (4, 2, 3, 3), 1, 1, 1),
         ((2, 3, 10, 11), (5, 3, 5, 5), 1, 2, 1),
         ((2, 2, 12, 13), (3, 2, 4, 2), (1, 2), (0, 1), 1),
         ((2, 2, 13, 12), (3, 2, 3, 3), 1, (2, 0), (2, 3)),
         ((1, 1, 7, 7), (2, 1, 7, 7), 1, 3, 1)]
IDS = ["3x3", "5x5-pad2", "4x2-stride-w2", "dilated", "7x7-one-channel"]


@pytest.fixture
def rows(monkeypatch):
    """The kernel-row path for any kernel of 2 rows or more, whatever the channels."""
    monkeypatch.setattr(_rowconv, "MIN_ROWS", 2)
    monkeypatch.setattr(_rowconv, "MIN_INNER", 1)
    monkeypatch.setattr(_flatconv, "use_flat", False)  # one input channel: not _flatconv


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rows_match_the_loop_reference_float64(case, bias, rows, kernels, rng,
                                                conv_matches_loop_reference):
    xs, ws, stride, padding, dilation = case
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if bias else None
    _, cache = conv_matches_loop_reference(x, w, b, stride=stride, padding=padding,
                                           dilation=dilation)
    assert cache.rows


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rows_match_torch_float64(case, rows, rng):
    xs, ws, stride, padding, dilation = case
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    out, cache = F.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = F.conv2d_backward(dout, cache)
    t = [torch.from_numpy(a).requires_grad_() for a in (x, w, b)]
    tout = torch.nn.functional.conv2d(*t, stride=stride, padding=padding, dilation=dilation)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), **TIGHT)
    for got, ref in zip((dx, dw, db), t):
        np.testing.assert_allclose(got, ref.grad.numpy(), **TIGHT)


def test_chunks_on_two_threads_give_the_one_chunk_results(rows, rng,
                                                          one_chunk_vs_chunks_on_threads):
    x, w = rng.standard_normal((7, 3, 10, 9)), rng.standard_normal((4, 3, 5, 3))
    cache, (out1, grads1), (out2, grads2) = one_chunk_vs_chunks_on_threads(x, w, padding=1)
    assert cache.rows
    np.testing.assert_array_equal(out2, out1)  # each sample's numbers: the same code
    for a, b in zip(grads2, grads1):
        if b is not None:
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)  # dweight: sum order


@pytest.mark.parametrize("per_block", [1, 2], ids=["one-sample", "two-samples"])
def test_blocks_of_samples_give_the_whole_chunks_bits(per_block, rows, rng, monkeypatch,
                                                       conv_matches_loop_reference):
    # the forward sums its kernel rows' products a block of samples at a time; 5 samples
    # in blocks of 2 leave a shorter last block
    x, w = rng.standard_normal((5, 2, 9, 8)), rng.standard_normal((4, 2, 5, 3))
    whole, cache = F.conv2d_forward(x, w, None, padding=1)
    assert cache.rows
    out_bytes = 4 * 7 * 8 * x.dtype.itemsize  # F * OH * OW per sample
    monkeypatch.setattr(_rowconv, "BLOCK_BYTES", per_block * out_bytes)
    blocks, _ = conv_matches_loop_reference(x, w, None, padding=1)
    np.testing.assert_array_equal(blocks, whole)


def test_the_choice():
    assert _rowconv.chosen(6, (5, 5), (1, 1), 1)  # LeNet's 6 -> 16
    assert _rowconv.chosen(3, (7, 7), (1, 1), 1)  # ThreeLayerConvNet's 7x7
    assert not _rowconv.chosen(1, (5, 5), (1, 1), 1)  # C*KW = 5: im2col is faster
    assert not _rowconv.chosen(6, (5, 5), (2, 1), 1)  # vertical stride: rows are no slices
    assert not _rowconv.chosen(6, (5, 5), (1, 1), 2)  # groups
    assert not _rowconv.chosen(16, (3, 3), (1, 1), 1)  # 3 rows
    old = _rowconv.use_rows
    _rowconv.use_rows = False
    try:
        assert not _rowconv.chosen(6, (5, 5), (1, 1), 1)
    finally:
        _rowconv.use_rows = old


def test_lenet_layer_float32_stays_close_to_float64(rng):
    x = rng.standard_normal((8, 6, 14, 14))
    w = rng.standard_normal((16, 6, 5, 5)) * 0.2
    out32, cache = F.conv2d_forward(x.astype(np.float32), w.astype(np.float32))
    assert cache.rows and out32.dtype == np.float32
    out64, _ = F.conv2d_forward(x, w)
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    dout = rng.standard_normal(out64.shape)
    g32 = F.conv2d_backward(dout.astype(np.float32), cache)
    g64 = F.conv2d_backward(dout, F.conv2d_forward(x, w)[1])
    for a, b in zip(g32[:2], g64[:2]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_an_empty_batch_runs_im2col(rng):
    out, cache = F.conv2d_forward(np.zeros((0, 6, 14, 14)), rng.standard_normal((16, 6, 5, 5)))
    assert out.shape == (0, 16, 10, 10) and not cache.rows


@pytest.mark.gpu
def test_cuda_takes_im2col_and_matches_the_cpu_rows(rows, rng):
    """On CuPy one im2col product beats the row products (H200, float32, train step:
    LeNet 14.6 vs 16.1 ms, ThreeLayerConvNet 4.3 vs 6.1), so rows are a CPU path."""
    x, w, b = rng.standard_normal((2, 3, 10, 11)), rng.standard_normal((5, 3, 5, 5)), \
        rng.standard_normal(5)
    ref, ref_cache = F.conv2d_forward(x, w, b, padding=2)
    dout = rng.standard_normal(ref.shape)
    out, cache = F.conv2d_forward(*(backend.to_device(a, "cuda") for a in (x, w, b)), padding=2)
    assert ref_cache.rows and not cache.rows and backend.device_of(out) == "cuda"
    np.testing.assert_allclose(backend.to_numpy(out), ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(F.conv2d_backward(backend.to_device(dout, "cuda"), cache),
                         F.conv2d_backward(dout, ref_cache)):
        np.testing.assert_allclose(backend.to_numpy(got), want, rtol=1e-12, atol=1e-12)
