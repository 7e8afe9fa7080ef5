"""env.json records the code version, BLAS, the kernel setting and the threads."""

import normlab
from normlab.lab import provenance
from normlab.lab.runs import env_info


def test_env_info_records_git_blas_and_kernels():
    info = env_info()
    assert info["git_commit"] == provenance.git_state()["git_commit"]
    assert info["blas"]["library"] and isinstance(info["blas"]["threads"], int)
    assert info["kernels"]["setting"] == normlab.get_kernels()
    assert set(info["thread_env"]) >= {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"}


def test_kernel_switch_is_recorded():
    with normlab.kernels("reference"):
        assert provenance.reproducibility_info()["kernels"]["setting"] == "reference"
    with normlab.kernels("compiled"):
        assert provenance.reproducibility_info()["kernels"]["setting"] == "compiled"


def test_outside_a_git_checkout_the_commit_is_unknown(monkeypatch):
    monkeypatch.setattr(provenance, "_git", lambda *args: None)
    assert provenance.git_state() == {"git_commit": "unknown", "git_dirty": None}
