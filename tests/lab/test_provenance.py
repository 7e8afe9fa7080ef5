"""env.json records the code version, BLAS and the kernel setting."""

from normlab.functional import _kernels
from normlab.lab import provenance
from normlab.lab.runs import env_info


def test_env_info_records_git_blas_and_kernels():
    info = env_info()
    assert info["git_commit"] == provenance.git_state()["git_commit"]
    assert isinstance(info["blas"], dict) and info["blas"]
    assert any(lib["user_api"] == "blas" for lib in info["blas"].values())
    assert all(isinstance(lib["num_threads"], int) for lib in info["blas"].values())
    assert info["kernels"]["compiled_enabled"] is True


def test_kernel_switch_is_recorded():
    old = _kernels.use_compiled(False)
    try:
        assert provenance.kernel_setting()["compiled_enabled"] is False
    finally:
        _kernels.use_compiled(old)


def test_outside_a_git_checkout_the_commit_is_unknown(monkeypatch):
    monkeypatch.setattr(provenance, "_git", lambda *args: None)
    assert provenance.git_state() == {"git_commit": "unknown", "git_dirty": None}
