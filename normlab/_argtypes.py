"""argparse ``type=`` converters shared by ``normlab.cli`` and the lab's subcommands."""

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
