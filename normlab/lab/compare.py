"""What differs between two run folders: config, environment, results, summary numbers, claims.

``compare_runs(a, b)`` returns the report as a list of lines (``normlab experiment compare``
prints it). Nested JSON is flattened to dotted paths (``mlp/none.final_val_acc.mean``) and
compared leaf by leaf; ``results.json`` is compared as text, so "identical" means bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from normlab.lab.runs import load_run

__all__ = ["flatten", "compare_runs"]

_VOLATILE_ENV = ("time",)  # differs between any two runs; shown on the header line instead


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b[0]": leaf}`` for nested dicts and lists (leaves: numbers, strings, None)."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = obj
    return out


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if v is None:
        return "—"
    return json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else str(v)


def _diff_section(title: str, a: dict, b: dict, numeric_delta: bool = False) -> list[str]:
    fa, fb = flatten(a), flatten(b)
    keys = list(fa) + [k for k in fb if k not in fa]
    rows = []
    for k in keys:
        va, vb = fa.get(k, "<absent>"), fb.get(k, "<absent>")
        if va == vb:
            continue
        line = f"  {k}: {_show(va)} -> {_show(vb)}"
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (va, vb))
        if numeric_delta and numbers:
            line += f"  ({vb - va:+.4g})"
        rows.append(line)
    if not rows:
        return [f"{title}: identical"]
    return [f"{title}: {len(rows)} difference{'s' if len(rows) > 1 else ''}"] + rows


def _header(tag: str, run: dict) -> str:
    cfg, env = run["config"], run["env"]
    size = "smoke" if cfg.get("smoke") else "full"
    return (f"{tag}: {run['dir']}  ({cfg.get('experiment')}, seed {cfg.get('seed')}, {size} "
            f"size, commit {str(env.get('git_commit'))[:12]}, started {env.get('time')}, "
            f"{run['summary'].get('wall_time_s')} s)")


def compare_runs(run_a: str | Path, run_b: str | Path) -> list[str]:
    """Lines describing how run folder ``run_b`` differs from ``run_a``.

    Raises
    ------
    FileNotFoundError
        If either folder is not a run folder (see ``load_run``).
    """
    a, b = load_run(run_a), load_run(run_b)
    lines = [_header("A", a), _header("B", b)]
    if a["config"].get("experiment") != b["config"].get("experiment"):
        lines.append("note: the runs are of different experiments")
    ra, rb = Path(a["dir"]) / "results.json", Path(b["dir"]) / "results.json"
    if ra.is_file() and rb.is_file():
        same = ra.read_bytes() == rb.read_bytes()
        lines.append("results.json: " + ("identical (bit for bit)" if same else "differs"))
    else:
        lines.append("results.json: missing in " + " and ".join(
            t for t, p in (("A", ra), ("B", rb)) if not p.is_file()))
    lines += _diff_section("config", a["config"], b["config"])
    env_a = {k: v for k, v in a["env"].items() if k not in _VOLATILE_ENV}
    env_b = {k: v for k, v in b["env"].items() if k not in _VOLATILE_ENV}
    lines += _diff_section("environment", env_a, env_b)
    ca, cb = a["summary"].get("checks", {}), b["summary"].get("checks", {})
    word = {True: "holds", False: "FAILS", None: "absent"}
    changed = [f"  [{word[ca.get(k)]} -> {word[cb.get(k)]}] {k}"
               for k in list(ca) + [k for k in cb if k not in ca] if ca.get(k) != cb.get(k)]
    lines += ([f"claim checks: all {len(ca)} agree "
               f"({sum(map(bool, ca.values()))} hold)"] if not changed else
              [f"claim checks: {len(changed)} differ"] + changed)
    lines += _diff_section("summary numbers", a["summary"].get("summary", {}),
                           b["summary"].get("summary", {}), numeric_delta=True)
    return lines
