"""The ``normlab`` command line: ``main(argv) -> int``; never calls ``sys.exit`` inside."""

from __future__ import annotations

import argparse
import sys

import numpy as np

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` can return 2."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message}")


class _UsageError(Exception):
    pass


def _cmd_gradcheck(args) -> int:
    from normlab.gradcheck import check_module  # noqa: PLC0415
    from normlab.nn.catalog import CASES  # noqa: PLC0415

    cases = [c for c in CASES if not args.only or any(s.lower() in c.name.lower() for s in args.only)]
    if not cases:
        print(f"normlab gradcheck: no registered module matches {args.only}.", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    failed = 0
    header = f"{'module':34s} {'input shape':16s} {'max rel. error per gradient':60s} result"
    print(header)
    print("-" * len(header))
    for case in cases:
        module = case.make(rng)
        x = case.input(rng, np.float64)
        pre = case.pre(rng) if case.pre else None
        target = case.target(rng) if case.target else None
        report = check_module(module, x, rng, target=target, pre=pre, tol=case.tol,
                              h=case.h)
        errs = "  ".join(f"{k}={v:.1e}" for k, v in report.errors.items())
        ok = report.passed
        failed += not ok
        print(f"{case.name:34s} {str(case.input_shape):16s} {errs:60s} {'pass' if ok else 'FAIL'}")
    print(f"{len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="normlab", description="normlab: a deep-learning lab built around Batch "
                "Normalization.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    g = sub.add_parser("gradcheck", help="numerically check every registered module (float64)")
    g.add_argument("--only", nargs="*", default=None, metavar="NAME",
                   help="check only modules whose name contains one of these")
    g.add_argument("--seed", type=int, default=0, help="seed of inputs and random dout")
    g.set_defaults(func=_cmd_gradcheck)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        print(parser.format_usage().rstrip(), file=sys.stderr)
        print(str(e), file=sys.stderr)
        return 2
    except SystemExit as e:  # --help / --version
        return int(e.code or 0)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
