"""Every registered module (normlab.nn.catalog.CASES) on CuPy equals itself on NumPy.

float64, one training forward + backward and one eval forward per case: the output, the
input gradient, every parameter gradient and every buffer (running statistics) after the
step agree with the CPU run to round-off (CUDA's reductions add in another order, so not
bit for bit), and every array the module holds stays on the device. Marked ``gpu``: skipped
where CuPy or a CUDA device is missing (CI has none); run with ``pytest -m gpu``.
"""

from __future__ import annotations

import numpy as np
import pytest

from normlab import backend
from normlab.nn.catalog import CASES

pytestmark = pytest.mark.gpu

RTOL, ATOL = 1e-9, 1e-12



def _run(case, device: str):
    """(train out, dx, grads, buffers, eval out) of ``case`` on ``device``, as NumPy."""
    m = case.make(np.random.default_rng(0)).to(device=device, dtype=np.float64)
    x = backend.to_device(case.input(np.random.default_rng(1), np.float64), device)

    def call(inp):
        if case.target is None:
            return m(inp)
        return m(inp, backend.to_device(case.target(np.random.default_rng(2)), device))

    m.train()
    out = call(x)
    shape = np.shape(out)
    dout = (backend.to_device(np.random.default_rng(4).standard_normal(shape), device)
            if len(shape) else 1.0)
    dx = m.backward(dout)
    held = [a for mod in m.modules() for store in (mod.params, mod.grads, mod.buffers)
            for a in store.values() if a is not None and hasattr(a, "shape")]
    devices = {backend.device_of(a) for a in held + [out, dx] if np.ndim(a)}
    grads = {n: backend.to_numpy(g) for n, _, g in m.named_parameters()}
    buffers = {k: backend.to_numpy(v) for k, v in m.state_dict().items()}
    m.eval()
    evaluated = call(x)
    return (backend.to_numpy(out), backend.to_numpy(dx), grads, buffers,
            backend.to_numpy(evaluated), devices)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cuda_matches_cpu(case):
    cpu = _run(case, "cpu")
    gpu = _run(case, "cuda")
    assert gpu[5] == {"cuda"}, f"arrays left the device: {gpu[5]}"
    for what, a, b in (("train output", cpu[0], gpu[0]), ("dx", cpu[1], gpu[1]),
                       ("eval output", cpu[4], gpu[4])):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL, err_msg=what)
    for store, a_all, b_all in (("grad", cpu[2], gpu[2]), ("state", cpu[3], gpu[3])):
        assert a_all.keys() == b_all.keys()
        for k in a_all:
            np.testing.assert_allclose(b_all[k], a_all[k], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{store} {k}")
