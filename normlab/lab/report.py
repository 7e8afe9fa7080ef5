"""One self-contained HTML page (figures inlined as base64 PNG) for one or more run folders."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from normlab.lab.runs import load_run

__all__ = ["write_report"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} .pass{color:#176b1c;font-weight:bold} .fail{color:#a31515;font-weight:bold}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555} .claim{background:#f7f7fb;padding:.5em 1em;border-left:4px solid #88a}
details{margin:.5em 0}
"""


def _is_stat(v: Any) -> bool:
    """A leaf statistic: ``mean_ci``/``paired`` (mean, n, ...) or the older mean ± std."""
    return isinstance(v, dict) and "mean" in v and ("n" in v or "std" in v)


def _num(v) -> str:
    return "—" if v is None else f"{v:.4g}"


def _fmt(v: Any) -> str:
    if _is_stat(v) and "low" in v:
        if v["mean"] is None:
            return f"undefined (non-finite values; n={v['n']})"
        if v["low"] is None:
            return f"{_num(v['mean'])} (n={v['n']}: no interval)"
        return f"{_num(v['mean'])} [{_num(v['low'])}, {_num(v['high'])}] (n={v['n']})"
    if _is_stat(v) and "std" in v:
        return f"{v['mean']:.4g} ± {v['std']:.2g}" + (f" (n={v['n']})" if "n" in v else "")
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return html.escape(json.dumps(v))
    return html.escape(str(v))


def _table(rows: dict[str, Any]) -> str:
    """A dict of dicts becomes a matrix (rows x inner keys); anything else key / value rows."""
    nested = rows and all(isinstance(v, dict) and not _is_stat(v) for v in rows.values())
    if nested:
        cols: list[str] = []
        for v in rows.values():
            cols += [c for c in v if c not in cols]
        out = ["<table><tr><th></th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols)
               + "</tr>"]
        for k, v in rows.items():
            out.append(f"<tr><td>{html.escape(str(k))}</td>"
                       + "".join(f"<td>{_fmt(v[c]) if c in v else ''}</td>" for c in cols)
                       + "</tr>")
        return "\n".join(out) + "</table>"
    out = ["<table><tr><th>quantity</th><th>value</th></tr>"]
    for k, v in rows.items():
        out.append(f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _overview(runs: list[dict[str, Any]]) -> str:
    """One row per run: a link to its section, how many claim checks hold, wall time."""
    rows = ["<table><tr><th>experiment</th><th>claim checks</th><th>size</th>"
            "<th>wall time (s)</th></tr>"]
    for i, run in enumerate(runs):
        s = run["summary"]
        checks = s.get("checks", {})
        held = sum(bool(v) for v in checks.values())
        cls = "pass" if held == len(checks) else "fail"
        size = "smoke" if run["config"].get("smoke") else "full"
        rows.append(f"<tr><td><a href='#run{i}'>{html.escape(s['experiment'])}</a></td>"
                    f"<td class='{cls}'>{held} of {len(checks)} hold</td><td>{size}</td>"
                    f"<td>{s.get('wall_time_s', '?')}</td></tr>")
    return "\n".join(rows) + "</table>"


def _paired_table(pairs: dict[str, Any]) -> str:
    """One row per paired comparison: per-seed differences, mean, interval, verdicts."""
    out = ["<table><tr><th>comparison (claim predicts &gt; threshold)</th>"
           "<th>per-seed differences</th><th>mean</th><th>95 % t-interval</th>"
           "<th>threshold</th><th>&gt; threshold in every seed</th>"
           "<th>interval above threshold</th></tr>"]
    for name, p in pairs.items():
        diffs = ", ".join(_num(d) for d in p.get("diffs", []))
        interval = ("undefined (one seed)" if p.get("low") is None
                    else f"[{_num(p['low'])}, {_num(p['high'])}]")
        every = "yes" if p.get("every_seed") else "no"
        excl = {None: "—", True: "yes", False: "no"}[p.get("interval_above")]
        out.append(f"<tr><td>{html.escape(name)}</td><td>{diffs}</td><td>{_num(p.get('mean'))}"
                   f"</td><td>{interval}</td><td>{_num(p.get('threshold', 0.0))}</td>"
                   f"<td class='{'pass' if every == 'yes' else 'fail'}'>"
                   f"{every}</td><td>{excl}</td></tr>")
    return "\n".join(out) + "</table>"


def _section(run: dict[str, Any], anchor: str = "") -> str:
    s = run["summary"]
    parts = [f"<h2 id='{anchor}'>{html.escape(s.get('title', s['experiment']))}</h2>",
             f"<p>run folder: <code>{html.escape(str(run['dir']))}</code> · wall time "
             f"{s.get('wall_time_s', '?')} s · seed {run['config'].get('seed')}"
             f"{' · smoke size' if run['config'].get('smoke') else ''}</p>",
             f"<p class='claim'><b>Claim.</b> {html.escape(s.get('claim', ''))}</p>"]
    checks = s.get("checks", {})
    if checks:
        parts.append("<table><tr><th>check</th><th>result</th></tr>")
        for name, ok in checks.items():
            cls, word = ("pass", "holds") if ok else ("fail", "does not hold")
            parts.append(f"<tr><td>{html.escape(name)}</td><td class='{cls}'>{word}</td></tr>")
        parts.append("</table>")
    for rel in s.get("figures", []):
        path = Path(run["dir"]) / rel
        if not path.is_file():
            parts.append(f"<p class='fail'>missing figure {html.escape(rel)}</p>")
            continue
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f"<figure><img alt='{html.escape(path.stem)}' "
                     f"src='data:image/png;base64,{data}'><figcaption>{html.escape(path.name)}"
                     "</figcaption></figure>")
    summary = dict(s.get("summary", {}))
    pairs = summary.pop("paired", None)
    if pairs:
        parts.append("<h3>Paired comparisons by seed</h3><p>Arms of one replicate share data, "
                     "batch order and initial weights; each row is the per-seed difference "
                     "between two arms. A check on a comparison holds when the difference is "
                     "above its threshold (0 unless the claim names one) in every seed.</p>"
                     + _paired_table(pairs))
    if summary:
        parts.append("<details open><summary>summary (mean [95 % t-interval] over seeds)"
                     "</summary>" + _table(summary) + "</details>")
    parts.append("<details><summary>config</summary>" + _table(run["config"]) + "</details>")
    parts.append("<details><summary>environment</summary>" + _table(run["env"]) + "</details>")
    return "\n".join(parts)


def write_report(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Write one HTML page covering ``run_dirs``; returns its path.

    Raises
    ------
    FileNotFoundError
        If a folder is not a run folder.
    """
    runs = [load_run(d) for d in run_dirs]
    body = "\n".join(_section(r, f"run{i}") for i, r in enumerate(runs))
    if len(runs) > 1:
        body = _overview(runs) + "\n" + body
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>normlab report</title>"
            f"<style>{_CSS}</style></head><body><h1>normlab report</h1>"
            f"<p>{len(runs)} run(s).</p>{body}</body></html>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
