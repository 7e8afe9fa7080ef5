"""What ``normlab.cli`` and the lab's subcommands share: argparse ``type=`` converters, the
usage-error exception (exit code 2) and the one-line form of an error."""

from __future__ import annotations

import argparse


def positive(kind):
    """An argparse ``type`` that parses ``kind`` (int or float) and rejects values <= 0."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return v
    return parse


class UsageError(Exception):
    """A wrong command line: ``normlab.cli.main`` prints it and returns exit code 2."""


def one_line(e: BaseException) -> str:
    """An exception as one line: its message with newlines folded."""
    text = " ".join(str(e).split())
    return text or type(e).__name__
