"""A rank that raises or dies stops the whole job promptly, with a clear error.

Without the abort the other ranks would wait forever in their next collective: the
launch helper's timeout (which kills the whole process group) turns a hang into a
failure, and each case must end long before it.
"""

from __future__ import annotations

import pytest

from tests.distributed._mpi import launch

LIMIT = 60  # seconds; each case ends in about a second when it works


@pytest.mark.parametrize("mode, status", [("raise", 1), ("die", None), ("exit", 3)])
def test_a_failing_rank_stops_every_rank(mode, status):
    proc = launch(2, "_fault_worker", mode, timeout=LIMIT, check=False)
    assert proc.returncode != 0
    if status is not None:
        assert proc.returncode == status
    assert "finished all steps" not in proc.stdout  # rank 0 was stopped, not left to hang
    assert proc.elapsed < LIMIT
    if mode == "raise":
        lines = [line for line in proc.stderr.splitlines() if "normlab.distributed:" in line]
        assert lines == ["normlab.distributed: rank 1 of 2 failed: RuntimeError: boom at "
                         "step 2"]
