"""The course's update-rule checks (FullyConnectedNets notebook), with its expected arrays."""

import numpy as np
import pytest
from _course_cells import SGD_MOMENTUM_NEXT_W, SGD_MOMENTUM_VELOCITY

from normlab.cs231n import optim
from normlab.cs231n.gradient_check import rel_error

N, D = 4, 5


def _w_dw():
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    return w, dw


def test_sgd_momentum_matches_course_numbers():
    w, dw = _w_dw()
    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    next_w, config = optim.sgd_momentum(w, dw, {"learning_rate": 1e-3, "velocity": v})
    expected_next_w = np.asarray(SGD_MOMENTUM_NEXT_W)
    expected_velocity = np.asarray(SGD_MOMENTUM_VELOCITY)
    assert rel_error(next_w, expected_next_w) < 1e-8
    assert rel_error(config["velocity"], expected_velocity) < 1e-8


def test_rmsprop_matches_course_numbers():
    w, dw = _w_dw()
    cache = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    next_w, config = optim.rmsprop(w, dw, {"learning_rate": 1e-2, "cache": cache})
    expected_next_w = np.asarray([
        [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
        [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
        [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
        [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619]])
    expected_cache = np.asarray([
        [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
        [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
        [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
        [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926]])
    assert rel_error(next_w, expected_next_w) < 1e-6  # course: "around e-7 or less"
    assert rel_error(config["cache"], expected_cache) < 1e-8


def test_adam_matches_course_numbers_and_increments_t_first():
    w, dw = _w_dw()
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    next_w, config = optim.adam(w, dw, {"learning_rate": 1e-2, "m": m, "v": v, "t": 5})
    expected_next_w = np.asarray([
        [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
        [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
        [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
        [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459]])
    expected_v = np.asarray([
        [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
        [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
        [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
        [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966]])
    expected_m = np.asarray([
        [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
        [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
        [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
        [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85]])
    assert rel_error(next_w, expected_next_w) < 1e-6
    assert rel_error(config["v"], expected_v) < 1e-8
    assert rel_error(config["m"], expected_m) < 1e-8
    assert config["t"] == 6


def test_defaults_are_the_courses():
    w, dw = _w_dw()
    assert optim.sgd(w, dw)[1] == {"learning_rate": 1e-2}
    c = optim.sgd_momentum(w, dw)[1]
    assert (c["learning_rate"], c["momentum"]) == (1e-2, 0.9)
    c = optim.rmsprop(w, dw)[1]
    assert (c["learning_rate"], c["decay_rate"], c["epsilon"]) == (1e-2, 0.99, 1e-8)
    c = optim.adam(w, dw)[1]
    assert (c["learning_rate"], c["beta1"], c["beta2"], c["epsilon"], c["t"]) == (
        1e-3, 0.9, 0.999, 1e-8, 1)


def test_sgd_step_and_first_adam_step_size():
    w, dw = _w_dw()
    np.testing.assert_allclose(optim.sgd(w, dw, {"learning_rate": 0.5})[0], w - 0.5 * dw)
    # bias correction makes the first Adam step lr * sign(dw) (up to epsilon)
    next_w, _ = optim.adam(w, dw, {"learning_rate": 0.1})
    np.testing.assert_allclose(next_w, w - 0.1 * np.sign(dw), rtol=0, atol=1e-6)


def test_config_is_updated_in_place_for_the_solver():
    w, dw = _w_dw()
    config = {}
    _, returned = optim.adam(w, dw, config)
    assert returned is config and config["t"] == 1


def test_inputs_are_not_mutated():
    w, dw = _w_dw()
    w0, dw0 = w.copy(), dw.copy()
    for rule in (optim.sgd, optim.sgd_momentum, optim.rmsprop, optim.adam):
        rule(w, dw, None)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(dw, dw0)


def test_errors():
    w, dw = _w_dw()
    with pytest.raises(ValueError, match="expected dw with the shape of w"):
        optim.adam(w, dw[:2])
    with pytest.raises(TypeError, match="expected config to be a dict"):
        optim.sgd(w, dw, [("learning_rate", 1.0)])
