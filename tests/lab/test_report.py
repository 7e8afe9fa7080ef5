"""The HTML report shows paired comparisons and intervals (from a hand-written run folder)."""

import json

from normlab.lab.report import write_report
from normlab.lab.stats import mean_ci, paired


def _folder(tmp_path, summary):
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"experiment": "x", "seed": 0, "smoke": False}))
    (run / "env.json").write_text(json.dumps({"git_commit": "abc"}))
    (run / "summary.json").write_text(json.dumps({
        "experiment": "x", "title": "X", "claim": "A beats B.", "summary": summary,
        "checks": {"A beats B in every seed (paired by seed)": True}, "figures": [],
        "wall_time_s": 1.0}))
    return run


def test_report_shows_the_paired_table_and_intervals(tmp_path):
    p = paired([3.0, 4.0, 5.5], [1.0, 2.0, 2.0])
    summary = {"A": {"acc": mean_ci([0.9, 0.92, 0.95])}, "B": {"acc": mean_ci([0.5])},
               "paired": {"acc, A − B": p}}
    page = write_report([_folder(tmp_path, summary)], tmp_path / "r.html").read_text()
    assert "<h3>Paired comparisons by seed</h3>" in page
    assert ("<td>acc, A − B</td><td>2, 2, 3.5</td><td>2.5</td>"
            f"<td>[{p['low']:.4g}, {p['high']:.4g}]</td><td>0</td><td class='pass'>yes</td>"
            "<td>yes</td>"
            in page)
    ci = summary["A"]["acc"]
    assert f"{ci['mean']:.4g} [{ci['low']:.4g}, {ci['high']:.4g}] (n=3)" in page
    assert "0.5 (n=1: no interval)" in page
    assert "summary (mean [95 % t-interval] over seeds)" in page


def test_report_says_when_one_seed_has_no_interval(tmp_path):
    summary = {"paired": {"acc, A − B": paired([0.4], [0.5])}}
    page = write_report([_folder(tmp_path, summary)], tmp_path / "r.html").read_text()
    assert ("<td>-0.1</td><td>-0.1</td><td>undefined (one seed)</td><td>0</td>"
            "<td class='fail'>no</td><td>—</td>") in page
