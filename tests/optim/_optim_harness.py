"""Shared helpers for the optim tests: a tiny model and a deterministic quadratic gradient."""

from __future__ import annotations

import numpy as np
import torch

from normlab import nn


def make_model(seed: int = 0, dtype=np.float64) -> nn.Module:
    """Two Linear layers (4 params: 2 weights, 2 biases) in ``dtype``."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(4, 3, dtype=dtype, rng=rng), nn.Linear(3, 2, dtype=dtype, rng=rng))


def quadratic(model: nn.Module, seed: int = 1):
    """Per-parameter ``(A, b)`` of the loss ``sum_k 0.5 p_k^T A_k p_k + b_k . p_k``."""
    rng = np.random.default_rng(seed)
    out = []
    for _, p, _ in model.named_parameters():
        n = p.size
        M = rng.standard_normal((n, n))
        out.append((M @ M.T / n + 0.1 * np.eye(n), rng.standard_normal(n)))
    return out


def set_grads(model: nn.Module, quad) -> None:
    """``grad_k = A_k p_k + b_k`` written into the modules' ``grads``."""
    for ref, (A, b) in zip(model.parameters(), quad):
        ref.module.grads[ref.key] = (A @ ref.value.ravel() + b).reshape(ref.value.shape)


def torch_params(model: nn.Module) -> list[torch.Tensor]:
    return [torch.tensor(p.copy(), requires_grad=False) for _, p, _ in model.named_parameters()]


def set_torch_grads(tparams, quad) -> None:
    for t, (A, b) in zip(tparams, quad):
        t.grad = (torch.from_numpy(A) @ t.detach().reshape(-1) + torch.from_numpy(b)).reshape(t.shape)
