"""Every tutorial notebook in docs/tutorials/ runs top to bottom without an error.

Each is executed by nbclient in a fresh ``python3`` kernel (ipykernel in this environment),
in a temporary working directory, with this checkout's normlab first on the path. An injected
first cell proves which interpreter and which normlab the kernel uses. Outputs are not
committed: the test also fails on a notebook saved with outputs.
"""

import os
import sys
from pathlib import Path

import nbclient  # the 'test' extra installs nbclient, nbformat and ipykernel
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "docs" / "tutorials").glob("*.ipynb"))


def test_the_four_tutorials_are_there():
    assert [p.name for p in NOTEBOOKS] == [
        "01_batchnorm_from_scratch.ipynb", "02_why_it_works.ipynb", "03_d2l_chapter.ipynb",
        "04_cs231n_walkthrough.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_runs_offline_without_errors(path, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells and all(not c.outputs and c.execution_count is None for c in code_cells), \
        f"{path.name}: expected a notebook saved without outputs"
    probe = nbformat.v4.new_code_cell(
        "import sys, normlab; print(sys.executable); print(normlab.__file__)")
    nb.cells.insert(0, probe)
    # the kernel inherits this environment: this checkout's normlab first; one BLAS thread,
    # since on a loaded 2-core machine two OpenBLAS threads make small matmuls 100x slower
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    exe, normlab_file = nb.cells[0].outputs[0]["text"].split()
    assert Path(exe).resolve() == Path(sys.executable).resolve()
    assert Path(normlab_file).resolve().is_relative_to(REPO)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("output_type") == "error"]
    assert not errors
