"""``normlab data fetch NAME`` and the data options of ``normlab train``.

Kept out of ``cli.py`` so that the parser there only registers them:
``add_data_parser(sub)`` adds the ``data`` command, ``add_train_data_options(t)`` adds
``--augment``, ``--download`` and ``--checkpoint-every`` to ``train``, and
``train_data_kwargs(args)`` turns them into ``train_model`` keywords.
"""

from __future__ import annotations

import sys

from normlab._argtypes import positive

__all__ = ["add_data_parser", "add_train_data_options", "train_data_kwargs", "cmd_data_fetch"]


def cmd_data_fetch(args) -> int:
    from normlab.data.downloads import download  # noqa: PLC0415

    try:
        folder = download(args.name, root=args.root, mirror=args.mirror,
                          progress=False if args.no_progress else None)
    except (ValueError, OSError) as e:  # checksum, unsafe archive, HTTP/network errors
        print(f"normlab data fetch: {e}", file=sys.stderr)
        return 1
    print(f"{args.name}: verified and ready in {folder}")
    return 0


def add_data_parser(sub, parser_class) -> None:
    """Register ``normlab data fetch NAME [--root DIR] [--mirror URL] [--no-progress]``."""
    from normlab.data.downloads import SOURCES  # noqa: PLC0415

    d = sub.add_parser("data", help="fetch and verify the real data sets")
    dsub = d.add_subparsers(dest="action", metavar="ACTION", parser_class=parser_class,
                            required=True)
    f = dsub.add_parser("fetch", help="download, verify (published checksums) and unpack a "
                        "data set once; nothing else in normlab downloads")
    f.add_argument("name", choices=tuple(SOURCES), metavar="NAME",
                   help=f"one of: {', '.join(SOURCES)}")
    f.add_argument("--root", default=None, help="parent folder (default: $NORMLAB_DATA or "
                   "~/data)")
    f.add_argument("--mirror", default=None, help="base URL or local folder serving "
                   "<name>/<file> (default: $NORMLAB_MIRROR, else the official site)")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_data_fetch)


def add_train_data_options(t) -> None:
    """``--augment``, ``--download`` and ``--checkpoint-every`` for ``normlab train``."""
    t.add_argument("--augment", default="auto", metavar="LIST",
                   help="training-loader augmentation: 'crop,flip', 'crop', 'flip' or 'none' "
                   "(default auto: crop,flip for ResNets on CIFAR sets, else none)")
    t.add_argument("--download", action="store_true", help="fetch and verify a real data "
                   "set (cifar10, cifar100, mnist, fashion-mnist) first; see `normlab data`")
    t.add_argument("--checkpoint-every", type=positive(int), default=None, metavar="STEPS",
                   help="also checkpoint every STEPS steps (default: at epoch ends)")


def train_data_kwargs(args) -> dict:
    """The ``train_model`` keywords of the options added by ``add_train_data_options``."""
    return {"augment": args.augment, "download": args.download,
            "checkpoint_every": args.checkpoint_every}
