"""``normlab train``: the command, its ``--nproc N`` relaunch under mpiexec, and a rank's run.

The training itself is ``normlab.lab.train_command.train_model``; this module turns the
command line into that call and its failures into exit codes (1: a known failure, 2: a usage
error) and, under MPI, makes one failing rank stop the whole job.
"""

from __future__ import annotations

import sys

from normlab._argtypes import UsageError, one_line
from normlab.errors import DataError, NormlabError, StateError

__all__ = ["cmd_train"]


def _strip_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (what the launched ranks get)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _launch_train(args) -> int:
    """``--nproc N``: run this same command on N processes under mpiexec and wait."""
    from normlab.distributed import mpi_problem, run_mpiexec  # noqa: PLC0415

    problem = mpi_problem()
    if problem is not None:
        print(f"normlab train: --nproc {args.nproc}: {problem}.", file=sys.stderr)
        return 1
    rank_argv = ["-m", "normlab", *_strip_nproc(args.argv)]
    rc = run_mpiexec(args.nproc, rank_argv).returncode
    if rc != 0:
        print(f"normlab train: expected the {args.nproc} processes under mpiexec to succeed, "
              f"got exit status {rc}. The failing rank's error is printed above.",
              file=sys.stderr)
        return 1
    return 0


def cmd_train(args) -> int:
    """``normlab train``: one process, ``--nproc N`` (relaunch under mpiexec), or a rank of an
    mpiexec launch."""
    from normlab.distributed import init, launched_by_mpiexec  # noqa: PLC0415
    from normlab.distributed.comm import say  # noqa: PLC0415

    under_mpi = launched_by_mpiexec()
    nproc = args.nproc if args.nproc is not None else 1
    comm = init() if under_mpi else None
    main_rank = comm is None or comm.rank == 0
    if comm is not None:
        if args.nproc is not None and args.nproc != comm.size:
            if main_rank:  # every rank finds it; one says it
                say(f"normlab train: error: expected --nproc {comm.size} (the processes "
                    f"mpiexec started), got --nproc {args.nproc}. Leave --nproc out under "
                    "mpiexec")
            return 2
        nproc = comm.size
    if nproc > args.batch_size:
        if main_rank:
            say(f"normlab train: error: expected --nproc at most --batch-size "
                f"({args.batch_size}), got {nproc} processes. Every process needs a part "
                "of each batch")
        return 2
    if comm is None and nproc > 1:
        return _launch_train(args)
    if comm is not None and comm.size > 1:
        try:
            return _train_here(args, comm)
        except BaseException as e:  # noqa: BLE001 - one rank failing must stop all of them
            what = "" if isinstance(e, NormlabError) else f"{type(e).__name__}: "
            say(f"normlab train: rank {comm.rank} of {comm.size} failed: {what}{one_line(e)}")
            comm.abort(1)  # never returns: mpiexec ends every rank
    return _train_here(args, comm)


def _train_here(args, comm) -> int:
    from normlab.lab.data_command import train_data_kwargs  # noqa: PLC0415
    from normlab.lab.train_command import train_model  # noqa: PLC0415

    main = comm is None or comm.rank == 0
    if args.resume is not None and args.lr is not None:
        raise UsageError(
            f"normlab train: error: expected no --lr with --resume (a resumed run continues "
            f"bit-identically with the learning rate saved in its checkpoint), got --lr "
            f"{args.lr}. Start a new run to train with another learning rate")
    if args.lr is None:
        args.lr = 1e-3 if args.optimizer == "adam" else 0.05
    try:
        hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    except ValueError:
        raise UsageError(f"normlab train: error: expected --hidden as comma-separated ints, "
                          f"got {args.hidden!r}") from None
    try:
        run_dir, summary = train_model(
            model=args.model, data=args.data, norm=None if args.norm == "none" else args.norm,
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            optimizer=args.optimizer, seed=args.seed, out=args.out, hidden=hidden,
            n_train=args.n_train, resume=args.resume,
            progress=False if args.no_progress else None, comm=comm,
            **train_data_kwargs(args))
    except (DataError, StateError):
        raise  # a corrupt data set or checkpoint: a failure (exit 1), not a usage error
    except (ValueError, FileNotFoundError) as e:
        if not isinstance(e, NormlabError) or (comm is not None and comm.size > 1):
            raise  # unknown errors keep their traceback; under MPI _cmd_train stops every rank
        print(f"normlab train: {one_line(e)}", file=sys.stderr)
        return 2
    if not main:
        return 0
    print(f"trained {args.model} on {args.data} (norm={args.norm}) for {summary['steps']} steps "
          f"in {summary['wall_time_s']} s")
    for split in ("train", "val", "test"):
        if f"{split}_acc" in summary:
            print(f"  {split:5s}  loss {summary[split + '_loss']:.4f}  accuracy "
                  f"{summary[split + '_acc']:.4f}")
    print(f"run folder: {run_dir}")
    return 0
