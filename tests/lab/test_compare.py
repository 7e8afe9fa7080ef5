"""`normlab experiment compare`: what differs between two run folders."""

import json

import pytest

from normlab.cli import main
from normlab.lab.compare import compare_runs, flatten


def _run(tmp_path, sub, *sets):
    argv = ["experiment", "run", "weight-scale", "--smoke", "--out", str(tmp_path / sub),
            "--set", "n_scales=2", "epochs=1", "n_train=200", "width=16", *sets]
    assert main(argv) == 0
    return next((tmp_path / sub / "weight-scale").iterdir())


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    return _run(tmp, "a"), _run(tmp, "b"), _run(tmp, "c", "seeds=2")


def test_same_command_twice_is_identical(three_runs, capsys):
    a, b, _ = three_runs
    capsys.readouterr()
    assert main(["experiment", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "results.json: identical (bit for bit)" in out
    assert "config: identical" in out and "summary numbers: identical" in out
    assert "claim checks: all 2 agree" in out
    assert out.startswith(f"A: {a}")


def test_a_changed_config_shows_its_consequences(three_runs, capsys):
    a, _, c = three_runs
    lines = compare_runs(a, c)
    text = "\n".join(lines)
    assert "results.json: differs" in text
    assert "config: 1 difference" in text and "  seeds: 1 -> 2" in text
    # the second seed gives the summary an interval it did not have
    summary_c = json.loads((c / "summary.json").read_text())["summary"]
    low = summary_c["batch"]["mean_best_val_acc_over_scales"]["low"]
    assert f"batch.mean_best_val_acc_over_scales.low: — -> {low:.6g}" in text
    assert "batch.mean_best_val_acc_over_scales.n: 1 -> 2  (+1)" in text


def test_claim_outcome_changes_are_listed(three_runs, tmp_path):
    a, b, _ = three_runs
    summary = json.loads((b / "summary.json").read_text())
    key = next(iter(summary["checks"]))
    summary["checks"][key] = not summary["checks"][key]
    (b / "summary.json").write_text(json.dumps(summary))
    text = "\n".join(compare_runs(a, b))
    word = {True: "holds", False: "FAILS"}
    assert "claim checks: 1 differ" in text
    assert f"[{word[not summary['checks'][key]]} -> {word[summary['checks'][key]]}] {key}" in text


def test_compare_a_missing_folder(three_runs, tmp_path, capsys):
    a = three_runs[0]
    assert main(["experiment", "compare", str(a), str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "expected a run folder with summary.json, got" in err and "nothing" in err
    with pytest.raises(FileNotFoundError, match="expected a run folder with summary.json"):
        compare_runs(tmp_path / "nothing", a)


def test_compare_needs_two_folders(capsys):
    assert main(["experiment", "compare", "only-one"]) == 2
    assert "the following arguments are required: RUN_B" in capsys.readouterr().err


def test_flatten():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": [{"e": None}]}) == {
        "a.b": 1, "a.c": [1, 2], "d[0].e": None}
