"""Count the outcomes of the issue-10 fuzz campaign: ``python -m tests.fuzz.count_outcomes``.

Runs, deterministically, every hostile input and wrong ``dout`` of ``engine.py`` and a grid
of extreme/constant valid inputs over the module catalog (and, with ``--functional``, every
functional pair of ``functional_cases.py``), then prints one line per outcome class and the
failures. Exit status 1 when any outcome is BAD. ``--only Conv,Pool`` restricts to catalog
names containing one of the words (the subprocess test of the risky compiled kernels).
"""

from __future__ import annotations

import argparse
import collections
import sys
import warnings

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--only", default="", help="comma-separated name fragments")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--functional", action="store_true", help="also the functional pairs")
    args = p.parse_args(argv)
    warnings.simplefilter("error", RuntimeWarning)  # as the test suite does
    warnings.simplefilter("ignore", UserWarning)

    from tests.fuzz.engine import (CASES, build, dout_mutations, forward, hostile_dout_trial,
                                   hostile_input_trial, input_mutations, valid_trial)

    words = [w for w in args.only.split(",") if w]
    cases = [c for c in CASES if not words or any(w in c.name for w in words)]
    counts = collections.Counter()
    bad = []

    def record(kind, name, label, outcome):
        key = "BAD" if outcome.startswith("BAD") else outcome
        counts[(kind, key)] += 1
        if key == "BAD":
            bad.append(f"{kind} {name} [{label}]: {outcome[:300]}")

    for seed in range(args.seeds):
        for case in cases:
            _, x, _ = build(case, seed)
            for label, b in input_mutations(x):
                record("bad input", case.name, label, hostile_input_trial(case, seed, label, b))
            m, x, t = build(case, seed)
            for j in range(len(dout_mutations(forward(m, x, t)))):
                label, outcome = hostile_dout_trial(case, seed, j)
                record("bad dout", case.name, label, outcome)
            for dtype, ks in ((np.float64, (-30, -10, 0, 10, 30)),
                              (np.float32, (-15, -5, 0, 5, 15))):
                for k in ks:
                    for constant in (False, True):
                        for training in (True, False):
                            record("valid", case.name, f"{np.dtype(dtype)} 1e{k} c={constant} "
                                   f"t={training}", valid_trial(case, seed, dtype, k, constant,
                                                               training))
    if args.functional:
        from tests.fuzz.functional_cases import run_all  # noqa: PLC0415

        for kind, name, label, outcome in run_all(args.seeds):
            record(kind, name, label, outcome)
    kinds = sorted({k for k, _ in counts})
    total = sum(counts.values())
    print(f"trials {total} over {len(cases)} catalog cases x {args.seeds} seeds")
    for kind in kinds:
        row = {o: n for (k, o), n in counts.items() if k == kind}
        print(f"  {kind:12s} " + "  ".join(f"{o} {n}" for o, n in sorted(row.items())))
    nbad = sum(n for (k, o), n in counts.items() if o == "BAD")
    print(f"BAD {nbad}")
    for line in bad[:50]:
        print("  " + line)
    return 1 if nbad else 0


if __name__ == "__main__":
    sys.exit(main())
