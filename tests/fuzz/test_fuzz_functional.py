"""Property/fuzz suite of issue 10 over every functional forward/backward pair.

Pairs without compiled kernels run in-process under hypothesis; every pair (batch norm,
convolution and pooling have compiled kernels) also runs in a child process through
``python -m tests.fuzz.count_outcomes --functional``, so an out-of-bounds write would fail
one test instead of killing the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.engine import dout_mutations, input_mutations
from tests.fuzz.functional_cases import (PAIRS, array_trial, dout_trial, hyper_trial,
                                         valid_pair_trial)

COMPILED = ("batch_norm", "conv", "pool")
SAFE = [p for p in PAIRS if not any(w in p.name for w in COMPILED)]
FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

pair_idx = st.integers(0, len(SAFE) - 1)
seeds = st.integers(0, 2 ** 16)
valid_args = st.one_of(st.tuples(st.just(np.float64), st.integers(-30, 30)),
                       st.tuples(st.just(np.float32), st.integers(-15, 15)))


def _ok(outcome: str, what: str) -> None:
    assert not outcome.startswith("BAD"), f"{what}: {outcome}"


@FAST
@given(pair_idx, seeds, valid_args, st.booleans())
def test_valid_extreme_and_constant_inputs(i, seed, dt_k, constant):
    dtype, k = dt_k
    _ok(valid_pair_trial(SAFE[i], seed, dtype, k, constant), f"{SAFE[i].name} 1e{k}")


@FAST
@given(pair_idx, seeds, st.integers(0, 4), st.integers(0, 40))
def test_bad_arrays(i, seed, pos, j):
    pair = SAFE[i]
    args, _ = pair.make(np.random.default_rng(seed), np.float64)
    arrays = [k for k, a in enumerate(args) if isinstance(a, np.ndarray)]
    pos = arrays[pos % len(arrays)]
    muts = input_mutations(args[pos])
    label, bad = muts[j % len(muts)]
    _ok(array_trial(pair, seed, pos, label, bad), f"{pair.name} arg{pos} {label}")


@pytest.mark.parametrize("pair", [p for p in SAFE if p.bad_hyper], ids=lambda p: p.name)
def test_bad_hyperparameters_refused(pair):
    for name, value in pair.bad_hyper:
        outcome = hyper_trial(pair, 0, name, value)
        assert outcome == "refused", f"{pair.name} {name}={value!r}: {outcome}"


@pytest.mark.parametrize("pair", [p for p in SAFE if p.backward], ids=lambda p: p.name)
def test_every_wrong_dout_refused(pair):
    args, kw = pair.make(np.random.default_rng(0), np.float64)
    n = len(dout_mutations(pair.forward(*args, **kw)[0]))
    for j in range(n):
        label, outcome = dout_trial(pair, 0, j)
        assert outcome == "refused", f"{pair.name} dout {label}: {outcome}"


def test_every_pair_in_a_subprocess():
    """All pairs, compiled kernels included, with every hostile array, hyperparameter and
    dout, and the named edge cases; in a child process."""
    r = subprocess.run([sys.executable, "-m", "tests.fuzz.count_outcomes", "--only", "NONE",
                        "--functional", "--seeds", "1"], capture_output=True, text=True,
                       timeout=600, cwd=os.getcwd())
    assert r.returncode == 0 and "BAD 0" in r.stdout, (r.stdout[-4000:], r.stderr[-3000:])

