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


def test_threads_option_sets_normlab_threads_and_rejects_non_positive(capsys, threads,
                                                                        blas_counts):
    import normlab

    # (the threads fixture restores the count main() sets)
    assert main(["--threads", "3", "info"]) == 0
    assert normlab.get_num_threads() == 3
    counts = blas_counts()
    assert counts and all(c == 1 for c in counts)  # normlab's threads do the work
    assert main(["--threads", "0", "info"]) == 2
    assert "--threads: expected a positive int, got '0'" in capsys.readouterr().err


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


def test_info_prints_kernel_setting_and_blas(capsys):
    import normlab  # noqa: PLC0415

    with normlab.kernels("reference"):
        assert main(["info"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines() if ln.strip()}
    assert lines["kernels"].split()[1] == "reference"
    assert "numpy: numba" in lines["kernels"] and "cupy: none" in lines["kernels"]
    assert "library=" in lines["blas"] and "version=" in lines["blas"]
    assert "core=" in lines["blas"]


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


def test_train_writes_a_run_folder_and_reports(capsys, tmp_path):
    assert main(["train", "--model", "mlp", "--data", "digits", "--hidden", "32",
                 "--epochs", "2", "--n-train", "300", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test   loss" in out and "run folder:" in out
    run_dir = next((tmp_path / "train").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2 * (300 // 64) and 0.5 < summary["val_acc"] <= 1.0
    assert (run_dir / "checkpoint" / "history.jsonl").is_file()


def test_train_resume_continues_from_the_checkpoint(capsys, tmp_path):
    args = ["train", "--model", "mlp", "--hidden", "16", "--n-train", "200", "--out",
            str(tmp_path), "--no-progress"]
    assert main(args + ["--epochs", "1"]) == 0
    run_dir = next((tmp_path / "train").iterdir())
    capsys.readouterr()
    assert main(args + ["--epochs", "2", "--resume", str(run_dir / "checkpoint")]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2 * (200 // 64)
    # the run folder itself also names its checkpoint
    assert main(args + ["--epochs", "3", "--resume", str(run_dir)]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 3 * (200 // 64)


def test_train_model_that_cannot_take_the_data(capsys, tmp_path):
    assert main(["train", "--model", "lenet", "--data", "digits", "--out", str(tmp_path)]) == 2
    assert "LeNet: expected input (N, 1, 28, 28)" in capsys.readouterr().err
    assert not (tmp_path / "train").exists()  # nothing written for a run that cannot start


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "foo"], "invalid choice: 'foo'"),
    (["train", "--model", "mlp", "--epochs", "0"], "expected a positive int, got '0'"),
    (["train", "--model", "mlp", "--lr", "-1"], "expected a positive float, got '-1'"),
    (["train", "--model", "mlp", "--checkpoint-every", "0"], "expected a positive int, got '0'"),
    (["train", "--model", "mlp", "--checkpoint-every", "x"], "invalid int value: 'x'"),
    (["train", "--model", "mlp", "--hidden", "a,b"], "expected --hidden as comma-separated ints"),
    (["train", "--model", "mlp", "--resume", "/nonexistent/ckpt"],
     "expected a checkpoint folder to resume from"),
])
def test_train_bad_arguments(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_several_experiments_share_one_report_in_out(capsys, tmp_path):
    assert main(["experiment", "run", "activation-stats", "activation-stats", "--smoke",
                 "--out", str(tmp_path)]) == 0
    assert f"report: {tmp_path / 'report.html'}" in capsys.readouterr().out
    page = (tmp_path / "report.html").read_text()
    assert page.count("<h2 id=") == 2
    assert page.count("5 of 5 hold") == 2  # the overview table links both runs
    assert "href='#run0'" in page and "href='#run1'" in page


def test_a_closed_output_pipe_is_not_reported_as_a_disk_problem():
    import subprocess
    import sys

    proc = subprocess.run(f"{sys.executable} -m normlab experiment list | head -1", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("activation-stats")
    assert "disk" not in proc.stderr and "Error" not in proc.stderr, proc.stderr
