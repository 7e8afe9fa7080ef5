"""Every experiment runs at smoke size offline, its claim holds at that size, and running it
twice gives the same results bit for bit."""

import json

import pytest

from normlab.lab.registry import experiment_names, get_experiment
from normlab.lab.runs import run_experiment
from normlab.lab.seeding import Seeds


@pytest.mark.parametrize("name", experiment_names())
def test_smoke_run_writes_a_complete_run_folder_and_reproduces(name, tmp_path):
    run_dir = run_experiment(name, smoke=True, seed=0, out=tmp_path / "a")
    for f in ("config.json", "env.json", "metrics.jsonl", "results.json", "summary.json"):
        assert (run_dir / f).is_file(), f
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["figures"], "an experiment must draw at least one figure"
    for rel in summary["figures"]:
        png = (run_dir / rel).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert summary["checks"], "an experiment must check its claim"
    failed = [k for k, ok in summary["checks"].items() if not ok]
    assert not failed, failed
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line) for line in lines)
    env = json.loads((run_dir / "env.json").read_text())
    assert env["git_commit"] and "blas" in env and "kernels" in env

    again = run_experiment(name, smoke=True, seed=0, out=tmp_path / "b")
    for f in ("results.json", "metrics.jsonl", "config.json"):
        assert (again / f).read_bytes() == (run_dir / f).read_bytes(), f
    summary2 = json.loads((again / "summary.json").read_text())
    assert summary2["summary"] == summary["summary"] and summary2["checks"] == summary["checks"]


@pytest.mark.parametrize("name", experiment_names())
def test_smoke_config_is_smaller_than_default(name):
    exp = get_experiment(name)
    assert exp.Config.smoke() != exp.Config()


def test_activation_stats_claims_at_smoke_size():
    exp = get_experiment("activation-stats")
    res = exp.run(exp.Config.smoke(), Seeds("activation-stats", 0))
    c = res["curves"]
    assert c["tanh/small/none"]["std"][-1] < 1e-5
    he = c["relu/he/none"]
    assert all(0.5 <= a / b <= 2 for a, b in zip(he["last_std_per_seed"], he["first_std_per_seed"]))
    assert c["relu/xavier/none"]["std"][-1] < 0.1 * c["relu/xavier/none"]["std"][0]
    assert c["tanh/zeros/bn"]["std"][-1] == 0.0  # BN cannot break zero-init symmetry


# Published claims that the full-size runs (README's table) do NOT reproduce with normlab on
# this data: they are reported as failing in the run folder and the report, and this list
# makes the slow test fail if one of them starts to hold (then move it back to the table).
NOT_REPRODUCED = {
    "init-training": {
        "relu30: accuracy range over inits smaller with BN, in every seed (paired by seed)",
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("name", experiment_names())
def test_full_size_claims_hold(name, tmp_path):
    run_dir = run_experiment(name, smoke=False, seed=0, out=tmp_path)
    checks = json.loads((run_dir / "summary.json").read_text())["checks"]
    expected_to_fail = NOT_REPRODUCED.get(name, set())
    assert expected_to_fail <= set(checks), sorted(expected_to_fail - set(checks))
    assert {k for k, ok in checks.items() if not ok} == expected_to_fail, checks


@pytest.mark.parametrize("full", [False, True])
def test_batch_size_checks_the_mnist1d_claims_only_at_full_length(full):
    # at the smoke length BN's small-batch mismatch has not shown: the comparison is
    # reported (paired differences) but not checked; at full length both claims are
    exp = get_experiment("batch-size")
    key = f"MNIST-1D test accuracy at batch size {exp.RENORM_BATCH}, Batch Renorm − BatchNorm"
    paired = {key: {"every_seed": False, "mean": 0.12}}
    checks = exp.check({"paired": paired, "small": 2, "large": 32, "renorm_full": full})
    mnist = {k: ok for k, ok in checks.items() if k.startswith("MNIST-1D")}
    if full:
        assert mnist == {
            f"MNIST-1D, batch size {exp.RENORM_BATCH}: Batch Renorm beats BatchNorm in every "
            "seed (paired by seed)": False,
            f"MNIST-1D, batch size {exp.RENORM_BATCH}: Batch Renorm >= BatchNorm + 10 points "
            "(mean over seeds)": True}
    else:
        assert mnist == {}
