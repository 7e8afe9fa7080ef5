"""The fuzz engine of issue 10: hostile and extreme inputs for every catalog module.

Shared by the hypothesis suites (``test_fuzz_modules.py``, ``test_fuzz_functional.py``) and
by the outcome counter (``python -m tests.fuzz.count_outcomes``), which also runs the risky
cases (compiled kernels) in a child process.

Every trial ends in one of these outcomes:

``ok``        valid input: finite output/gradients, input not mutated
``refused``   invalid input: a ``NormlabError`` whose message reads ``expected ... got``
``accepted``  an input we call "invalid" that the module legitimately accepts (ReLU of any
              rank, ...), with a finite result of the right shape
``BAD:...``   anything else: another exception type, a message without ``expected/got``,
              NaN/inf from finite float64 math, a mutated input
"""

from __future__ import annotations

import re
import traceback

import numpy as np

from normlab.errors import NormlabError
from normlab.nn.catalog import CASES

__all__ = ["CASES", "MESSAGE", "build", "forward", "valid_trial", "input_mutations",
           "dout_mutations", "hostile_input_trial", "hostile_dout_trial", "classify_error"]

MESSAGE = re.compile(r"expected .* got", re.S)


def build(case, seed: int, dtype=np.float64):
    """Fresh module (in ``dtype``), input and target of ``case``."""
    rng = np.random.default_rng(seed)
    m = case.make(rng).to(dtype=dtype)
    x = case.input(rng, dtype)
    target = case.target(rng) if case.target else None
    if target is not None and target.dtype.kind == "f":
        target = target.astype(dtype)
    return m, x, target


def forward(m, x, target):
    return m(x, target) if target is not None else m(x)


def classify_error(e: BaseException) -> str:
    if isinstance(e, NormlabError) and MESSAGE.search(str(e)):
        return "refused"
    if isinstance(e, NormlabError):
        return f"BAD:message without expected/got: {e}"
    return f"BAD:{type(e).__name__}: {str(e)[:200]} @ {traceback.format_tb(e.__traceback__)[-1][:300]}"


def _finite(*arrays) -> bool:
    return all(a is None or bool(np.isfinite(np.asarray(a)).all()) for a in arrays)


def valid_trial(case, seed: int, dtype, exponent: int, constant: bool, training: bool) -> str:
    """Input ``base * 10**exponent`` (or a constant); check finiteness and no mutation."""
    m, x, target = build(case, seed, dtype)
    if not training:
        m.eval()
    scale = 10.0 ** exponent
    x = (np.full_like(x, 0.7 * scale) if constant else x * scale).astype(dtype)
    x0 = x.copy()
    t0 = None if target is None else target.copy()
    try:
        out = forward(m, x, target)
        if not np.array_equal(x, x0) or (t0 is not None and not np.array_equal(target, t0)):
            return "BAD:forward mutated its input"
        if not _finite(out):
            return f"BAD:non-finite output at scale 1e{exponent}"
        dout = 1.0 if np.ndim(out) == 0 else \
            np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
        d0 = None if np.ndim(out) == 0 else dout.copy()
        dx = m.backward(dout)
        if d0 is not None and not np.array_equal(dout, d0):
            return "BAD:backward mutated dout"
        grads = [g for _, _, g in m.named_parameters()]
        if not _finite(dx, *grads):
            return f"BAD:non-finite gradient at scale 1e{exponent}"
        if tuple(np.shape(dx)) != tuple(x.shape):
            return f"BAD:dx shape {np.shape(dx)} != input {x.shape}"
    except Exception as e:  # noqa: BLE001 - the point is to classify everything
        return classify_error(e)
    return "ok"


def input_mutations(x) -> list[tuple[str, object]]:
    """Invalid-looking variants of a valid input ``x``."""
    out = [("int64", x.astype(np.int64)), ("bool", x > 0), ("complex", x.astype(np.complex128)),
           ("list", x.tolist()), ("string", "x"), ("None", None), ("scalar", 1.0),
           ("0-d array", np.array(1.0)), ("add axis", x[None]), ("float16", x.astype(np.float16))]
    if x.ndim > 1:
        out.append(("drop axis", x[0]))
    for ax in range(x.ndim):
        shape = list(x.shape)
        shape[ax] += 1
        out.append((f"grow axis {ax}", np.ones(shape, x.dtype)))
        shape[ax] = 0
        out.append((f"empty axis {ax}", np.ones(shape, x.dtype)))
    if x.dtype.kind == "f":
        out.append(("nan", np.full_like(x, np.nan)))
    out.append(("big-endian", x.astype(x.dtype.newbyteorder(">"))))
    out.append(("non-contiguous", np.asfortranarray(x)))
    return out


def dout_mutations(out) -> list[tuple[str, object]]:
    """Wrong upstream gradients for a forward output ``out`` (all must be refused)."""
    if np.ndim(out) == 0:
        return [("vector", np.ones(2)), ("matrix", np.ones((1, 1))), ("string", "1"),
                ("None", None), ("int array", np.array(1, np.int64)), ("list", [1.0])]
    res = [("int64", np.ones(out.shape, np.int64)), ("list", np.ones(out.shape).tolist()),
           ("string", "d"), ("None", None), ("scalar", 1.0), ("add axis", np.ones((1,) + out.shape)),
           ("complex", np.ones(out.shape, np.complex128))]
    if out.ndim > 1:
        res.append(("drop axis", np.ones(out.shape[1:])))
    for ax in range(out.ndim):
        for delta in (1, -1, 7):
            shape = list(out.shape)
            shape[ax] += delta
            if shape[ax] >= 0:
                res.append((f"axis {ax} {delta:+d}", np.ones(shape)))
    return res


def _is_invalid_dtype(label: str) -> bool:
    return label in ("int64", "bool", "complex", "list", "string", "None", "scalar")


def hostile_input_trial(case, seed: int, label: str, bad) -> str:
    """Forward (and backward) of an invalid-looking input: refused, or accepted correctly."""
    m, x, target = build(case, seed, np.float64)
    kept = bad.copy() if isinstance(bad, np.ndarray) else None
    try:
        out = forward(m, bad, target)
    except Exception as e:  # noqa: BLE001
        return classify_error(e)
    if _is_invalid_dtype(label) and label != "None":
        return f"BAD:accepted a {label} input"
    if kept is not None and not np.array_equal(bad, kept, equal_nan=True):
        return "BAD:forward mutated its input"
    if label != "nan" and not _finite(out):  # NaN in, NaN out is the float64 math
        return f"BAD:non-finite output for {label}"
    try:
        dout = 1.0 if np.ndim(out) == 0 else np.ones_like(out)
        dx = m.backward(dout)
    except Exception as e:  # noqa: BLE001
        return classify_error(e)
    if tuple(np.shape(dx)) != tuple(np.shape(bad)):
        return f"BAD:dx shape {np.shape(dx)} != input {np.shape(bad)} for {label}"
    return "accepted"


def hostile_dout_trial(case, seed: int, index: int) -> tuple[str, str]:
    """Valid forward, then the ``index``-th wrong dout: must be refused (never a crash)."""
    m, x, target = build(case, seed, np.float64)
    out = forward(m, x, target)
    muts = dout_mutations(out)
    label, dout = muts[index % len(muts)]
    try:
        m.backward(dout)
    except Exception as e:  # noqa: BLE001
        return label, classify_error(e)
    return label, f"BAD:accepted dout {label}"
