"""Batch chunks over threads (normlab/functional/_parallel.py): coverage, errors, exactness."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import normlab
from normlab import functional as F
from normlab.functional import _kernels, _parallel, _winograd


def test_run_calls_every_chunk_once_and_names_threads_by_slot(threads):
    threads(3)
    seen, lock = [], threading.Lock()
    nested = []

    def fn(i, slot):
        with lock:
            seen.append((i, slot, threading.get_ident()))
        nested.append(_parallel.threads_for(np.zeros(1), 5))

    _parallel.run(40, fn, _parallel.threads_for(np.zeros(1), 40))
    assert sorted(i for i, _, _ in seen) == list(range(40))
    idents = {}
    for _, slot, ident in seen:  # one thread per slot
        assert idents.setdefault(slot, ident) == ident
    assert set(idents) <= {0, 1, 2}
    assert nested == [1] * 40  # no nested regions
    assert not _parallel.inside()


def test_run_propagates_a_chunk_error_after_all_threads_stop(threads):
    threads(2)
    done = []

    def fn(i, slot):
        if i == 3:
            raise ValueError("chunk 3 failed")
        done.append(i)

    with pytest.raises(ValueError, match="chunk 3 failed"):
        _parallel.run(10, fn, 2)
    assert 3 not in done and not _parallel.inside()


def test_blas_thread_count_is_restored_after_a_region(threads, blas_counts):
    from threadpoolctl import threadpool_limits

    threads(2)  # sets BLAS to one thread; a user may raise it again (or never call it)
    with threadpool_limits(limits=2, user_api="blas"):
        _parallel.run(4, lambda i, slot: np.ones((8, 8)) @ np.ones((8, 8)), 2)
        counts = blas_counts()
    assert counts and all(c == 2 for c in counts)


@pytest.mark.parametrize("tile", [2, 4, None])  # None: im2col
@pytest.mark.parametrize("two_pass", [False, True])  # the Winograd backward on one thread
def test_conv_over_many_chunks_is_bit_identical_for_any_thread_count(tile, two_pass, threads,
                                                                    monkeypatch, kernels):
    from normlab.functional import _winograd_backward

    monkeypatch.setattr(_winograd, "CHUNK_BYTES", 1)  # one sample per chunk
    monkeypatch.setattr(_winograd_backward, "TWO_PASS_MIN_RATIO", 0.0 if two_pass else np.inf)
    monkeypatch.setattr(_kernels, "CHUNK_BYTES", 1)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 16, 12, 12)).astype(np.float32)
    w = (rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(np.float32)
    dout = rng.standard_normal((7, 16, 12, 12)).astype(np.float32)
    old = _winograd.use_winograd(tile is not None), _winograd.use_tile(tile or "auto")
    try:
        results = []
        for n in (1, 3):
            threads(n)
            out, cache = F.conv2d_forward(x, w, padding=1)
            assert cache.winograd == (tile is not None)
            results.append((out,) + F.conv2d_backward(dout, cache)[:2])
    finally:
        _winograd.use_winograd(old[0]), _winograd.use_tile(old[1])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_batch_norm_channel_split_is_bit_identical_for_any_thread_count(threads, kernels,
                                                                         monkeypatch):
    # split from 2**16 elements on (the default waits for 2**20: the threads' start-up)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1 << 16)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((16, 24, 16, 16)) * 3 + 1).astype(np.float32)  # 98304 elements
    dout = rng.standard_normal(x.shape).astype(np.float32)
    gamma = rng.standard_normal(24).astype(np.float32)
    beta = rng.standard_normal(24).astype(np.float32)
    results = []
    for n in (1, 2, 5):
        threads(n)
        out, cache = F.batch_norm_forward(x, gamma, beta, axes=(0, 2, 3))
        results.append((out, cache.mean, cache.var) + tuple(F.batch_norm_backward(dout, cache)))
        # and dx written over a handed-over dout, each thread over its channels
        results.append(results[-1][:3] + tuple(
            F.batch_norm_backward(dout.copy(), cache, overwrite_dout=True)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_thread_count_follows_set_num_threads_then_the_environment(monkeypatch):
    from normlab.functional import dispatch
    from normlab.functional.compiled import _threads

    monkeypatch.setattr(dispatch, "_threads", None)  # set_num_threads never called
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _parallel.thread_count() == 1  # a process started like a 1-thread torch one
    monkeypatch.setenv("NUMBA_NUM_THREADS", "3")
    assert _parallel.thread_count() == 3
    assert _threads.thread_count() == 3  # the batch-split kernels follow the same rule
    monkeypatch.setenv("NUMBA_NUM_THREADS", "junk")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert _parallel.thread_count() == (__import__("os").cpu_count() or 1)
    monkeypatch.setattr(dispatch, "_threads", 2)
    assert _parallel.thread_count() == 2


def test_blas_single_holds_blas_at_one_thread_until_the_outermost_block_ends(threads, blas_counts):
    from threadpoolctl import threadpool_limits

    threads(2)
    with threadpool_limits(limits=2, user_api="blas"):  # as without set_num_threads
        with _parallel.blas_single():
            assert all(c == 1 for c in blas_counts())
            _parallel.run(4, lambda i, slot: np.ones((8, 8)) @ np.ones((8, 8)), 2)
            with _parallel.blas_single():
                pass
            assert all(c == 1 for c in blas_counts())  # a region or inner block keeps it
        counts = blas_counts()
    assert counts and all(c == 2 for c in counts)


def test_set_num_threads_puts_blas_on_one_thread(threads, blas_counts):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        threads(3)
        counts = blas_counts()
    assert counts and all(c == 1 for c in counts)


def test_blas_single_leaves_blas_alone_on_one_normlab_thread(threads, blas_counts):
    from threadpoolctl import threadpool_limits

    threads(1)
    with threadpool_limits(limits=2, user_api="blas"):
        with _parallel.blas_single():
            assert all(c == 2 for c in blas_counts())  # BLAS's threads are the only ones



@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]])
def test_in_order_sum_adds_in_index_order_whatever_the_arrival_order(order):
    rng = np.random.default_rng(7)
    parts = [rng.standard_normal((3, 4)).astype(np.float32) * 10.0 ** e for e in range(5)]
    expected = parts[0].copy()
    for p in parts[1:]:  # ((p0 + p1) + p2) + ...: float32 rounding depends on the order
        expected += p
    total = _parallel.InOrderSum()
    assert total.total is None
    for i in order:
        total.add(i, parts[i].copy())
    np.testing.assert_array_equal(total.total.view(np.uint32), expected.view(np.uint32))
    assert total._early == {}  # nothing left waiting for its turn


def test_in_order_sum_keeps_only_parts_that_came_early():
    total = _parallel.InOrderSum()
    total.add(1, np.ones(2))
    assert total.total is None and list(total._early) == [1]
    total.add(0, np.ones(2))  # part 0's turn releases the early part 1
    np.testing.assert_array_equal(total.total, [2.0, 2.0])
    assert total._early == {}


def test_in_order_sum_from_threads_matches_one_thread():
    rng = np.random.default_rng(8)
    parts = [rng.standard_normal(1000).astype(np.float32) * 3.0 ** (i % 7) for i in range(64)]
    one = _parallel.InOrderSum()
    for i, p in enumerate(parts):
        one.add(i, p.copy())
    many = _parallel.InOrderSum()
    threads = [threading.Thread(target=lambda k=k: [many.add(i, parts[i].copy())
                                                     for i in range(k, 64, 4)])
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(many.total.view(np.uint32), one.total.view(np.uint32))
