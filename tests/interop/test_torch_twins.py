"""Every model against its PyTorch twin: keys, shapes, parameter counts, 3 SGD steps of parity.

The twins are written here with ``torch.nn`` following the key layouts documented in
``normlab.models``; weights go across with ``to_torch_state_dict``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch import nn as tnn

from normlab import models
from normlab.interop import to_torch_state_dict


# ---------------------------------------------------------------- twins
def tnorm(kind, C, spatial):
    """The documented make_norm table, restated with torch layers."""
    if kind == "batch":
        return tnn.BatchNorm2d(C) if spatial == 2 else tnn.BatchNorm1d(C)
    if kind == "layer":
        return tnn.LayerNorm(C) if spatial == 0 else tnn.GroupNorm(1, C)
    if kind == "group":
        return tnn.GroupNorm(models.group_count(C, 8 if spatial == 0 else 2), C)
    return tnn.InstanceNorm2d(C, affine=True)


def seq(*layers):
    return tnn.Sequential(*[m for m in layers if m is not None])


def twin_mlp(hidden, input_dim, C, norm):
    dims = (input_dim, *hidden)
    layers = [tnn.Flatten()]
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [tnn.Linear(a, b), tnorm(norm, b, 0) if norm else None, tnn.ReLU()]
    return seq(*layers, tnn.Linear(dims[-1], C))


def twin_convnet(input_dim, F, k, hidden, C, norm):
    c, h, w = input_dim
    return seq(tnn.Conv2d(c, F, k, padding=(k - 1) // 2), tnorm(norm, F, 2) if norm else None,
               tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(F * (h // 2) * (w // 2), hidden),
               tnn.ReLU(), tnn.Linear(hidden, C))


def twin_lenet(norm, c_in, C):
    bn = (lambda n, s: tnorm(norm, n, s)) if norm else (lambda n, s: None)
    return seq(tnn.Conv2d(c_in, 6, 5, padding=2), bn(6, 2), tnn.Sigmoid(), tnn.AvgPool2d(2, 2),
               tnn.Conv2d(6, 16, 5), bn(16, 2), tnn.Sigmoid(), tnn.AvgPool2d(2, 2), tnn.Flatten(),
               tnn.Linear(400, 120), bn(120, 0), tnn.Sigmoid(), tnn.Linear(120, 84), bn(84, 0),
               tnn.Sigmoid(), tnn.Linear(84, C))


class TBlock(tnn.Module):
    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(c)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or cin != c:
            self.downsample = tnn.Sequential(tnn.Conv2d(cin, c, 1, stride, bias=False),
                                             tnn.BatchNorm2d(c))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TResNet(tnn.Module):
    def __init__(self, blocks, widths, imagenet, cin, C):
        super().__init__()
        k, s, p = (7, 2, 3) if imagenet else (3, 1, 1)
        self.conv1 = tnn.Conv2d(cin, widths[0], k, s, p, bias=False)
        self.bn1 = tnn.BatchNorm2d(widths[0])
        self.relu = tnn.ReLU()
        self.maxpool = tnn.MaxPool2d(3, 2, 1) if imagenet else tnn.Identity()
        c = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            setattr(self, f"layer{i + 1}", tnn.Sequential(*[
                TBlock(c if b == 0 else w, w, (1 if i == 0 else 2) if b == 0 else 1)
                for b in range(n)]))
            c = w
        self.n_stages = len(blocks)
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(c, C)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.n_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TLinearBase(tnn.Module):
    def __init__(self, L, C):
        super().__init__()
        self.linear = tnn.Linear(L, C)

    def forward(self, x):
        return self.linear(x.reshape(x.shape[0], -1))


class TMLPBase(tnn.Module):
    def __init__(self, L, C, hidden, norm):
        super().__init__()
        self.linear1 = tnn.Linear(L, hidden)
        self.norm1 = tnorm(norm, hidden, 0) if norm else tnn.Identity()
        self.linear2 = tnn.Linear(hidden, hidden)
        self.norm2 = tnorm(norm, hidden, 0) if norm else tnn.Identity()
        self.linear3 = tnn.Linear(hidden, C)

    def forward(self, x):
        h1 = self.norm1(self.linear1(x.reshape(x.shape[0], -1))).relu()
        return self.linear3(h1 + self.norm2(self.linear2(h1)).relu())


class TConvBase(tnn.Module):
    def __init__(self, L, C, ch, norm):
        super().__init__()
        self.conv1 = tnn.Conv1d(1, ch, 5, 2, 1)
        self.norm1 = tnorm(norm, ch, 1) if norm else tnn.Identity()
        self.conv2 = tnn.Conv1d(ch, ch, 3, 2, 1)
        self.norm2 = tnorm(norm, ch, 1) if norm else tnn.Identity()
        self.conv3 = tnn.Conv1d(ch, ch, 3, 2, 1)
        self.norm3 = tnorm(norm, ch, 1) if norm else tnn.Identity()
        for _ in range(3):
            L = (L + 2 - (5 if _ == 0 else 3)) // 2 + 1
        self.linear = tnn.Linear(ch * L, C)

    def forward(self, x):
        h = x.reshape(x.shape[0], 1, -1)
        for i in (1, 2, 3):
            h = getattr(self, f"norm{i}")(getattr(self, f"conv{i}")(h)).relu()
        return self.linear(h.flatten(1))


# name -> (normlab builder, torch twin builder, per-sample input shape); small sizes
PAIRS = {
    "mlp": (lambda: models.FullyConnectedNet([7, 5], 12, 4, norm="batch", dtype=np.float64, rng=0),
            lambda: twin_mlp([7, 5], 12, 4, "batch"), (3, 2, 2)),
    "mlp-layer": (lambda: models.FullyConnectedNet([6], 12, 4, norm="layer", dtype=np.float64, rng=0),
                  lambda: twin_mlp([6], 12, 4, "layer"), (12,)),
    "mlp-group": (lambda: models.FullyConnectedNet([8], 12, 4, norm="group", dtype=np.float64, rng=0),
                  lambda: twin_mlp([8], 12, 4, "group"), (12,)),
    "convnet": (lambda: models.ThreeLayerConvNet((2, 6, 6), 3, 3, 5, 4, norm="batch",
                                                 dtype=np.float64, rng=0),
                lambda: twin_convnet((2, 6, 6), 3, 3, 5, 4, "batch"), (2, 6, 6)),
    "convnet-instance": (lambda: models.ThreeLayerConvNet((2, 6, 6), 4, 3, 5, 4, norm="instance",
                                                          dtype=np.float64, rng=0),
                         lambda: twin_convnet((2, 6, 6), 4, 3, 5, 4, "instance"), (2, 6, 6)),
    "lenet": (lambda: models.LeNet(norm="batch", dtype=np.float64, rng=0),
              lambda: twin_lenet("batch", 1, 10), (1, 28, 28)),
    "resnet20": (lambda: models.resnet20(num_classes=4, dtype=np.float64, rng=0),
                 lambda: TResNet((3, 3, 3), (16, 32, 64), False, 3, 4), (3, 8, 8)),
    # base_width 16: resnet18's stem and stages at a quarter width, so 3 float64 steps stay fast
    "resnet18": (lambda: models.resnet18(num_classes=10, base_width=16, dtype=np.float64, rng=0),
                 lambda: TResNet((2, 2, 2, 2), (16, 32, 64, 128), True, 3, 10), (3, 32, 32)),
    "mnist1d-linear": (lambda: models.LinearBase(dtype=np.float64, rng=0),
                       lambda: TLinearBase(40, 10), (40,)),
    "mnist1d-mlp": (lambda: models.MLPBase(hidden=16, norm="batch", dtype=np.float64, rng=0),
                    lambda: TMLPBase(40, 10, 16, "batch"), (40,)),
    "mnist1d-cnn": (lambda: models.ConvBase(channels=4, norm="batch", dtype=np.float64, rng=0),
                    lambda: TConvBase(40, 10, 4, "batch"), (1, 40)),
}
# Full default sizes for the counts (no forward pass needed).
FULL = {
    "resnet18-full": (lambda: models.resnet18(rng=0),
                      lambda: TResNet((2, 2, 2, 2), (64, 128, 256, 512), True, 3, 10)),
    "resnet32": (lambda: models.resnet32(rng=0), lambda: TResNet((5,) * 3, (16, 32, 64), False, 3, 10)),
    "resnet56": (lambda: models.resnet56(rng=0), lambda: TResNet((9,) * 3, (16, 32, 64), False, 3, 10)),
    "mnist1d-cnn-full": (lambda: models.ConvBase(rng=0), lambda: TConvBase(40, 10, 25, None)),
    "mnist1d-mlp-full": (lambda: models.MLPBase(rng=0), lambda: TMLPBase(40, 10, 100, None)),
    "convnet-full": (lambda: models.ThreeLayerConvNet(rng=0),
                     lambda: twin_convnet((3, 32, 32), 32, 7, 100, 10, None)),
    "lenet-plain": (lambda: models.LeNet(norm=None, rng=0), lambda: twin_lenet(None, 1, 10)),
}


@pytest.mark.parametrize("name", list(PAIRS) + list(FULL))
def test_keys_shapes_and_parameter_count_equal_the_twin(name):
    make, make_twin = (PAIRS.get(name) or FULL[name])[:2]
    model, twin = make(), make_twin()
    ours = {k: tuple(np.shape(v)) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert ours == theirs
    assert model.num_parameters() == sum(p.numel() for p in twin.parameters())
    # same order too: optimizer state_dicts are keyed by parameter index
    assert [n for n, _, _ in model.named_parameters()] == [n for n, _ in twin.named_parameters()]


# ---------------------------------------------------------------- parity
def softmax_cross_entropy(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    d = np.exp(logp)
    d[np.arange(len(y)), y] -= 1.0
    return -logp[np.arange(len(y)), y].mean(), d / len(y)


def close(ours, theirs, what):
    """rtol 1e-7; entries 100x below the array's largest are compared at 1e-9 of that largest.

    The two libraries sum in different orders, so round-off is relative to the largest
    terms of a sum: an entry that cancels down to 1e-5 next to entries of 1e-2 carries
    absolute, not relative, error. Gradients that are exactly zero in exact arithmetic
    (a bias right before a training-mode BatchNorm) are round-off on both sides, hence
    the 1e-14 floor.
    """
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    scale = float(np.max(np.abs(theirs))) if np.size(theirs) else 0.0
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=max(1e-9 * scale, 1e-14),
                               err_msg=what)


@pytest.mark.parametrize("name", list(PAIRS))
def test_three_sgd_steps_match_the_twin(name):
    make, make_twin, shape = PAIRS[name]
    torch.manual_seed(0)
    model, twin = make(), make_twin().double()
    twin.load_state_dict(to_torch_state_dict(model))
    rng = np.random.default_rng(1)
    N = 4  # resnet18 on 32x32 ends at 1x1: BN then averages N values per channel
    x = rng.standard_normal((N, *shape))
    y = rng.integers(0, 4, N)
    lr = 0.1
    opt = torch.optim.SGD(twin.parameters(), lr=lr)
    for step in range(3):
        out = model(x)
        xt = torch.tensor(x, requires_grad=True)
        out_t = twin(xt)
        close(out, out_t, f"logits, step {step}")
        loss, dlogits = softmax_cross_entropy(out, y)
        loss_t = TF.cross_entropy(out_t, torch.tensor(y))
        close(loss, loss_t, f"loss, step {step}")
        opt.zero_grad()
        loss_t.backward()
        close(model.backward(dlogits), xt.grad, f"dx, step {step}")
        tgrads = dict(twin.named_parameters())
        for pname, _, g in model.named_parameters():
            close(g, tgrads[pname].grad, f"grad of {pname}, step {step}")
        for ref in model.parameters():
            ref.value = ref.value - lr * ref.grad
        opt.step()
    theirs = twin.state_dict()
    for k, v in model.state_dict().items():  # params and BN buffers after 3 steps
        close(v, theirs[k], k)
    model.eval(), twin.eval()
    close(model(x), twin(torch.tensor(x)), "eval logits")
