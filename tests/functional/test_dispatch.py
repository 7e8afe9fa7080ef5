"""normlab.functional.dispatch: the one kernel switch and the op registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import normlab
from normlab import functional as F
from normlab.functional import dispatch


def test_default_is_compiled_and_switch_is_exported():
    assert normlab.get_kernels() == "compiled"
    assert normlab.kernels is dispatch.kernels and dispatch.SETTINGS == ("compiled", "reference")


@pytest.mark.parametrize("dtype,ready", [
    ("<f4", True), ("<f8", True), (">f4", False), (">f8", False), ("<f2", False),
    ("<i8", True), ("u1", True), ("?", True), ("<c8", False), ("<M8[s]", False),
    ([("a", "<f4")], False), ("O", False)])
def test_kernel_ready_takes_native_float32_float64_and_integer_arrays(dtype, ready):
    x = np.zeros(3, dtype=np.dtype(dtype))
    for _ in range(2):  # the second call gets the kept verdict
        assert dispatch.kernel_ready(x) is ready
        assert dispatch.kernel_ready(np.zeros(2, np.float32), x, None, 3) is ready


@pytest.mark.parametrize("first,second", [("<f4", ">f4"), (">f8", "<f8")])
def test_kernel_ready_keeps_each_byte_order_verdict(monkeypatch, first, second):
    monkeypatch.setattr(dispatch, "_dtype_ready", {})  # nothing kept from other tests
    for _ in range(2):
        assert dispatch.kernel_ready(np.zeros(2, first)) is (first[0] == "<")
        assert dispatch.kernel_ready(np.zeros(2, second)) is (second[0] == "<")


def test_call_sets_and_context_manager_restores():
    with normlab.kernels("reference") as k:
        assert normlab.get_kernels() == "reference" and k.setting == "reference"
        assert dispatch.lookup("col2im", np) is None
        with normlab.kernels("compiled"):
            assert normlab.get_kernels() == "compiled"
        assert normlab.get_kernels() == "reference"
    assert normlab.get_kernels() == "compiled"
    normlab.kernels("reference")  # a plain call stays in force
    try:
        assert normlab.get_kernels() == "reference"
    finally:
        normlab.kernels("compiled")


def test_context_manager_restores_after_an_exception():
    with pytest.raises(KeyError):
        with normlab.kernels("reference"):
            raise KeyError("boom")
    assert normlab.get_kernels() == "compiled"


@pytest.mark.parametrize("bad", ["numba", "Reference", None, True])
def test_bad_setting_raises(bad):
    with pytest.raises(ValueError, match=r"kernels: expected 'compiled' or 'reference', got "):
        normlab.kernels(bad)
    assert normlab.get_kernels() == "compiled"


def _import_with(value):
    code = "import normlab; print(normlab.get_kernels())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"NORMLAB_KERNELS": value, "PATH": ""},
                          cwd=str(Path(normlab.__file__).parents[1]))


def test_environment_variable_sets_the_default():
    out = _import_with("reference")
    assert out.returncode == 0 and out.stdout.strip() == "reference"
    out = _import_with("fast")
    assert out.returncode != 0
    assert "NORMLAB_KERNELS: expected 'compiled' or 'reference', got 'fast'" in out.stderr


def test_lookup_finds_the_numba_kernels_for_numpy_only():
    pytest.importorskip("numba")
    for op in ("col2im", "max_pool_forward", "bn_moments", "winograd4_input"):
        assert callable(dispatch.lookup(op, np))
    assert dispatch.lookup("no_such_op", np) is None
    assert dispatch.lookup("col2im", types.SimpleNamespace(__name__="cupy")) is None


def test_every_numpy_provider_loads():
    """A provider that fails to import leaves its ops on the reference code without a
    word at run time (the fallback above), so the library's own must all load, and each
    registers at least one op."""
    pytest.importorskip("numba")
    info = dispatch.describe()  # imports the NumPy providers
    assert "failed" not in info["numpy"], info["numpy"].get("failed")
    assert all(name in dispatch._ok for name in dispatch._PROVIDERS["numpy"])
    for op in ("winograd2_input", "winograd4_output", "winograd4_weight", "conv_flat_forward",
               "bn_eval_affine", "sgd_update"):
        assert op in info["numpy"]["ops"]


def test_register_and_lookup_for_a_new_backend(monkeypatch):
    monkeypatch.setattr(dispatch, "_registry", dict(dispatch._registry))
    fake = types.SimpleNamespace(__name__="fakearrays")
    impl = lambda x: x  # noqa: E731
    dispatch.register("col2im", "fakearrays", impl)
    assert dispatch.lookup("col2im", fake) is impl
    with normlab.kernels("reference"):
        assert dispatch.lookup("col2im", fake) is None


def test_a_provider_that_fails_to_import_leaves_the_reference(monkeypatch):
    monkeypatch.setitem(dispatch._PROVIDERS, "brokenarrays", ("normlab.no_such_provider",))
    monkeypatch.setattr(dispatch, "_failed", {})
    monkeypatch.setattr(dispatch, "_loaded", set(dispatch._loaded))
    monkeypatch.setattr(dispatch, "_names", dict(dispatch._names))
    assert dispatch.lookup("col2im", types.SimpleNamespace(__name__="brokenarrays")) is None
    assert "ModuleNotFoundError" in dispatch._failed["normlab.no_such_provider"]


def test_register_rejects_bad_arguments():
    with pytest.raises(TypeError, match=r"register: expected op and backend names \(str\), "
                                        r"got 3 and 'numpy'"):
        dispatch.register(3, "numpy", len)
    with pytest.raises(TypeError, match="register: expected a callable impl for 'x', got int"):
        dispatch.register("x", "numpy", 5)


def test_describe_and_blas_info_are_json_able():
    info = dispatch.describe()
    assert info["setting"] == "compiled"
    assert "bn_moments" in info["numpy"]["ops"] and info["cupy"]["ops"] == []
    with normlab.kernels("reference"):
        assert dispatch.describe()["setting"] == "reference"
    blas = dispatch.blas_info()
    assert blas is not None and blas["library"] in ("openblas", "mkl", "blis", "accelerate")
    assert isinstance(blas["version"], str) and "core" in blas
    json.dumps({"kernels": info, "blas": blas})


def test_reference_setting_runs_no_compiled_kernel(monkeypatch):
    """Under "reference" every op runs its xp code: poison the registry to prove it."""
    def boom(*args, **kwargs):
        raise AssertionError("a compiled kernel ran under the reference setting")

    monkeypatch.setattr(dispatch, "_registry", {k: boom for k in dispatch._registry})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 8, 8))
    w = rng.standard_normal((16, 16, 3, 3))
    with normlab.kernels("reference"):
        for hw in (8, 16):  # Winograd F(2x2, 3x3) and F(4x4, 3x3) under "auto"
            out, cache = F.conv2d_forward(x[:, :, :1].repeat(hw, 2).repeat(hw // 8, 3), w,
                                          None, padding=1)
            F.conv2d_backward(np.ones_like(out), cache)
        out, cache = F.conv2d_forward(x, w, None, stride=2)  # im2col, col2im
        F.conv2d_backward(np.ones_like(out), cache)
        out, cache = F.max_pool2d_forward(x, 3, 2)
        F.max_pool2d_backward(np.ones_like(out), cache)
        out, cache = F.avg_pool2d_forward(x, 3, 2)
        F.avg_pool2d_backward(np.ones_like(out), cache)
        out, cache = F.batch_norm_forward(x, None, None, axes=(0, 2, 3))
        F.batch_norm_backward(np.ones_like(out), cache)
    with pytest.raises(AssertionError, match="compiled kernel ran"):
        F.batch_norm_forward(x, None, None, axes=(0, 2, 3))  # the poison is live


def test_set_num_threads_sets_blas_and_numba_in_step():
    numba = pytest.importorskip("numba")
    from threadpoolctl import threadpool_info

    old = normlab.get_num_threads()
    try:
        normlab.set_num_threads(1)
        assert normlab.get_num_threads() == 1
        dispatch.lookup("relu_backward", np)  # loads the providers (and numba)
        assert numba.get_num_threads() == 1
        assert all(lib["num_threads"] == 1 for lib in threadpool_info()
                   if lib["user_api"] == "blas")
        if "NUMBA_THREADING_LAYER" not in os.environ:  # not OpenMP: it fights torch's
            assert numba.config.THREADING_LAYER == "workqueue"
    finally:
        normlab.set_num_threads(old or numba.config.NUMBA_NUM_THREADS)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_non_positive_ints(bad):
    with pytest.raises(ValueError, match="set_num_threads: expected a positive int"):
        normlab.set_num_threads(bad)


def test_batch_parallel_kernels_are_bit_identical_for_any_thread_count():
    pytest.importorskip("numba")
    from normlab.functional import _winograd

    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 16, 16, 16)).astype(np.float32)
    w = (rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(np.float32)
    w5 = (rng.standard_normal((16, 16, 5, 5)) * 0.1).astype(np.float32)

    def run():
        res = []
        for tile in (2, 4):  # Winograd F(2x2) and F(4x4) transforms
            old = _winograd.use_tile(tile), _winograd.use_winograd(True)
            try:
                out, cache = F.conv2d_forward(x, w, padding=1)
                res += [out, *F.conv2d_backward(out, cache)[:2]]
            finally:
                _winograd.use_tile(old[0]), _winograd.use_winograd(old[1])
        out, cache = F.conv2d_forward(x, w5, padding=2)  # im2col + col2im
        res += [out, F.conv2d_backward(out, cache)[0]]
        for fwd, bwd in ((F.max_pool2d_forward, F.max_pool2d_backward),
                         (F.avg_pool2d_forward, F.avg_pool2d_backward)):
            out, cache = fwd(x, 3, 2, 1)
            res += [out, bwd(out, cache)]
        return res

    old = normlab.get_num_threads()
    try:
        normlab.set_num_threads(1)
        one = run()
        normlab.set_num_threads(3)  # more threads than cores: still exact
        three = run()
    finally:
        normlab.set_num_threads(old or 2)
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)
