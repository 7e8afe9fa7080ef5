"""The ``normlab`` command line: ``main(argv) -> int``; never calls ``sys.exit`` inside."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

import numpy as np

from normlab._argtypes import UsageError, one_line as _one_line, positive as _positive
from normlab.allocator import tune_allocator
from normlab.errors import NormlabError
from normlab.lab.train_cli import cmd_train

__all__ = ["main", "build_parser", "DEMO_EXPERIMENTS"]

DEMO_EXPERIMENTS = ("activation-stats", "bn-vs-none")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` can return 2."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message}")


_UsageError = UsageError  # raised by the subcommands; main() turns it into exit code 2


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


def _parse_sets(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _UsageError(f"normlab: error: expected --set KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def _cmd_experiment_list(args) -> int:
    from normlab.lab.registry import experiment_names, get_experiment  # noqa: PLC0415

    for name in experiment_names():
        exp = get_experiment(name)
        print(f"{name:24s} {exp.TITLE}")
        print(f"{'':24s}   claim: {exp.CLAIM}")
    return 0


def _cmd_experiment_run(args) -> int:
    from normlab.lab.registry import experiment_names  # noqa: PLC0415
    from normlab.lab.report import write_report  # noqa: PLC0415
    from normlab.lab.runs import run_experiment  # noqa: PLC0415

    names = experiment_names() if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in experiment_names()]
    if unknown:
        raise _UsageError(f"normlab experiment run: error: expected experiment names from "
                          f"{experiment_names()} (or 'all'), got {unknown}")
    overrides = _parse_sets(args.set)
    if overrides and len(names) > 1:
        raise _UsageError("normlab experiment run: error: expected one experiment with --set, "
                          f"got {len(names)}")
    if overrides:
        from normlab.lab.registry import get_experiment  # noqa: PLC0415
        from normlab.lab.runs import apply_overrides  # noqa: PLC0415

        try:
            apply_overrides(get_experiment(names[0]).Config(), overrides)
        except ValueError as e:
            raise _UsageError(f"normlab experiment run: error: {e}") from None
    dirs = []
    for name in names:
        print(f"running {name}{' (smoke size)' if args.smoke else ''} ...", flush=True)
        run_dir = run_experiment(name, smoke=args.smoke, seed=args.seed, out=args.out,
                                 overrides=overrides)
        _print_summary(run_dir)
        dirs.append(run_dir)
    default = dirs[0] / "report.html" if len(dirs) == 1 else Path(args.out) / "report.html"
    report = write_report(dirs, args.report or default)
    print(f"report: {report}")
    return 0


def _print_summary(run_dir) -> None:
    import json  # noqa: PLC0415

    summary = json.loads((run_dir / "summary.json").read_text())
    print(f"  run folder: {run_dir}  ({summary['wall_time_s']} s)")
    for name, ok in summary["checks"].items():
        print(f"  [{'holds' if ok else 'FAILS'}] {name}")


def _cmd_experiment_report(args) -> int:
    from normlab.lab.report import write_report  # noqa: PLC0415

    try:
        path = write_report(args.runs, args.out)
    except FileNotFoundError as e:
        print(str(e), file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


def _cmd_experiment_compare(args) -> int:
    from normlab.lab.compare import compare_runs  # noqa: PLC0415

    try:
        lines = compare_runs(args.run_a, args.run_b)
    except FileNotFoundError as e:
        print(str(e), file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def _cmd_demo(args) -> int:
    """The README's main job: two experiments at full size on embedded data, one report."""
    args.names = list(DEMO_EXPERIMENTS)
    args.set = None
    args.report = args.report or str(Path(args.out) / "demo-report.html")
    return _cmd_experiment_run(args)


def _seed(text):
    """``--seed``: an int in [0, 2**63) (NumPy's Generator refuses negative seeds)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 0 <= v < 2 ** 63:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**63), got {text!r}")
    return v


def _cmd_info(args) -> int:
    from normlab.lab.runs import env_info  # noqa: PLC0415

    for k, v in env_info().items():
        if k == "kernels":
            v = _kernels_line(v)
        elif isinstance(v, dict):  # blas
            v = ", ".join(f"{sk}={sv}" for sk, sv in v.items())
        print(f"{k:12s} {v}")
    return 0


def _kernels_line(info: dict) -> str:
    """``compiled (compiled kernels: numpy: numba 0.61.2, 15 ops; cupy: none)``."""
    parts = []
    for backend, entry in info.items():
        if backend == "setting":
            continue
        desc = f"{entry['provider']}, {len(entry['ops'])} ops" if entry["ops"] else "none"
        if entry.get("failed"):
            desc += "; failed: " + ", ".join(f"{p} ({why})" for p, why in entry["failed"].items())
        parts.append(f"{backend}: {desc}")
    return f"{info['setting']} (compiled kernels: {'; '.join(parts)})"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="normlab", description="normlab: a deep-learning lab built around Batch "
                "Normalization.")
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of a failure (default: one line)")
    p.add_argument("--threads", type=_positive(int), default=None, metavar="N",
                   help="threads for normlab's work (default: NUMBA_NUM_THREADS or "
                   "OMP_NUM_THREADS, else every CPU); NumPy's BLAS runs on one")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    g = sub.add_parser("gradcheck", help="numerically check every registered module (float64)")
    g.add_argument("--only", nargs="*", default=None, metavar="NAME",
                   help="check only modules whose name contains one of these")
    g.add_argument("--seed", type=_seed, default=0, help="seed of inputs and random dout")
    g.set_defaults(func=_cmd_gradcheck)

    ex = sub.add_parser("experiment", help="list, run and report the lab's experiments")
    exsub = ex.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
    exsub.add_parser("list", help="list the experiments and their claims").set_defaults(
        func=_cmd_experiment_list)
    r = exsub.add_parser("run", help="run experiments and write run folders and a report")
    r.add_argument("names", nargs="+", metavar="NAME", help="experiment names, or 'all'")
    r.add_argument("--smoke", action="store_true", help="tiny size that finishes in seconds")
    r.add_argument("--seed", type=_seed, default=0, help="seed of the experiment's Generator")
    r.add_argument("--out", default="runs", help="parent folder of run folders (default: runs)")
    r.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="override config fields")
    r.add_argument("--report", default=None, help="path of the HTML report (default: "
                   "report.html in the run folder, or in OUT for several experiments)")
    r.set_defaults(func=_cmd_experiment_run)
    rep = exsub.add_parser("report", help="write one HTML page for run folders")
    rep.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    rep.add_argument("--out", default="report.html", help="output HTML file")
    rep.set_defaults(func=_cmd_experiment_report)
    cmp_ = exsub.add_parser("compare", help="show what differs between two run folders")
    cmp_.add_argument("run_a", metavar="RUN_A", help="run folder")
    cmp_.add_argument("run_b", metavar="RUN_B", help="run folder")
    cmp_.set_defaults(func=_cmd_experiment_compare)
    from normlab.data import DATASETS  # noqa: PLC0415
    from normlab.lab.train_command import OPTIMIZERS  # noqa: PLC0415
    from normlab.models import MODELS  # noqa: PLC0415

    t = sub.add_parser("train", help="train a registered model on a data set and report")
    t.add_argument("--model", required=True, choices=MODELS, metavar="MODEL",
                   help=f"one of: {', '.join(MODELS)}")
    t.add_argument("--data", default="digits", choices=DATASETS, metavar="DATA",
                   help=f"one of: {', '.join(DATASETS)} (default: digits)")
    t.add_argument("--norm", default="batch", choices=("batch", "layer", "group", "instance",
                                                       "none"), help="normalization layer")
    t.add_argument("--epochs", type=_positive(int), default=3)
    t.add_argument("--batch-size", type=_positive(int), default=64)
    t.add_argument("--lr", type=_positive(float), default=None,
                   help="learning rate (default: 0.05 for sgd/momentum, 1e-3 for adam)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="momentum")
    t.add_argument("--hidden", default="100,100", help="MLP hidden widths (default: 100,100)")
    t.add_argument("--n-train", type=_positive(int), default=None,
                   help="use a random subset of the training set")
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--out", default="runs", help="parent folder of run folders (default: runs)")
    t.add_argument("--resume", default=None, metavar="CHECKPOINT_DIR",
                   help="continue a run from its checkpoint folder, or its run folder "
                        "(bit-identical)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--nproc", type=_positive(int), default=None, metavar="N",
                   help="data-parallel on N processes: relaunches this command under mpiexec "
                   "(needs normlab[mpi]); SyncBatchNorm keeps it equal to one process")
    t.set_defaults(func=cmd_train)
    from normlab.lab.data_command import add_data_parser, add_train_data_options  # noqa: PLC0415

    add_train_data_options(t)
    add_data_parser(sub, _Parser)
    from normlab.lab.export_command import add_export_parser  # noqa: PLC0415

    add_export_parser(sub)
    d = sub.add_parser("demo", help="run activation-stats and bn-vs-none on embedded data "
                       "(offline, a few minutes on 2 cores) and write an HTML report")
    d.add_argument("--smoke", action="store_true", help="tiny size that finishes in seconds")
    d.add_argument("--seed", type=_seed, default=0, help="seed of the experiments' Generator")
    d.add_argument("--out", default="runs", help="parent folder of run folders (default: runs)")
    d.add_argument("--report", default=None, help="HTML report path (default: OUT/demo-report.html)")
    d.set_defaults(func=_cmd_demo)
    sub.add_parser("info", help="versions, platform, git commit").set_defaults(func=_cmd_info)
    return p


def _set_threads(n: int | None) -> None:
    """``normlab.set_num_threads`` for this process: ``n``, or normlab's default count. The
    CLI is normlab's own process, so it takes the call that puts NumPy's BLAS on one
    thread (``set_num_threads``): without it each model pass would toggle BLAS's count."""
    import normlab  # noqa: PLC0415
    from normlab.functional import _parallel  # noqa: PLC0415

    normlab.set_num_threads(n if n is not None else _parallel.thread_count())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        print(f"{e} (see normlab --help)", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help / --version
        return int(e.code or 0)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    args.argv = argv
    _set_threads(args.threads)
    tune_allocator()  # freed activations reused, not page-faulted again (normlab.allocator)
    command = " ".join(x for x in ("normlab", args.command, getattr(args, "action", None)) if x)
    try:
        return int(args.func(args))
    except _UsageError as e:
        print(str(e), file=sys.stderr)
        return 2
    except BrokenPipeError:  # `normlab ... | head` closed the pipe: not a disk problem
        try:  # what is still buffered goes nowhere instead of failing again at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except (NormlabError, OSError, MemoryError) as e:
        # A known failure (bad data, divergence, a full or read-only disk, a locked run
        # folder): one line and exit 1; --debug adds the traceback.
        if args.debug:
            traceback.print_exc()
        what = "" if isinstance(e, NormlabError) else f"{type(e).__name__}: "
        if isinstance(e, OSError) and not isinstance(e, NormlabError) and e.strerror:
            where = f" ({e.filename})" if e.filename else ""
            print(f"{command}: expected a readable/writable disk, got {what}{e.strerror}{where}. "
                  "Free space or choose another --out.", file=sys.stderr)
        else:
            print(f"{command}: {what}{_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
