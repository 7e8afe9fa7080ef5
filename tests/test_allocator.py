"""normlab.tune_allocator: glibc's thresholds fixed so freed arrays are reused; the
environment wins; the normlab command calls it; importing normlab does not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from normlab import allocator, cli
from normlab.errors import NormlabValueError

# In a fresh process: how many chunks glibc has mmapped, before and after a 4 MiB array is
# made (mallinfo2, glibc >= 2.33), with or without tune_allocator() first.
PROBE = """
import ctypes, sys
import numpy as np
import normlab
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
if sys.argv[1] == "import":  # the whole library, as a training script imports it
    import normlab.models, normlab.nn, normlab.train
tuned = normlab.tune_allocator() if sys.argv[1] == "tune" else None
before = libc.mallinfo2().hblks
a = np.ones(2**20, dtype=np.float32)
print(tuned, libc.mallinfo2().hblks - before)
"""


def _probe(mode, **env):
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    run_env.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         env=run_env, check=True)
    tuned, mmapped = out.stdout.split()
    return tuned, int(mmapped)


@pytest.fixture(autouse=True)
def _glibc():
    if allocator._libc() is None:
        pytest.skip("not glibc: tune_allocator changes nothing there")


def test_large_arrays_come_from_the_heap_once_tuned():
    assert _probe("plain") == ("None", 1)  # glibc's start: 4 MiB > 128 KiB, mmapped
    assert _probe("tune") == ("True", 0)  # below the 32 MiB threshold: from the heap


def test_the_environment_wins():
    assert _probe("tune", MALLOC_MMAP_THRESHOLD_="131072") == ("False", 1)
    assert _probe("tune", MALLOC_TRIM_THRESHOLD_="131072")[0] == "False"


@pytest.mark.parametrize("kw,match", [
    (dict(mmap_threshold=2**26), r"expected mmap_threshold to be an int of bytes in "
                                 r"\[0, 33554432\], got 67108864"),
    (dict(mmap_threshold=-1), r"got -1"),
    (dict(trim_threshold=1.5), r"expected trim_threshold to be an int of bytes .*got 1\.5"),
    (dict(trim_threshold=True), r"got True"),
])
def test_bad_thresholds_are_refused(kw, match):
    with pytest.raises(NormlabValueError, match=match):
        allocator.tune_allocator(**kw)


def test_the_normlab_command_tunes_and_importing_does_not(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli, "tune_allocator", lambda: calls.append(1) or True)
    assert cli.main(["info"]) == 0
    assert calls == [1]
    capsys.readouterr()
    assert _probe("import") == ("None", 1)  # importing normlab leaves glibc's behaviour
