import numpy as np
import pytest

from normlab import backend


def test_namespace_of_numpy_and_none():
    assert backend.namespace(np.zeros(2), None, 3.0) is np


def test_scatter_add_accumulates_repeats():
    t = np.zeros(3)
    backend.scatter_add(t, np.array([0, 0, 2]), np.array([1.0, 2.0, 5.0]))
    np.testing.assert_array_equal(t, [3.0, 0.0, 5.0])


def test_to_device_rejects_unknown_device():
    with pytest.raises(ValueError, match="expected device 'cpu' or 'cuda', got 'gpu'"):
        backend.to_device(np.zeros(1), "gpu")


def test_to_numpy_and_device_of():
    a = backend.to_numpy([1, 2])
    assert isinstance(a, np.ndarray) and backend.device_of(a) == "cpu"


@pytest.mark.gpu
def test_round_trip_to_cuda():
    a = np.arange(4.0)
    g = backend.to_device(a, "cuda")
    assert backend.device_of(g) == "cuda" and backend.namespace(g).__name__ == "cupy"
    np.testing.assert_array_equal(backend.to_numpy(g), a)
