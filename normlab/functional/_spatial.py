"""Argument handling shared by convolution and pooling: int-or-tuple args, output sizes, checks.

Every message follows ``"{owner}: expected {what}, got {actual}. {hint}"``; ``owner`` is the
public function or module the user called, so the same checks serve functional code,
the loop references and the modules.
"""

from __future__ import annotations

import numpy as np

from normlab.errors import NormlabTypeError, NormlabValueError
from normlab.validation import check_array, check_vector, describe, is_array

__all__ = ["as_tuple", "check_input", "check_positive", "check_nonneg", "out_size",
           "check_window_fits", "check_pool_padding", "conv_args", "pool_args"]


def as_tuple(v, n: int, name: str, owner: str) -> tuple[int, ...]:
    """``v`` as an ``n``-tuple of Python ints, PyTorch style (an int is repeated).

    Raises
    ------
    TypeError
        If ``v`` is neither an int nor a sequence of ints.
    ValueError
        If a sequence has the wrong length.
    """
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v),) * n
    if isinstance(v, (tuple, list)):
        if len(v) != n or not all(isinstance(e, (int, np.integer)) and not isinstance(e, bool)
                                  for e in v):
            raise NormlabValueError(
                f"{owner}: expected {name} to be an int or a tuple of {n} ints, got {v!r}."
            )
        return tuple(int(e) for e in v)
    raise NormlabTypeError(
        f"{owner}: expected {name} to be an int or a tuple of {n} ints, got "
        f"{type(v).__name__} {v!r}."
    )


def check_positive(vals: tuple[int, ...], name: str, owner: str) -> None:
    """Raise ValueError unless every entry of ``vals`` is >= 1."""
    if any(v <= 0 for v in vals):
        raise NormlabValueError(f"{owner}: expected positive {name}, got {name}={vals}.")


def check_nonneg(vals: tuple[int, ...], name: str, owner: str) -> None:
    """Raise ValueError unless every entry of ``vals`` is >= 0."""
    if any(v < 0 for v in vals):
        raise NormlabValueError(f"{owner}: expected non-negative {name}, got {name}={vals}.")


def check_input(x, nd: int, owner: str, channels: int | None = None) -> None:
    """Check that ``x`` is a batched ``nd``-spatial array, with ``channels`` channels if given.

    Raises
    ------
    TypeError
        If ``x`` is not a floating array.
    ValueError
        On a wrong rank or a channel count other than ``channels``.
    """
    layout = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
    if not is_array(x):
        raise NormlabTypeError(f"{owner}: expected an ndarray input, got {describe(x)}.")
    if x.ndim != nd + 2:
        raise NormlabValueError(
            f"{owner}: expected {nd + 2}D input {layout}, got {x.ndim}D input of shape "
            f"{tuple(x.shape)}. Add the batch axis with x[None] for a single sample."
        )
    if np.dtype(x.dtype).kind != "f":
        raise NormlabTypeError(
            f"{owner}: expected a floating input, got dtype {x.dtype}. Cast with "
            "x.astype(np.float32)."
        )
    if channels is not None and x.shape[1] != channels:
        raise NormlabValueError(
            f"{owner}: expected input with {channels} channels (axis 1), got "
            f"{x.shape[1]} channels in input of shape {tuple(x.shape)}."
        )


def out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    """Output length ``floor((size + 2p - d(k-1) - 1) / s) + 1`` (PyTorch, ceil_mode=False)."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def check_window_fits(spatial, kernel, stride, padding, dilation, owner: str) -> tuple[int, ...]:
    """Output sizes; raise ValueError when the (dilated) kernel exceeds the padded input.

    Returns
    -------
    tuple of output sizes, one per spatial axis.
    """
    padded = tuple(n + 2 * p for n, p in zip(spatial, padding))
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(e > n for e, n in zip(eff, padded)):
        raise NormlabValueError(
            f"{owner}: expected a kernel no larger than the padded input, got padded "
            f"input size {padded} and effective kernel size {eff} (kernel_size={kernel}, "
            f"dilation={dilation}). Use a smaller kernel or more padding."
        )
    return tuple(out_size(n, k, s, p, d)
                 for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))


def check_pool_padding(kernel, padding, owner: str) -> None:
    """PyTorch's rule: pooling padding at most half the kernel size."""
    if any(2 * p > k for k, p in zip(kernel, padding)):
        raise NormlabValueError(
            f"{owner}: expected padding at most half of kernel_size, got padding={padding} "
            f"and kernel_size={kernel}. Use padding <= kernel_size // 2."
        )


def conv_args(x, weight, bias, stride, padding, dilation, groups, nd: int, owner: str):
    """Validate a convolution call; return ``(stride, padding, dilation, out_sizes)`` tuples.

    Raises
    ------
    ValueError
        Wrong ranks, channel mismatch between ``x`` and ``weight``, channels not divisible
        by ``groups``, a bad bias shape, non-positive stride/dilation/groups, negative
        padding, or a kernel larger than the padded input.
    TypeError
        Non-integer hyperparameters or a non-floating input.
    """
    check_input(x, nd, owner)
    if not is_array(weight):
        raise NormlabTypeError(f"{owner}: expected weight to be an ndarray, got "
                               f"{describe(weight)}.")
    if weight.ndim != nd + 2:
        layout = "(F, C/groups, K)" if nd == 1 else "(F, C/groups, KH, KW)"
        raise NormlabValueError(f"{owner}: expected {nd + 2}D weight {layout}, got "
                                f"{tuple(weight.shape)}.")
    check_array(weight, owner, name="weight")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups <= 0:
        raise NormlabValueError(f"{owner}: expected groups to be a positive int, got {groups!r}.")
    stride = as_tuple(stride, nd, "stride", owner)
    padding = as_tuple(padding, nd, "padding", owner)
    dilation = as_tuple(dilation, nd, "dilation", owner)
    check_positive(stride, "stride", owner)
    check_positive(dilation, "dilation", owner)
    check_nonneg(padding, "padding", owner)
    C = x.shape[1]
    F, Cg = weight.shape[:2]
    if C % groups or F % groups:
        raise NormlabValueError(
            f"{owner}: expected in_channels and out_channels divisible by groups={groups}, "
            f"got in_channels={C} and out_channels={F}."
        )
    if Cg * groups != C:
        raise NormlabValueError(
            f"{owner}: expected input with {Cg * groups} channels (weight {tuple(weight.shape)} "
            f"x groups={groups}), got {C} channels in input of shape {tuple(x.shape)}."
        )
    if bias is not None and (not is_array(bias) or tuple(bias.shape) != (F,)):
        got = tuple(bias.shape) if is_array(bias) else describe(bias)
        raise NormlabValueError(f"{owner}: expected bias of shape ({F},), got {got}.")
    if bias is not None:
        check_vector(bias, F, owner, "bias")
    out = check_window_fits(x.shape[2:], weight.shape[2:], stride, padding, dilation, owner)
    return stride, padding, dilation, out


def pool_args(x, kernel_size, stride, padding, nd: int, owner: str):
    """Validate a pooling call; return ``(kernel, stride, padding, out_sizes)`` tuples.

    ``stride=None`` means ``stride = kernel_size`` (PyTorch's default).

    Raises
    ------
    ValueError
        Wrong rank, non-positive kernel or stride, negative padding, padding above half
        the kernel, or a kernel larger than the padded input.
    """
    check_input(x, nd, owner)
    kernel = as_tuple(kernel_size, nd, "kernel_size", owner)
    check_positive(kernel, "kernel_size", owner)
    stride = kernel if stride is None else as_tuple(stride, nd, "stride", owner)
    check_positive(stride, "stride", owner)
    padding = as_tuple(padding, nd, "padding", owner)
    check_nonneg(padding, "padding", owner)
    check_pool_padding(kernel, padding, owner)
    out = check_window_fits(x.shape[2:], kernel, stride, padding, (1,) * nd, owner)
    return kernel, stride, padding, out
