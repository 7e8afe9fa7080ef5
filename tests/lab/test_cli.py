"""The CLI through main(argv): exit codes, messages, run folders, reports."""

import json
from pathlib import Path

import pytest

from normlab.cli import main


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "experiment" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_wrong_command_is_a_usage_error(capsys):
    assert main(["bogus"]) == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_wrong_option_type(capsys):
    assert main(["experiment", "run", "activation-stats", "--seed", "abc"]) == 2
    assert "invalid int value: 'abc'" in capsys.readouterr().err


def test_unknown_experiment(capsys):
    assert main(["experiment", "run", "nope", "--smoke"]) == 2
    assert "expected experiment names from" in capsys.readouterr().err


def test_bad_set_pair(capsys, tmp_path):
    assert main(["experiment", "run", "activation-stats", "--smoke", "--out", str(tmp_path),
                 "--set", "depth"]) == 2
    assert "expected --set KEY=VALUE, got 'depth'" in capsys.readouterr().err


def test_report_of_a_missing_folder(capsys, tmp_path):
    assert main(["experiment", "report", str(tmp_path / "nothing")]) == 2
    assert "expected a run folder with summary.json" in capsys.readouterr().err


def test_list_names_every_experiment(capsys):
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    assert "activation-stats" in out and "mnist1d-benchmark" in out


def test_info(capsys):
    assert main(["info"]) == 0
    assert "numpy" in capsys.readouterr().out


def test_run_then_report(capsys, tmp_path):
    assert main(["experiment", "run", "activation-stats", "--smoke", "--out", str(tmp_path),
                 "--set", "depth=4"]) == 0
    out = capsys.readouterr().out
    assert "report:" in out
    run_dir = next((tmp_path / "activation-stats").iterdir())
    assert json.loads((run_dir / "config.json").read_text())["depth"] == 4
    page = tmp_path / "r.html"
    assert main(["experiment", "report", str(run_dir), "--out", str(page)]) == 0
    text = page.read_text()
    assert text.count("data:image/png;base64,") == len(list((run_dir / "figures").glob("*.png")))
    assert Path(out.split("report:")[-1].strip()).is_file()


def test_gradcheck_only_filter(capsys):
    assert main(["gradcheck", "--only", "Linear(bias"]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out


def test_gradcheck_no_match(capsys):
    assert main(["gradcheck", "--only", "Nothing"]) == 2
    assert "no registered module matches" in capsys.readouterr().err
