"""The book's training loop: ``train_ch6`` (second edition) and ``train_ch5`` (first edition).

Both train a classifier with softmax cross-entropy (mean over the batch) and mini-batch SGD,
report per epoch the training loss, training accuracy (in training mode, on the batches as
they were trained) and test accuracy (``evaluate_accuracy``, prediction mode), and plot the
book's three curves (``train loss``, ``train acc``, ``test acc``) against the epoch. The
backward pass is normlab's (``net.backward``); the book's autograd is not needed.
"""

from __future__ import annotations

import time

import numpy as np

from normlab.errors import NormlabValueError
from normlab import init, nn
from normlab._random import as_generator
from normlab.optim import SGD

__all__ = ["evaluate_accuracy", "xavier_init", "train_ch6", "train_ch5", "plot_curves"]


def _accuracy_count(y_hat, y) -> int:
    return int((np.asarray(y_hat).argmax(axis=1) == np.asarray(y)).sum())


def evaluate_accuracy(net, data_iter) -> float:
    """Fraction of correct predictions over ``data_iter`` in prediction mode (``net.eval()``);
    the net's mode is restored afterwards."""
    was_training = net.training
    net.eval()
    correct = total = 0
    try:
        for X, y in data_iter:
            correct += _accuracy_count(net(X), y)
            total += len(y)
    finally:
        net.train(was_training)
    if total == 0:
        raise NormlabValueError("evaluate_accuracy: expected at least one batch, got an empty data_iter.")
    return correct / total


def xavier_init(net, rng=None) -> None:
    """The book's ``init_weights``: Xavier-uniform weights of every Linear and Conv2d
    (biases keep their values)."""
    rng = as_generator(rng)
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            w = m.params["weight"]
            m.params["weight"] = init.xavier_uniform(w.shape, rng=rng, dtype=w.dtype)


def _epoch(net, loss, updater, train_iter, epoch, history):
    """One pass over ``train_iter``; appends the book's intra-epoch points to ``history``."""
    net.train()
    l_sum = correct = n = 0
    num_batches = len(train_iter)
    for i, (X, y) in enumerate(train_iter):
        y_hat = net(X)
        l = loss(y_hat, y)  # noqa: E741 (the book's name)
        net.backward(loss.backward())
        updater.step()
        l_sum += float(l) * len(y)
        correct += _accuracy_count(y_hat, y)
        n += len(y)
        if (i + 1) % max(num_batches // 5, 1) == 0 or i == num_batches - 1:
            history["x"].append(epoch + (i + 1) / num_batches)
            history["train_loss"].append(l_sum / n)
            history["train_acc"].append(correct / n)
    if n == 0:
        raise NormlabValueError("train: expected at least one training batch, got an empty train_iter.")
    return l_sum / n, correct / n, n


def plot_curves(history, num_epochs, path=None):
    """The book's figure: train loss and train acc (per fifth of an epoch) and test acc (per
    epoch) against the epoch. Returns the matplotlib Figure; saved to ``path`` if given."""
    import matplotlib.pyplot as plt  # imported here: only plotting needs matplotlib

    fig, ax = plt.subplots(figsize=(3.5, 2.5))
    ax.plot(history["x"], history["train_loss"], "-", label="train loss")
    ax.plot(history["x"], history["train_acc"], "m--", label="train acc")
    ax.plot(history["epoch"], history["test_acc"], "g-.", label="test acc")
    ax.set_xlabel("epoch")
    ax.set_xlim(1, max(num_epochs, 1 + 1e-9))
    ax.grid(True)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def _check_run(owner, num_epochs):
    if isinstance(num_epochs, bool) or not isinstance(num_epochs, (int, np.integer)) \
            or num_epochs < 1:
        raise NormlabValueError(f"{owner}: expected num_epochs a positive int, got {num_epochs!r}.")


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device="cpu", *, init_weights=True,
              plot=True, plot_path=None, rng=None):
    """Train ``net`` with SGD(lr) on softmax cross-entropy, the book's ``d2l.train_ch6``.

    As in the book, the weights of every Linear and Conv2d are first re-drawn Xavier-uniform
    (``init_weights=False`` keeps them), and the last line printed is ``loss ..., train acc
    ..., test acc ...`` followed by the throughput.

    Parameters
    ----------
    net : normlab.nn.Module
    train_iter, test_iter : re-iterable loaders of ``(X, y)``
    num_epochs : int
    lr : float
    device : str
        Only reported (normlab moves modules with ``net.to``).
    init_weights, plot : bool
    plot_path : path, optional
        Save the figure there.
    rng : None, int or np.random.Generator
        Randomness of the Xavier initialisation.

    Returns
    -------
    dict with ``train_loss``, ``train_acc``, ``test_acc`` (final values), ``history`` (the
    plotted points: ``x``, ``train_loss``, ``train_acc``, ``epoch``, ``test_acc``) and
    ``figure`` (a matplotlib Figure, or None with ``plot=False``).
    """
    _check_run("train_ch6", num_epochs)
    if init_weights:
        xavier_init(net, rng)
    print("training on", device)
    updater = SGD(net.parameters(), lr=float(lr))
    loss = nn.CrossEntropyLoss()
    history = {"x": [], "train_loss": [], "train_acc": [], "epoch": [], "test_acc": []}
    seconds = 0.0
    examples = 0
    for epoch in range(num_epochs):
        t0 = time.perf_counter()
        train_l, train_acc, n = _epoch(net, loss, updater, train_iter, epoch, history)
        seconds += time.perf_counter() - t0
        examples += n
        test_acc = evaluate_accuracy(net, test_iter)
        history["epoch"].append(epoch + 1)
        history["test_acc"].append(test_acc)
    print(f"loss {train_l:.3f}, train acc {train_acc:.3f}, test acc {test_acc:.3f}")
    print(f"{examples / max(seconds, 1e-12):.1f} examples/sec on {device}")
    fig = plot_curves(history, num_epochs, plot_path) if plot else None
    return {"train_loss": train_l, "train_acc": train_acc, "test_acc": test_acc,
            "history": history, "figure": fig}


def train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs):
    """The first edition's ``d2lzh.train_ch5`` signature: ``trainer`` is a normlab optimizer
    over ``net.parameters()`` (the book's ``gluon.Trainer``), ``ctx`` is only reported.

    Prints ``epoch %d, loss %.4f, train acc %.3f, test acc %.3f, time %.1f sec`` per epoch,
    as the book does; returns the history (no weight re-initialisation, no figure).
    ``batch_size`` is accepted for the signature; the loss is already a batch mean.
    """
    _check_run("train_ch5", num_epochs)
    print("training on", ctx)
    loss = nn.CrossEntropyLoss()
    history = {"x": [], "train_loss": [], "train_acc": [], "epoch": [], "test_acc": []}
    for epoch in range(num_epochs):
        start = time.perf_counter()
        train_l, train_acc, _ = _epoch(net, loss, trainer, train_iter, epoch, history)
        test_acc = evaluate_accuracy(net, test_iter)
        history["epoch"].append(epoch + 1)
        history["test_acc"].append(test_acc)
        print("epoch %d, loss %.4f, train acc %.3f, test acc %.3f, time %.1f sec"
              % (epoch + 1, train_l, train_acc, test_acc, time.perf_counter() - start))
    return history
