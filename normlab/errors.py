"""normlab's one exception hierarchy.

Every failure normlab detects itself raises a ``NormlabError``. Each subclass also derives
from the matching built-in, so ``except ValueError`` keeps working for callers that never
heard of normlab, while the CLI (and any caller) can catch ``NormlabError`` to tell a known,
explained failure from a bug:

=====================  ==========================  =========================================
class                  also a                      raised for
=====================  ==========================  =========================================
NormlabValueError      ValueError                  a bad value or shape (hyperparameters, inputs)
ShapeError             ValueError                  an array of the wrong shape (``dout`` too)
NormlabTypeError       TypeError                   a wrong type or dtype (integer input, lists)
CallOrderError         RuntimeError                calls in the wrong order (backward first)
StateError             ValueError, KeyError        a malformed state dict / JSON record / param dict
DataError              ValueError                  a corrupt data file, NaN/inf in a data set
NormlabOSError         OSError                     path problems (not writable, locked)
MissingPathError       FileNotFoundError           a missing file or folder
PathExistsError        FileExistsError             a path that must not exist yet
NormlabRuntimeError    RuntimeError                other failures of a run (divergence ...)
=====================  ==========================  =========================================

Messages follow ``"{Owner}: expected {what}, got {actual}. {hint}"``.
"""

from __future__ import annotations

__all__ = ["NormlabError", "NormlabValueError", "ShapeError", "NormlabTypeError",
           "CallOrderError", "StateError", "DataError", "NormlabOSError", "MissingPathError",
           "PathExistsError", "NormlabRuntimeError"]


class NormlabError(Exception):
    """Base of every error normlab raises on purpose (bad input, bad state, bad files)."""


class NormlabValueError(NormlabError, ValueError):
    """A value or shape normlab cannot use."""


class ShapeError(NormlabValueError):
    """An array of the wrong shape (an input, a parameter, a ``dout``)."""


class NormlabTypeError(NormlabError, TypeError):
    """A wrong type or dtype (integer input to a float layer, a list where an array belongs)."""


class CallOrderError(NormlabError, RuntimeError):
    """Calls in the wrong order (``backward`` before ``forward``, ``transform`` before ``fit``)."""


class StateError(NormlabValueError, KeyError):
    """A dict-shaped state (state dict, checkpoint JSON, history record) lacking or mistyping keys.

    A ``KeyError`` too, so code that caught the bare KeyError still works; printed as
    its message (``KeyError`` would print the message's repr).
    """

    def __str__(self) -> str:
        return Exception.__str__(self)


class DataError(NormlabValueError):
    """A corrupt or hostile data file, or a data set holding NaN/inf."""


class NormlabOSError(NormlabError, OSError):
    """A path normlab cannot use: missing, not writable, locked by another run.

    ``errno``/``strerror``/``filename`` may be set from the underlying OSError; the printed
    text stays normlab's message.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingPathError(NormlabOSError, FileNotFoundError):
    """A file or folder that should exist does not."""


class PathExistsError(NormlabOSError, FileExistsError):
    """A file or folder that must not exist yet does."""


class NormlabRuntimeError(NormlabError, RuntimeError):
    """Another known failure of a run."""
