"""train_ch6 / train_ch5 / evaluate_accuracy on a small, learnable synthetic task."""

import math
import re

import matplotlib
import numpy as np
import pytest

from normlab.d2l import evaluate_accuracy, lenet_bn, train_ch5, train_ch6, xavier_init
from normlab.data import DataLoader
from normlab.optim import SGD

matplotlib.use("Agg")


def _loaders(n_train=200, n_test=100, batch_size=32, seed=0):
    """Ten classes, each a fixed random 28x28 template plus noise: LeNet-BN learns it fast."""
    rng = np.random.default_rng(seed)
    templates = rng.random((10, 1, 28, 28)).astype(np.float32)

    def make(n):
        y = rng.integers(0, 10, n)
        X = templates[y] + 0.3 * rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
        return X.astype(np.float32), y.astype(np.int64)

    Xtr, ytr = make(n_train)
    Xte, yte = make(n_test)
    return (DataLoader(Xtr, ytr, batch_size, shuffle=True, rng=seed),
            DataLoader(Xte, yte, batch_size, shuffle=False))


def test_train_ch6_learns_prints_and_plots_the_books_curves(tmp_path, capsys):
    # 20 batches per epoch: the moving averages (momentum 0.9) need a few dozen steps to
    # forget their initial values before prediction mode is accurate
    train_iter, test_iter = _loaders(batch_size=10)
    net = lenet_bn(rng=0)
    out = train_ch6(net, train_iter, test_iter, num_epochs=3, lr=0.9, rng=0,
                    plot_path=tmp_path / "curves.png")
    printed = capsys.readouterr().out
    m = re.search(r"loss (\d\.\d{3}), train acc (\d\.\d{3}), test acc (\d\.\d{3})", printed)
    assert m and float(m.group(2)) == round(out["train_acc"], 3)
    assert re.search(r"[\d.]+ examples/sec on cpu", printed)
    h = out["history"]
    assert h["epoch"] == [1, 2, 3] and len(h["test_acc"]) == 3
    # a point every 20 // 5 = 4 batches, as the book's Animator
    assert len(h["x"]) == 15 and h["x"][:2] == [0.2, 0.4] and h["x"][-1] == 3.0
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert out["test_acc"] > 0.9 and out["train_acc"] > 0.9
    assert out["test_acc"] == evaluate_accuracy(net, test_iter)
    labels = [line.get_label() for line in out["figure"].axes[0].get_lines()]
    assert labels == ["train loss", "train acc", "test acc"]
    assert (tmp_path / "curves.png").stat().st_size > 1000
    matplotlib.pyplot.close(out["figure"])


def test_train_ch6_redraws_weights_xavier_uniform():
    net = lenet_bn(rng=1)
    before = net[0].params["weight"].copy()
    xavier_init(net, rng=2)
    w = net[0].params["weight"]
    bound = math.sqrt(6.0 / (1 * 25 + 6 * 25))
    assert not np.array_equal(w, before) and np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.8 * bound  # spread over the whole interval
    assert np.array_equal(net[0].params["bias"], lenet_bn(rng=1)[0].params["bias"])


def test_train_ch5_first_edition_signature(capsys):
    train_iter, test_iter = _loaders(n_train=64, n_test=32)
    net = lenet_bn(rng=0)
    trainer = SGD(net.parameters(), lr=0.9)
    history = train_ch5(net, train_iter, test_iter, 32, trainer, "cpu", 2)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch")]
    assert len(lines) == 2 and re.fullmatch(
        r"epoch 2, loss \d+\.\d{4}, train acc \d\.\d{3}, test acc \d\.\d{3}, time [\d.]+ sec",
        lines[1])
    assert history["epoch"] == [1, 2]


def test_evaluate_accuracy_uses_prediction_mode_and_restores_it():
    _, test_iter = _loaders(n_test=40)
    net = lenet_bn(rng=0)
    net.train()
    acc = evaluate_accuracy(net, test_iter)
    assert net.training and net[1].training
    net.eval()
    manual = np.mean(np.concatenate([net(X).argmax(axis=1) == y for X, y in test_iter]))
    assert acc == pytest.approx(manual)
    assert not net.training


def test_errors():
    train_iter, test_iter = _loaders(n_train=32, n_test=32)
    with pytest.raises(ValueError, match="train_ch6: expected num_epochs a positive int"):
        train_ch6(lenet_bn(), train_iter, test_iter, 0, 0.1)
    with pytest.raises(ValueError, match="evaluate_accuracy: expected at least one batch"):
        evaluate_accuracy(lenet_bn(), [])
