"""Every functional forward/backward pair of ``normlab.functional`` for the issue-10 fuzz suite.

A ``Pair`` builds valid arguments (arrays first, then keyword hyperparameters); the trials
mutate one array argument, one hyperparameter or the ``dout``, or scale the input to extreme
and constant values. Outcomes are classified as in ``engine.py``; on top of that, a
mutated *parameter* (gamma, beta, running statistics, weight, bias) of the wrong shape or
type must be refused, never accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from normlab import functional as F
from tests.fuzz.engine import classify_error, dout_mutations, input_mutations

__all__ = ["Pair", "PAIRS", "valid_pair_trial", "array_trial", "hyper_trial", "dout_trial",
           "run_all"]


@dataclass(frozen=True)
class Pair:
    name: str
    forward: Callable
    backward: Callable | None  # None: the forward returns (loss, dinput) itself
    make: Callable  # (rng, dtype) -> (list of positional args, dict of keyword args)
    params: tuple = ()  # positions of parameter arrays (must refuse wrong shapes)
    bad_hyper: tuple = ()  # (name, value) pairs that must be refused
    labels: tuple = ()  # positions of integer label arrays (losses)
    free_axes: dict = field(default_factory=dict)  # {position: axes whose size may change}


def _n(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _pos(rng, shape, dtype):
    return rng.uniform(0.5, 2.0, shape).astype(dtype)


EPS_BAD = (("eps", 0.0), ("eps", -1e-5), ("eps", float("nan")), ("eps", "1e-5"), ("eps", None))
BN_AXES_BAD = (("axes", (1,)), ("axes", (0, 1)), ("axes", (5,)), ("axes", "0"), ("axes", (0, 0)))

PAIRS = [
    Pair("linear", F.linear_forward, F.linear_backward,
         lambda r, d: ([_n(r, (4, 5), d), _n(r, (3, 5), d), _n(r, (3,), d)], {}), params=(1, 2)),
    Pair("relu", F.relu_forward, F.relu_backward, lambda r, d: ([_n(r, (4, 5), d)], {})),
    Pair("leaky_relu", F.leaky_relu_forward, F.leaky_relu_backward,
         lambda r, d: ([_n(r, (4, 5), d)], {"negative_slope": 0.1}),
         bad_hyper=(("negative_slope", "x"), ("negative_slope", float("nan")))),
    Pair("tanh", F.tanh_forward, F.tanh_backward, lambda r, d: ([_n(r, (3, 4), d)], {})),
    Pair("sigmoid", F.sigmoid_forward, F.sigmoid_backward, lambda r, d: ([_n(r, (3, 4), d)], {})),
    Pair("dropout", F.dropout_forward, F.dropout_backward,
         lambda r, d: ([_n(r, (4, 6), d)], {"p": 0.5, "training": True, "rng": 0}),
         bad_hyper=(("p", 1.5), ("p", -0.1), ("p", "0.5"))),
    Pair("batch_norm", F.batch_norm_forward, F.batch_norm_backward,
         lambda r, d: ([_n(r, (6, 3, 2), d), _pos(r, (3,), d), _n(r, (3,), d)],
                       {"axes": (0, 2)}), params=(1, 2), bad_hyper=EPS_BAD + BN_AXES_BAD),
    Pair("batch_norm_eval", F.batch_norm_eval_forward, F.batch_norm_eval_backward,
         lambda r, d: ([_n(r, (5, 3, 2, 2), d), _pos(r, (3,), d), _n(r, (3,), d),
                        _n(r, (3,), d), _pos(r, (3,), d)], {"axes": (0, 2, 3)}),
         params=(1, 2, 3, 4), bad_hyper=EPS_BAD + BN_AXES_BAD),
    Pair("layer_norm", F.layer_norm_forward, F.layer_norm_backward,
         lambda r, d: ([_n(r, (3, 2, 4), d), _pos(r, (2, 4), d), _n(r, (2, 4), d)],
                       {"normalized_ndim": 2}), params=(1, 2),
         bad_hyper=EPS_BAD + (("normalized_ndim", 0), ("normalized_ndim", 9),
                              ("normalized_ndim", 1.5))),
    Pair("group_norm", F.group_norm_forward, F.group_norm_backward,
         lambda r, d: ([_n(r, (2, 4, 3), d), _pos(r, (4,), d), _n(r, (4,), d)],
                       {"num_groups": 2}), params=(1, 2),
         bad_hyper=EPS_BAD + (("num_groups", 0), ("num_groups", -2), ("num_groups", 3),
                              ("num_groups", 2.0), ("num_groups", None))),
    Pair("instance_norm", F.instance_norm_forward, F.instance_norm_backward,
         lambda r, d: ([_n(r, (2, 3, 5), d), _pos(r, (3,), d), _n(r, (3,), d)], {}),
         params=(1, 2), bad_hyper=EPS_BAD),
    Pair("rms_norm", F.rms_norm_forward, F.rms_norm_backward,
         lambda r, d: ([_n(r, (3, 4), d), _pos(r, (4,), d)], {"normalized_ndim": 1}),
         params=(1,), bad_hyper=EPS_BAD[:4] + (("normalized_ndim", 0),)),
    Pair("conv2d", F.conv2d_forward, F.conv2d_backward,
         lambda r, d: ([_n(r, (2, 3, 6, 6), d), _n(r, (4, 3, 3, 3), d), _n(r, (4,), d)],
                       {"stride": 1, "padding": 1}), params=(1, 2), free_axes={1: (2, 3)},
         bad_hyper=(("stride", 0), ("padding", -1), ("stride", "1"), ("dilation", 0),
                    ("groups", 2))),
    Pair("conv2d_winograd", F.conv2d_forward, F.conv2d_backward,
         lambda r, d: ([_n(r, (1, 16, 8, 8), d), _n(r, (16, 16, 3, 3), d), None], {"padding": 1}),
         params=(1,), free_axes={1: (0, 2, 3)}),
    Pair("conv1d", F.conv1d_forward, F.conv1d_backward,
         lambda r, d: ([_n(r, (2, 3, 7), d), _n(r, (4, 3, 3), d), _n(r, (4,), d)],
                       {"stride": 2}), params=(1, 2), free_axes={1: (2,)},
         bad_hyper=(("stride", 0),)),
    Pair("max_pool2d", F.max_pool2d_forward, F.max_pool2d_backward,
         lambda r, d: ([_n(r, (2, 3, 6, 5), d)], {"kernel_size": 3, "stride": 2, "padding": 1}),
         bad_hyper=(("kernel_size", 0), ("padding", 2), ("stride", -1), ("kernel_size", 9))),
    Pair("max_pool1d", F.max_pool1d_forward, F.max_pool1d_backward,
         lambda r, d: ([_n(r, (2, 3, 7), d)], {"kernel_size": 2}),
         bad_hyper=(("kernel_size", 0),)),
    Pair("avg_pool2d", F.avg_pool2d_forward, F.avg_pool2d_backward,
         lambda r, d: ([_n(r, (2, 3, 4, 4), d)], {"kernel_size": 2}),
         bad_hyper=(("kernel_size", (2, 2, 2)),)),
    Pair("avg_pool1d", F.avg_pool1d_forward, F.avg_pool1d_backward,
         lambda r, d: ([_n(r, (2, 3, 7), d)], {"kernel_size": 3, "stride": 1, "padding": 1})),
    Pair("adaptive_avg_pool2d", F.adaptive_avg_pool2d_forward, F.adaptive_avg_pool2d_backward,
         lambda r, d: ([_n(r, (2, 3, 5, 7), d)], {"output_size": (2, 3)}),
         bad_hyper=(("output_size", 0), ("output_size", (2, -1)), ("output_size", "a"))),
    Pair("softmax_cross_entropy", F.softmax_cross_entropy, None,
         lambda r, d: ([_n(r, (4, 5), d), r.integers(0, 5, 4)], {}), labels=(1,),
         bad_hyper=(("reduction", "none"),)),
    Pair("multi_margin_loss", F.multi_margin_loss, None,
         lambda r, d: ([_n(r, (4, 5), d), r.integers(0, 5, 4)], {}), labels=(1,)),
    Pair("mse_loss", F.mse_loss, None,
         lambda r, d: ([_n(r, (4, 5), d), _n(r, (4, 5), d)], {}), params=(1,)),
]

_MUST_REFUSE_FOR_PARAMS = ("int64", "bool", "complex", "list", "string", "scalar", "0-d array",
                           "add axis", "drop axis")


def _finite(a) -> bool:
    return a is None or bool(np.isfinite(np.asarray(a)).all())


def _outputs(pair, args, kw):
    out, second = pair.forward(*args, **kw)
    return out, second


def valid_pair_trial(pair: Pair, seed: int, dtype, exponent: int, constant: bool) -> str:
    rng = np.random.default_rng(seed)
    args, kw = pair.make(rng, dtype)
    scale = 10.0 ** exponent
    x = args[0]
    args[0] = (np.full_like(x, 0.7 * scale) if constant else x * scale).astype(dtype)
    if pair.name == "mse_loss":
        args[1] = (args[1] * scale).astype(dtype)
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    try:
        out, cache = _outputs(pair, args, kw)
        for a, c in zip(args, copies):
            if isinstance(a, np.ndarray) and not np.array_equal(a, c):
                return "BAD:forward mutated an argument"
        if not _finite(out):
            return f"BAD:non-finite output at 1e{exponent} constant={constant}"
        if pair.backward is None:
            return "ok" if _finite(cache) else "BAD:non-finite loss gradient"
        dout = rng.standard_normal(np.shape(out)).astype(dtype)
        d0 = dout.copy()
        grads = pair.backward(dout, cache)
        if not np.array_equal(dout, d0):
            return "BAD:backward mutated dout"
        grads = grads if isinstance(grads, tuple) else (grads,)
        if not all(_finite(g) for g in grads):
            return f"BAD:non-finite gradient at 1e{exponent} constant={constant}"
        if tuple(np.shape(grads[0])) != tuple(args[0].shape):
            return "BAD:dx shape differs from x"
    except Exception as e:  # noqa: BLE001
        return classify_error(e)
    return "ok"


def array_trial(pair: Pair, seed: int, pos: int, label: str, bad) -> str:
    rng = np.random.default_rng(seed)
    args, kw = pair.make(rng, np.float64)
    args[pos] = bad
    try:
        out, cache = _outputs(pair, args, kw)
    except Exception as e:  # noqa: BLE001
        return classify_error(e)
    free = pair.free_axes.get(pos, ())
    if label.startswith(("grow", "empty")) and int(label.rsplit(" ", 1)[1]) in free:
        pass  # e.g. a conv kernel of another size: a valid, different convolution
    elif pos in pair.labels and label in ("int64", "list"):
        pass  # labels: integer arrays (or a list of ints) are what is expected
    elif (pos in pair.params or pos in pair.labels) and (
            label in _MUST_REFUSE_FOR_PARAMS or label.startswith(("grow", "empty"))):
        return f"BAD:accepted a parameter/label argument {pos} mutated by {label}"
    elif label in ("int64", "bool", "complex", "list", "string", "scalar"):
        return f"BAD:accepted a {label} argument {pos}"
    if label != "nan" and not _finite(out):
        return f"BAD:non-finite output for {label}"
    if pair.backward is not None:
        try:
            pair.backward(np.ones(np.shape(out)), cache)
        except Exception as e:  # noqa: BLE001
            return classify_error(e)
    return "accepted"


def hyper_trial(pair: Pair, seed: int, name: str, value) -> str:
    rng = np.random.default_rng(seed)
    args, kw = pair.make(rng, np.float64)
    kw = {**kw, name: value}
    try:
        _outputs(pair, args, kw)
    except Exception as e:  # noqa: BLE001
        return classify_error(e)
    return f"BAD:accepted {name}={value!r}"


def dout_trial(pair: Pair, seed: int, index: int) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    args, kw = pair.make(rng, np.float64)
    out, cache = _outputs(pair, args, kw)
    muts = dout_mutations(out)
    label, dout = muts[index % len(muts)]
    try:
        pair.backward(dout, cache)
    except Exception as e:  # noqa: BLE001
        return label, classify_error(e)
    return label, f"BAD:accepted dout {label}"


def extra_trials(seed: int):
    """Named edge cases of the issue: one value per channel, wrong caches, bad dtypes."""
    rng = np.random.default_rng(seed)
    g = np.ones(3)
    cases = {
        "bn one value per channel": lambda: F.batch_norm_forward(
            rng.standard_normal((1, 3)), g, g, axes=(0,)),
        "linear backward with a foreign cache": lambda: F.linear_backward(
            np.ones((2, 3)), ("not", "a", "cache")),
        "conv backward with a None cache": lambda: F.conv2d_backward(np.ones((1, 1, 1, 1)), None),
        "pool backward with a list cache": lambda: F.max_pool2d_backward(np.ones((1, 1, 1, 1)),
                                                                         [1, 2]),
        "group norm integer input": lambda: F.group_norm_forward(
            np.ones((2, 4, 3), np.int64), None, None, num_groups=2),
    }
    for name, fn in cases.items():
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            yield name, classify_error(e)
            continue
        yield name, "BAD:accepted"


def run_all(seeds: int):
    """Every functional trial for ``seeds`` seeds: yields ``(kind, pair, label, outcome)``."""
    for seed in range(seeds):
        for pair in PAIRS:
            rng = np.random.default_rng(seed)
            args, kw = pair.make(rng, np.float64)
            for pos, a in enumerate(args):
                if not isinstance(a, np.ndarray):
                    continue
                for label, bad in input_mutations(a):
                    yield "fn bad array", pair.name, f"arg{pos} {label}", array_trial(
                        pair, seed, pos, label, bad)
            for name, value in pair.bad_hyper:
                yield "fn bad hyper", pair.name, f"{name}={value!r}", hyper_trial(
                    pair, seed, name, value)
            if pair.backward is not None:
                out, _ = pair.forward(*args, **kw)
                for j in range(len(dout_mutations(out))):
                    label, outcome = dout_trial(pair, seed, j)
                    yield "fn bad dout", pair.name, label, outcome
            for dtype, ks in ((np.float64, (-30, -10, 0, 10, 30)),
                              (np.float32, (-15, -5, 0, 5, 15))):
                for k in ks:
                    for constant in (False, True):
                        yield "fn valid", pair.name, f"{np.dtype(dtype)} 1e{k} c={constant}", \
                            valid_pair_trial(pair, seed, dtype, k, constant)
        for name, outcome in extra_trials(seed):
            yield "fn edge", "functional", name, outcome
