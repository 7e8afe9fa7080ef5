"""Course checks for TwoLayerNet, FullyConnectedNet and ThreeLayerConvNet."""

import numpy as np
import pytest

from normlab.cs231n.classifiers.cnn import ThreeLayerConvNet
from normlab.cs231n.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from normlab.cs231n.gradient_check import eval_numerical_gradient, rel_error
from normlab.cs231n.solver import Solver


def _max_grad_error(model, X, y):
    loss, grads = model.loss(X, y)
    errors = {}
    for name in sorted(grads):
        f = lambda _: model.loss(X, y)[0]  # noqa: E731 (the course's closure idiom)
        num = eval_numerical_gradient(f, model.params[name], verbose=False, h=1e-5)
        errors[name] = rel_error(num, grads[name])
    return errors


def test_two_layer_net_course_check():
    np.random.seed(231)
    N, D, H, C = 3, 5, 50, 7
    X = np.random.randn(N, D)
    y = np.random.randint(C, size=N)
    std = 1e-3
    model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=std)
    assert abs(model.params["W1"].std() - std) < std / 10
    assert abs(model.params["W2"].std() - std) < std / 10
    assert np.all(model.params["b1"] == 0) and np.all(model.params["b2"] == 0)

    model.params["W1"] = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    model.params["b1"] = np.linspace(-0.1, 0.9, num=H)
    model.params["W2"] = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    model.params["b2"] = np.linspace(-0.9, 0.1, num=C)
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    scores = model.loss(X)
    correct_scores = np.asarray(
        [[11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434, 15.33206765,
          16.09215096],
         [12.05769098, 12.74614105, 13.43459113, 14.1230412, 14.81149128, 15.49994135,
          16.18839143],
         [12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506,
          16.2846319]])
    assert np.abs(scores - correct_scores).sum() < 1e-6
    y = np.asarray([0, 5, 1])
    loss, _ = model.loss(X, y)
    assert abs(loss - 3.4702243556) < 1e-10
    model.reg = 1.0
    loss, _ = model.loss(X, y)
    assert abs(loss - 26.5948426952) < 1e-10


def _linspace_two_layer_net():
    N, D, H, C = 3, 5, 50, 7
    model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C)
    model.params["W1"] = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    model.params["b1"] = np.linspace(-0.1, 0.9, num=H)
    model.params["W2"] = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    model.params["b2"] = np.linspace(-0.9, 0.1, num=C)
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    return model, X, np.asarray([0, 5, 1])


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_net_gradients(reg):
    """The course checks the linspace-initialised model; with a loss of ~26 and h = 1e-5
    round-off alone is ~1e-7 relative on the smallest W1 entries."""
    model, X, y = _linspace_two_layer_net()
    model.reg = reg
    for name, err in _max_grad_error(model, X, y).items():
        assert err < 1e-6, name


def _fc_problem():
    np.random.seed(231)
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X = np.random.randn(N, D)
    y = np.random.randint(C, size=(N,))
    return X, y, dict(input_dim=D, num_classes=C, weight_scale=5e-2, dtype=np.float64)


def test_fc_net_course_check():
    """Seeded like the course's cell (both models built in one loop, no reseed): the same
    initial losses, so W1, W2, W3 are drawn in order from the global stream."""
    X, y, kw = _fc_problem()
    for reg, initial_loss in [(0.0, 2.3004790897684924), (3.14, 7.052114776533016)]:
        model = FullyConnectedNet([20, 30], reg=reg, **kw)
        loss, _ = model.loss(X, y)
        assert abs(loss - initial_loss) < 1e-10
        errors = _max_grad_error(model, X, y)
        if reg == 0.0:
            # the course prints 'W2 relative error: 2.21e-05' here: a ReLU input lies
            # within h of its kink; every other error is below 1e-6
            assert 1e-5 < errors.pop("W2") < 3e-5
        for name, err in errors.items():
            assert err < 1e-6, name


def test_fc_net_gradients_away_from_kinks():
    np.random.seed(0)
    X = np.random.randn(3, 6)
    y = np.random.randint(4, size=3)
    model = FullyConnectedNet([5, 7], input_dim=6, num_classes=4, reg=0.3, weight_scale=0.5,
                              dtype=np.float64)
    for name, err in _max_grad_error(model, X, y).items():
        assert err < 1e-7, name


@pytest.mark.parametrize("normalization", ["batchnorm", "layernorm"])
def test_fc_net_with_normalization_gradients(normalization):
    X, y, kw = _fc_problem()
    X = np.random.randn(4, 15)  # batch norm needs more than two rows to be well posed
    y = np.random.randint(10, size=4)
    model = FullyConnectedNet([6, 5], normalization=normalization, reg=0.1, **kw)
    assert {"gamma1", "beta1", "gamma2", "beta2"} <= set(model.params)
    assert "gamma3" not in model.params
    for name, err in _max_grad_error(model, X, y).items():
        assert err < 1e-5, name


def test_fc_net_with_seeded_dropout_gradients():
    X, y, kw = _fc_problem()
    model = FullyConnectedNet([20, 30], dropout_keep_ratio=0.5, seed=123, **kw)
    for name, err in _max_grad_error(model, X, y).items():
        assert err < 1e-6, name


def test_fc_net_weights_drawn_in_layer_order_and_dtype():
    np.random.seed(0)
    model = FullyConnectedNet([4, 3], input_dim=5, num_classes=2, weight_scale=0.5)
    np.random.seed(0)
    W1 = 0.5 * np.random.randn(5, 4)
    W2 = 0.5 * np.random.randn(4, 3)
    np.testing.assert_allclose(model.params["W1"], W1.astype(np.float32))
    np.testing.assert_allclose(model.params["W2"], W2.astype(np.float32))
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert model.loss(np.ones((2, 5))).dtype == np.float32


def test_fc_net_bn_test_mode_uses_running_stats():
    np.random.seed(0)
    model = FullyConnectedNet([6], input_dim=4, num_classes=3, normalization="batchnorm",
                              dtype=np.float64)
    X = np.random.randn(8, 4)
    model.loss(X, np.zeros(8, dtype=int))
    assert model.bn_params[0]["mode"] == "train" and "running_mean" in model.bn_params[0]
    before = model.bn_params[0]["running_mean"].copy()
    model.loss(X)
    assert model.bn_params[0]["mode"] == "test"
    np.testing.assert_array_equal(model.bn_params[0]["running_mean"], before)


def test_fc_net_errors():
    with pytest.raises(ValueError, match="expected normalization None, 'batchnorm'"):
        FullyConnectedNet([3], normalization="groupnorm")
    with pytest.raises(ValueError, match="expected dropout_keep_ratio"):
        FullyConnectedNet([3], dropout_keep_ratio=0)


def test_three_layer_convnet_initial_loss_and_gradients():
    np.random.seed(231)
    X = np.random.randn(2, 3, 6, 6)
    y = np.random.randint(10, size=2)
    model = ThreeLayerConvNet(input_dim=(3, 6, 6), num_filters=2, filter_size=3,
                              hidden_dim=5, dtype=np.float64)
    loss, _ = model.loss(X, y)
    assert abs(loss - np.log(10)) < 0.01  # course sanity check: ~log(C) at small weights
    assert model.loss(X).shape == (2, 10)
    model = ThreeLayerConvNet(input_dim=(3, 6, 6), num_filters=2, filter_size=3,
                              hidden_dim=5, weight_scale=1e-1, reg=0.5, dtype=np.float64)
    for name, err in _max_grad_error(model, X, y).items():
        assert err < 1e-6, name


def test_three_layer_convnet_overfits_tiny_data():
    np.random.seed(231)
    rng = np.random.default_rng(0)
    data = {"X_train": rng.standard_normal((20, 3, 8, 8)), "y_train": rng.integers(0, 10, 20),
            "X_val": rng.standard_normal((10, 3, 8, 8)), "y_val": rng.integers(0, 10, 10)}
    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=8, filter_size=3,
                              hidden_dim=50, weight_scale=1e-1, dtype=np.float64)
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                    batch_size=10, num_epochs=15, verbose=False)
    solver.train()
    assert max(solver.train_acc_history) == 1.0


def test_three_layer_convnet_casts_input_to_its_dtype():
    np.random.seed(0)
    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=4, hidden_dim=10)
    X = np.random.randn(2, 3, 8, 8)  # float64, as get_CIFAR10_data returns
    loss, grads = model.loss(X, np.array([1, 2]))
    assert all(g.dtype == np.float32 for g in grads.values())
    assert model.loss(X).dtype == np.float32
