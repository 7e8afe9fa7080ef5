"""History: one record (a dict) per training step, saved as JSON lines."""

from __future__ import annotations

import json
import os

from normlab._io import atomic_write_bytes
from normlab.errors import MissingPathError, NormlabValueError, StateError

__all__ = ["History", "RECORD_KEYS"]

#: Keys of every record. ``val_*`` and ``epoch_train_*`` are ``None`` except on steps
#: where validation ran / an epoch ended; ``*_acc`` are ``None`` without the accuracy metric.
RECORD_KEYS = ("step", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
               "time", "epoch_end", "epoch_train_loss", "epoch_train_acc")


class History:
    """Records of a training run, in step order.

    ``history.records`` is a list of dicts with the keys of :data:`RECORD_KEYS`
    (``step`` and ``epoch`` are 1-based, ``time`` is wall seconds since the run began,
    summed over resumed runs). ``history["val_acc"]`` is the column of a key, keeping only
    the records where it is not ``None``; ``history.column(key, with_steps=True)`` also
    returns the matching steps, for plotting.
    """

    def __init__(self, records=None):
        self.records: list[dict] = [dict(r) for r in (records or [])]

    def append(self, record: dict) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else {}
        return f"History({len(self)} records, last step={last.get('step')})"

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def column(self, key: str, *, with_steps: bool = False):
        """Values of ``key`` over the records where it is not ``None``.

        Raises
        ------
        KeyError
            If no record has ``key`` at all (lists the available keys).
        """
        if not any(key in r for r in self.records):
            raise StateError(f"History: expected one of {self.keys()}, got {key!r}. "
                           "Check the spelling (e.g. 'val_acc', 'train_loss').")
        rows = [r for r in self.records if r.get(key) is not None]
        values = [r[key] for r in rows]
        if with_steps:
            return [r["step"] for r in rows], values
        return values

    __getitem__ = column

    def epochs(self) -> list[dict]:
        """The records of the steps that ended an epoch."""
        return [r for r in self.records if r.get("epoch_end")]

    def to_jsonl(self, path) -> None:
        """Write all records to ``path`` atomically, one JSON object per line."""
        text = "".join(json.dumps(r) + "\n" for r in self.records)
        atomic_write_bytes(os.fspath(path), text.encode())

    @classmethod
    def from_jsonl(cls, path) -> "History":
        """Read records written by :meth:`to_jsonl` or appended line by line.

        A last line without its newline is the mark of a process killed while appending;
        it is dropped. Any other unreadable line raises.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            On a line that is not a JSON object (names the line number).
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise MissingPathError(f"History.from_jsonl: expected a JSON-lines file, got "
                                    f"{path!r}, which does not exist.")
        with open(path) as f:
            text = f.read()
        lines = text.split("\n")
        truncated = lines[-1] != ""
        lines = lines[:-1] if not truncated else lines
        records = []
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if truncated and i == len(lines):
                    break
                raise NormlabValueError(f"History.from_jsonl: expected a JSON object on line {i} "
                                 f"of {path!r}, got {line[:60]!r}. The file is corrupt.") from None
            if not isinstance(rec, dict):
                raise NormlabValueError(f"History.from_jsonl: expected a JSON object on line {i} "
                                 f"of {path!r}, got {type(rec).__name__}.")
            records.append(rec)
        return cls(records)


def append_jsonl(path, record: dict) -> None:
    """Append one record as a line and flush it (the Trainer's live ``history.jsonl``)."""
    with open(os.fspath(path), "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
