"""Import direction: normlab.d2l sits on top; the core never imports it."""

import subprocess
import sys


def test_core_never_imports_d2l():
    code = ("import sys, normlab.functional, normlab.nn, normlab.models, normlab.data, "
            "normlab.train, normlab.cs231n.layers; "
            "sys.exit(any(m.startswith('normlab.d2l') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_d2l_does_not_import_matplotlib_until_it_plots():
    code = ("import sys, normlab.d2l; sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
