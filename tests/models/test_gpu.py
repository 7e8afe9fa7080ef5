"""The models of the speed table train and evaluate on CuPy exactly as on NumPy.

float64: one training step (forward, cross-entropy, backward, SGD with momentum and weight
decay; the same loop as ``benchmarks/bench_models.py``), then one more training forward and
an eval forward. The two runs agree to round-off in the loss, every updated parameter and
every running statistic, and the logits. Marked ``gpu`` (skipped without CuPy and a CUDA
device; CI has none).
"""

from __future__ import annotations

import numpy as np
import pytest

from normlab import backend, models, nn, optim

pytestmark = pytest.mark.gpu

MODELS = {
    "resnet20": (lambda: models.resnet20(rng=0), (3, 32, 32)),
    "resnet18": (lambda: models.resnet18(rng=0), (3, 32, 32)),
    "lenet": (lambda: models.LeNet(norm="batch", rng=0), (1, 28, 28)),
    "convnet": (lambda: models.ThreeLayerConvNet(rng=0), (3, 32, 32)),
    "mlp-bn-dropout": (lambda: models.FullyConnectedNet((20, 20), input_dim=48, norm="batch",
                                                        dropout=0.5, rng=0), (48,)),
}



def _run(name: str, device: str):
    build, shape = MODELS[name]
    m = build().to(device=device, dtype=np.float64)
    rng = np.random.default_rng(1)
    x = backend.to_device(rng.standard_normal((6,) + shape), device)
    y = backend.to_device(rng.integers(0, 10, 6), device)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    m.train()
    loss = float(loss_fn(m(x), y))
    m.backward(loss_fn.backward())
    opt.step()
    again = m(x)
    m.eval()
    logits = m(x)
    state = {k: backend.to_numpy(v) for k, v in m.state_dict().items()}
    devices = {backend.device_of(v) for v in m.state_dict().values()} | {
        backend.device_of(again), backend.device_of(logits)}
    return loss, state, backend.to_numpy(again), backend.to_numpy(logits), devices


@pytest.mark.parametrize("name", list(MODELS))
def test_train_step_on_cuda_matches_cpu(name):
    loss, state, again, logits, _ = _run(name, "cpu")
    g_loss, g_state, g_again, g_logits, devices = _run(name, "cuda")
    assert devices == {"cuda"}, f"arrays left the device: {devices}"
    np.testing.assert_allclose(g_loss, loss, rtol=1e-10)
    assert g_state.keys() == state.keys()
    for k in state:
        np.testing.assert_allclose(g_state[k], state[k], rtol=1e-9, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(g_again, again, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g_logits, logits, rtol=1e-9, atol=1e-12)
