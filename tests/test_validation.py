"""normlab.validation: each check returns its argument or raises an ``expected ... got`` error."""

import numpy as np
import pytest

from normlab import validation as V
from normlab.errors import NormlabTypeError, NormlabValueError, ShapeError, StateError


def test_check_array_accepts_and_returns_float_arrays():
    x = np.zeros((2, 3), np.float32)
    assert V.check_array(x, "f", ndim=2) is x


@pytest.mark.parametrize("bad, exc, match", [
    ([1.0, 2.0], NormlabTypeError, r"f: expected input to be an ndarray, got list"),
    ("abc", NormlabTypeError, r"f: expected input to be an ndarray, got str 'abc'"),
    (np.zeros((2, 3), np.int64), NormlabTypeError,
     r"f: expected a floating-point array, got int64\. Cast it with x\.astype\(np\.float32\)"),
    (np.zeros(3), ShapeError, r"f: expected 2D input \(N, D\), got 1D input of shape \(3,\)"),
    (np.zeros((0, 3)), ShapeError, r"f: expected a non-empty input, got shape \(0, 3\)"),
])
def test_check_array_errors(bad, exc, match):
    with pytest.raises(exc, match=match):
        V.check_array(bad, "f", ndim=2, layout="(N, D)")


def test_check_array_finite_and_byteorder():
    with pytest.raises(NormlabValueError, match=r"f: expected finite values in x, got NaN or inf"):
        V.check_array(np.array([[np.nan]]), "f", name="x", finite=True)
    big = np.arange(4.0).astype(">f8")
    out = V.check_array(big, "f")
    assert out.dtype.isnative and np.array_equal(out, big)


def test_check_vector():
    g = np.ones(3)
    assert V.check_vector(g, 3, "bn", "gamma") is g
    with pytest.raises(ShapeError, match=r"bn: expected gamma of shape \(3,\) \(one value per "
                                         r"channel\), got shape \(4,\)"):
        V.check_vector(np.ones(4), 3, "bn", "gamma")
    with pytest.raises(NormlabTypeError, match=r"bn: expected gamma to be an ndarray of shape "
                                               r"\(3,\), got list"):
        V.check_vector([1.0, 1.0, 1.0], 3, "bn", "gamma")
    assert V.check_vector(None, 3, "bn", "gamma", allow_none=True) is None


def test_check_dout():
    d = np.ones((2, 3))
    assert V.check_dout(d, (2, 3), "m") is d
    assert V.check_dout(1.0, (), "loss") == 1.0
    with pytest.raises(ShapeError, match=r"m: expected dout of shape \(2, 3\) \(the forward "
                                         r"output's\), got shape \(2, 4\)"):
        V.check_dout(np.ones((2, 4)), (2, 3), "m")
    with pytest.raises(NormlabTypeError, match=r"m: expected a floating dout, got dtype int64"):
        V.check_dout(np.ones((2, 3), np.int64), (2, 3), "m")
    with pytest.raises(NormlabTypeError, match=r"m: expected dout to be an ndarray of shape "
                                               r"\(2, 3\) \(the forward output's\), got list"):
        V.check_dout([[1.0] * 3] * 2, (2, 3), "m")
    with pytest.raises(ShapeError, match=r"loss: expected a scalar dout \(float or 0-d array\), "
                                         r"got shape \(2,\)"):
        V.check_dout(np.ones(2), (), "loss")


def test_check_real_positive_int():
    assert V.check_positive(1e-5, "eps", "bn") == 1e-5
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(NormlabValueError, match=r"bn: expected eps in \(0\.0, inf\), got eps="):
            V.check_positive(bad, "eps", "bn")
    with pytest.raises(NormlabTypeError, match=r"bn: expected eps to be a real number, got str"):
        V.check_positive("1e-5", "eps", "bn")
    with pytest.raises(NormlabValueError, match=r"o: expected alpha in \[0, 1\], got alpha=2"):
        V.check_real(2, "alpha", "o", low=0, high=1)
    assert V.check_int(np.int64(3), "n", "o", low=1) == 3
    with pytest.raises(NormlabTypeError, match=r"o: expected n to be an int, got bool True"):
        V.check_int(True, "n", "o")
    with pytest.raises(NormlabValueError, match=r"o: expected n >= 1, got n=0"):
        V.check_int(0, "n", "o", low=1)


def test_check_mapping_keys_and_float_dtype():
    d = {"a": 1}
    assert V.check_mapping_keys(d, ("a",), "load") is d
    with pytest.raises(StateError, match=r"load: expected state with keys \['a', 'b'\], got "
                                         r"\['a'\] \(missing \['b'\]\)"):
        V.check_mapping_keys(d, ("a", "b"), "load")
    with pytest.raises(StateError, match=r"load: expected state to be a dict, got list"):
        V.check_mapping_keys([], ("a",), "load")
    assert V.check_float_dtype(np.float64, "Linear") == np.float64
    with pytest.raises(NormlabTypeError, match=r"Linear: expected a floating dtype \(np\.float32 "
                                               r"or np\.float64\), got <class 'int'>"):
        V.check_float_dtype(int, "Linear")


def test_check_cache():
    from normlab.functional.linear import LinearCache

    c = LinearCache(np.ones((2, 3)), np.ones((4, 3)), False)
    assert V.check_cache(c, LinearCache, "linear_backward") is c
    with pytest.raises(NormlabTypeError, match=r"linear_backward: expected the LinearCache "
                                               r"returned by the forward, got dict"):
        V.check_cache({}, LinearCache, "linear_backward")


def test_overwritable_needs_shape_dtype_values_c_order_and_write_access():
    from types import SimpleNamespace

    from normlab.validation import overwritable

    a = np.zeros((2, 3), dtype=np.float32)
    assert overwritable(a, (2, 3), np.float32)
    assert not overwritable(a, (3, 2), np.float32)
    assert not overwritable(a, (2, 3), np.float64)
    assert not overwritable(np.zeros((0, 3), np.float32), (0, 3), np.float32)
    assert not overwritable(np.asfortranarray(np.zeros((2, 3), np.float32)), (2, 3),
                            np.float32)
    read_only = a.copy()
    read_only.flags.writeable = False
    assert not overwritable(read_only, (2, 3), np.float32)
    # a CuPy array's flags have no `writeable` (always writable): no AttributeError
    gpu_like = SimpleNamespace(shape=(2, 3), dtype=np.dtype(np.float32), size=6,
                               flags=SimpleNamespace(c_contiguous=True))
    assert overwritable(gpu_like, (2, 3), np.float32)
