"""Minimal private test doubles for parts built on other branches (optim, data, nn layers).

They follow the contracts of docs/architecture.md just far enough for the Trainer tests;
``tests/train/_parts.py`` uses the real classes once they exist on this branch.
"""

from __future__ import annotations

import numpy as np

from normlab.nn.module import Module


class _FakeBatchNorm1d(Module):
    def __init__(self, C, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.params = {"weight": np.ones(C, dtype), "bias": np.zeros(C, dtype)}
        self.buffers = {"running_mean": np.zeros(C, dtype), "running_var": np.ones(C, dtype),
                        "num_batches_tracked": np.zeros((), np.int64)}
        self.zero_grad()

    def forward(self, x):
        b = self.buffers
        if not self.training:
            return ((x - b["running_mean"]) / np.sqrt(b["running_var"] + self.eps)
                    * self.params["weight"] + self.params["bias"])
        mean, var = x.mean(0), x.var(0)
        inv = 1 / np.sqrt(var + self.eps)
        xh = (x - mean) * inv
        n = len(x)
        m = self.momentum
        b["running_mean"] = (1 - m) * b["running_mean"] + m * mean
        b["running_var"] = (1 - m) * b["running_var"] + m * var * n / (n - 1)
        b["num_batches_tracked"] = b["num_batches_tracked"] + 1
        self._cache = (xh, inv)
        return xh * self.params["weight"] + self.params["bias"]

    def backward(self, dout):
        xh, inv = self._require_cache()
        self.grads["weight"] = (dout * xh).sum(0)
        self.grads["bias"] = dout.sum(0)
        dxh = dout * self.params["weight"]
        return inv * (dxh - dxh.mean(0) - xh * (dxh * xh).mean(0))
