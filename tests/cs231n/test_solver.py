"""Solver on synthetic data (no CIFAR): overfitting, bookkeeping, course behaviour."""

import json

import numpy as np
import pytest

from normlab.cs231n.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from normlab.cs231n.layers import affine_backward, affine_forward, softmax_loss
from normlab.cs231n.solver import Solver


class SoftmaxModel:
    """A linear classifier with the course's model interface."""

    def __init__(self, D, C):
        self.params = {"W": 1e-3 * np.random.randn(D, C), "b": np.zeros(C)}

    def loss(self, X, y=None):
        scores, cache = affine_forward(X, self.params["W"], self.params["b"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        _, dW, db = affine_backward(dscores, cache)
        return loss, {"W": dW, "b": db}


def _data(N=50, D=60, C=5, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "X_train": rng.standard_normal((N, D)), "y_train": rng.integers(0, C, N),
        "X_val": rng.standard_normal((20, D)), "y_val": rng.integers(0, C, 20),
    }


def test_overfits_50_samples_linear_model():
    np.random.seed(0)
    data = _data()
    solver = Solver(SoftmaxModel(60, 5), data, update_rule="sgd_momentum",
                    optim_config={"learning_rate": 1e-1}, batch_size=10, num_epochs=15,
                    verbose=False)
    solver.train()
    assert solver.train_acc_history[-1] == 1.0
    assert solver.loss_history[-1] < 0.1 * solver.loss_history[0]


def test_overfits_50_samples_small_fc_net():
    """The course's sanity check: a small net drives training accuracy to 100%."""
    np.random.seed(231)
    data = _data(D=20)
    model = FullyConnectedNet([50, 50], input_dim=20, num_classes=5, weight_scale=1e-1,
                              dtype=np.float64)
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                    batch_size=25, num_epochs=20, verbose=False)
    solver.train()
    assert max(solver.train_acc_history) == 1.0


def test_history_lengths_lr_decay_and_best_params():
    np.random.seed(1)
    data = _data()
    model = SoftmaxModel(60, 5)
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 0.2},
                    lr_decay=0.5, batch_size=10, num_epochs=3, verbose=False)
    solver.train()
    assert len(solver.loss_history) == 3 * (50 // 10)
    # checked after the first iteration and at the end of each of the 3 epochs
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4
    assert solver.epoch == 3
    for config in solver.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(0.2 * 0.5**3)
    assert solver.best_val_acc == max(solver.val_acc_history)
    assert model.params is solver.best_params


def test_same_global_seed_same_run():
    histories = []
    for _ in range(2):
        np.random.seed(5)
        solver = Solver(SoftmaxModel(60, 5), _data(), batch_size=7, num_epochs=2,
                        num_train_samples=20, verbose=False)
        solver.train()
        histories.append(solver.loss_history)
    assert histories[0] == histories[1]


def test_check_accuracy_batches_and_subsamples():
    np.random.seed(2)
    data = _data()
    solver = Solver(SoftmaxModel(60, 5), data, verbose=False)
    X, y = data["X_train"], data["y_train"]
    full = solver.check_accuracy(X, y, batch_size=7)
    expected = np.mean(solver.model.loss(X).argmax(axis=1) == y)
    assert full == expected
    sub = solver.check_accuracy(X, y, num_samples=10)
    assert sub * 10 == pytest.approx(round(sub * 10))


def test_verbose_prints_iterations_and_epochs(capsys):
    np.random.seed(3)
    Solver(SoftmaxModel(60, 5), _data(), batch_size=25, num_epochs=1, print_every=1).train()
    out = capsys.readouterr().out
    assert "(Iteration 1 / 2) loss:" in out and "(Epoch 1 / 1) train acc:" in out


def test_checkpoints_are_npz_and_json(tmp_path):
    np.random.seed(4)
    name = str(tmp_path / "ckpt")
    solver = Solver(SoftmaxModel(60, 5), _data(), batch_size=25, num_epochs=2,
                    checkpoint_name=name, verbose=False)
    solver.train()
    with np.load(f"{name}_epoch_2.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["W", "b"]
    meta = json.loads((tmp_path / "ckpt_epoch_2.json").read_text())
    assert meta["epoch"] == 2 and meta["update_rule"] == "sgd"
    assert len(meta["loss_history"]) == 4


def test_two_layer_net_trains_with_solver():
    np.random.seed(231)
    model = TwoLayerNet(input_dim=60, hidden_dim=30, num_classes=5, weight_scale=1e-1)
    solver = Solver(model, _data(), optim_config={"learning_rate": 0.5}, batch_size=25,
                    num_epochs=15, verbose=False)
    solver.train()
    assert max(solver.train_acc_history) == 1.0


def test_errors():
    data = _data()
    model = SoftmaxModel(60, 5)
    with pytest.raises(ValueError, match="unrecognized 'learning_rate'"):
        Solver(model, data, learning_rate=1e-3)
    with pytest.raises(ValueError, match="expected update_rule among"):
        Solver(model, data, update_rule="lbfgs")
    with pytest.raises(ValueError, match=r"expected data with keys \['X_val', 'y_val'\]"):
        Solver(model, {"X_train": data["X_train"], "y_train": data["y_train"]})
