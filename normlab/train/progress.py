"""A tqdm progress bar that stays silent unless stderr is a terminal."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

from normlab.errors import NormlabTypeError

__all__ = ["ProgressBar", "progress_enabled"]


def progress_enabled(progress) -> bool:
    """``progress=None`` means auto: on only when ``sys.stderr`` is a terminal.

    Logs redirected to a file or captured by a test stay free of carriage returns.

    Raises
    ------
    TypeError
        If ``progress`` is not ``None`` or a bool.
    """
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty and isatty())
    if not isinstance(progress, bool):
        raise NormlabTypeError(f"Trainer: expected progress to be None (auto), True or False, got "
                        f"{type(progress).__name__}.")
    return progress


class ProgressBar:
    """Steps bar with a ``loss / acc / lr`` postfix; a no-op when disabled."""

    def __init__(self, enabled: bool, total: int | None, initial: int = 0, unit: str = "step"):
        self.bar = None
        if enabled:
            self.bar = tqdm(total=total, initial=initial, unit=unit, file=sys.stderr,
                            dynamic_ncols=True, leave=True)

    def update(self, record: dict) -> None:
        if self.bar is None:
            return
        post = {"epoch": record["epoch"], "loss": f"{record['train_loss']:.4f}"}
        if record.get("train_acc") is not None:
            post["acc"] = f"{record['train_acc']:.3f}"
        if record.get("val_acc") is not None:
            post["val_acc"] = f"{record['val_acc']:.3f}"
        if record.get("lr") is not None:
            post["lr"] = f"{record['lr']:.3g}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
