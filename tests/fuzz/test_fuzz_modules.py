"""Property/fuzz suite of issue 10 over every module of the catalog (normlab/nn/catalog.py).

Valid inputs at extreme and constant values give finite outputs and gradients and are never
mutated; invalid inputs and wrong ``dout`` are refused with a ``NormlabError`` whose message
reads ``expected ... got``, or (inputs only) legitimately accepted. The compiled-kernel
modules also run in a child process (``test_risky_cases_in_a_subprocess``), so a crash would
fail one test instead of killing the run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.engine import (CASES, build, dout_mutations, forward, hostile_dout_trial,
                               hostile_input_trial, input_mutations, valid_trial)

FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=2000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

case_idx = st.integers(0, len(CASES) - 1)
seeds = st.integers(0, 2 ** 16)
# float64: |x| up to 1e30 keeps every catalog module's float64 math finite (squares 1e60);
# float32: up to 1e15 (squares 1e30 < float32 max 3.4e38)
valid_args = st.one_of(
    st.tuples(st.just(np.float64), st.integers(-30, 30)),
    st.tuples(st.just(np.float32), st.integers(-15, 15)),
)


def _check(outcome: str, what: str) -> None:
    assert not outcome.startswith("BAD"), f"{what}: {outcome}"


def _valid(i, seed, dt_k, constant, training):
    dtype, k = dt_k
    _check(valid_trial(CASES[i], seed, dtype, k, constant, training),
           f"{CASES[i].name} {np.dtype(dtype)} 1e{k} constant={constant} training={training}")


def _input(i, seed, j):
    case = CASES[i]
    _, x, _ = build(case, seed)
    muts = input_mutations(x)
    label, bad = muts[j % len(muts)]
    _check(hostile_input_trial(case, seed, label, bad), f"{case.name} input {label}")


def _dout(i, seed, j):
    label, outcome = hostile_dout_trial(CASES[i], seed, j)
    assert outcome == "refused", f"{CASES[i].name} dout {label}: {outcome}"


@FAST
@given(case_idx, seeds, valid_args, st.booleans(), st.booleans())
def test_valid_extreme_and_constant_inputs(i, seed, dt_k, constant, training):
    _valid(i, seed, dt_k, constant, training)


@FAST
@given(case_idx, seeds, st.integers(0, 40))
def test_invalid_inputs_refused_or_correctly_accepted(i, seed, j):
    _input(i, seed, j)


@FAST
@given(case_idx, seeds, st.integers(0, 40))
def test_wrong_dout_always_refused(i, seed, j):
    _dout(i, seed, j)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_module_refuses_every_wrong_dout(case):
    m, x, target = build(case, 0)
    n = len(dout_mutations(forward(m, x, target)))
    for j in range(n):
        label, outcome = hostile_dout_trial(case, 0, j)
        assert outcome == "refused", f"{case.name} dout {label}: {outcome}"


def test_risky_cases_in_a_subprocess():
    """Compiled-kernel modules (conv, pooling) with every hostile input and dout, in a child."""
    r = subprocess.run([sys.executable, "-m", "tests.fuzz.count_outcomes", "--only",
                        "Conv,Pool", "--seeds", "2"], capture_output=True, text=True,
                       timeout=600, cwd=os.getcwd())
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "BAD 0" in r.stdout, r.stdout[-3000:]


@pytest.mark.slow
@SLOW
@given(case_idx, seeds, valid_args, st.booleans(), st.booleans())
def test_valid_inputs_slow(i, seed, dt_k, constant, training):
    _valid(i, seed, dt_k, constant, training)


@pytest.mark.slow
@SLOW
@given(case_idx, seeds, st.integers(0, 40))
def test_invalid_inputs_slow(i, seed, j):
    _input(i, seed, j)
