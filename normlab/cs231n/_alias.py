"""``normlab.cs231n.alias()``: make ``import cs231n...`` resolve to normlab's course modules.

One call at the top of a course notebook, and its import lines run unchanged::

    import normlab.cs231n; normlab.cs231n.alias()
    from cs231n.classifiers.fc_net import *      # normlab.cs231n.classifiers.fc_net

How: a meta-path finder goes to the FRONT of ``sys.meta_path``, so it is asked before the
path-based finder that would find the assignment's own ``cs231n/`` folder in the working
directory. For a name in ``MODULES`` it hands back normlab's module object itself (one
module, two names: ``cs231n.layers is normlab.cs231n.layers``); for any other ``cs231n.*``
name it raises ``ModuleNotFoundError`` saying which modules normlab provides. ``cs231n``
entries already in ``sys.modules`` that are not normlab's (a notebook that imported the
course folder before calling ``alias()``) are dropped, so the next import gets normlab's.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__all__ = ["alias", "unalias", "MODULES"]

#: course module name -> normlab module name
MODULES = {
    "cs231n": "normlab.cs231n",
    "cs231n.layers": "normlab.cs231n.layers",
    "cs231n.layer_utils": "normlab.cs231n.layer_utils",
    "cs231n.fast_layers": "normlab.cs231n.fast_layers",
    "cs231n.optim": "normlab.cs231n.optim",
    "cs231n.solver": "normlab.cs231n.solver",
    "cs231n.gradient_check": "normlab.cs231n.gradient_check",
    "cs231n.data_utils": "normlab.cs231n.data_utils",
    "cs231n.vis_utils": "normlab.cs231n.vis_utils",
    "cs231n.classifiers": "normlab.cs231n.classifiers",
    "cs231n.classifiers.fc_net": "normlab.cs231n.classifiers.fc_net",
    "cs231n.classifiers.cnn": "normlab.cs231n.classifiers.cnn",
}


def _ours(name: str) -> bool:
    return name == "cs231n" or name.startswith("cs231n.")


class _Loader(importlib.abc.Loader):
    """Returns the already-built normlab module; executing it again would re-run its code."""

    def __init__(self, target: str):
        self.target = target
        self._spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # importlib set module.__spec__ to the alias spec; give the module back its own, so
        # that importlib.reload (e.g. %autoreload) reloads normlab's file.
        module.__spec__ = self._spec


class CourseAliasFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder for the ``cs231n`` namespace (see the module docstring)."""

    def find_spec(self, fullname, path=None, target=None):
        if not _ours(fullname):
            return None
        if fullname not in MODULES:
            raise ModuleNotFoundError(
                f"normlab.cs231n.alias: expected one of the assignment 2 modules "
                f"{', '.join(sorted(MODULES))}, got {fullname!r}. Call normlab.cs231n.unalias() "
                "to use the course's own folder instead.",
                name=fullname,
            )
        target_name = MODULES[fullname]
        is_pkg = hasattr(importlib.import_module(target_name), "__path__")
        return importlib.util.spec_from_loader(fullname, _Loader(target_name), is_package=is_pkg)


def _installed() -> list:
    return [f for f in sys.meta_path if isinstance(f, CourseAliasFinder)]


def _drop_foreign_entries() -> None:
    for name in [n for n in sys.modules if _ours(n)]:
        target = MODULES.get(name)
        if target is None or sys.modules[name] is not sys.modules.get(target):
            del sys.modules[name]


def alias() -> None:
    """Route ``import cs231n...`` in this process to normlab's course modules.

    Idempotent: a second call changes nothing (the finder stays first in
    ``sys.meta_path``). Names already bound in a namespace by an earlier ``from cs231n...
    import`` of the course's own folder keep pointing there: call ``alias()`` first.
    """
    for finder in _installed():
        sys.meta_path.remove(finder)
    sys.meta_path.insert(0, CourseAliasFinder())
    _drop_foreign_entries()


def unalias() -> None:
    """Undo :func:`alias`: remove the finder and the ``cs231n`` entries of ``sys.modules``."""
    for finder in _installed():
        sys.meta_path.remove(finder)
    for name in [n for n in sys.modules if _ours(n)]:
        del sys.modules[name]
