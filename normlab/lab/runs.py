"""Run folders: ``<out>/<experiment>/<timestamp>/`` holding everything a run produced.

Layout::

    config.json     the typed config (plus the base seed of the replicates and smoke flag)
    env.json        versions, platform, git commit (and dirty flag), BLAS, kernel setting,
                    thread variables, command, start time
    metrics.jsonl   one JSON record per logged point (``results["metrics"]``)
    results.json    the full results, so figures can be redrawn without re-running
    summary.json    headline numbers (mean and 95 % t-interval over seeds), paired
                    comparisons, the claim checks and the wall time
    timings.json    only if the experiment measured wall-clock times (``results["timings"]``):
                    machine-dependent, so kept out of the reproducible results.json
    figures/*.png   matplotlib figures drawn by the experiment's ``plot``, plus
                    ``paired_differences.png`` when the results hold paired comparisons
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import inspect
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from normlab._io import atomic_write_bytes
from normlab.errors import MissingPathError, NormlabValueError
from normlab.lab._runfolder import RunLock, make_run_dir
from normlab.lab.common import plot_paired
from normlab.lab.provenance import reproducibility_info
from normlab.lab.registry import get_experiment
from normlab.lab.seeding import Seeds

__all__ = ["apply_overrides", "env_info", "run_experiment", "load_run", "redraw_figures",
           "write_json"]


def _jsonable(obj: Any):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else (1e308 if obj > 0 else -1e308)
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (temporary file, fsync, rename)."""
    text = json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(os.fspath(path), text.encode("utf-8"))


def apply_overrides(cfg, overrides: dict[str, str]):
    """Return a copy of dataclass ``cfg`` with ``key=value`` strings converted to field types.

    Raises
    ------
    ValueError
        For an unknown key (listing the valid ones) or a value of the wrong type.
    """
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    changes = {}
    for key, text in overrides.items():
        if key not in fields:
            raise NormlabValueError(
                f"{type(cfg).__name__}: expected one of the config keys {sorted(fields)}, "
                f"got {key!r}."
            )
        current = getattr(cfg, key)
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise NormlabValueError(text)
                value = text.lower() in ("true", "1")
            elif isinstance(current, (tuple, list)):
                kind = type(current[0]) if current else str
                value = tuple(kind(v) for v in text.split(",") if v)
            elif current is None:
                value = text
            else:
                value = type(current)(text)
        except ValueError:
            raise NormlabValueError(
                f"{type(cfg).__name__}: expected {key} to be of type "
                f"{type(current).__name__}, got {text!r}."
            ) from None
        changes[key] = value
    return dataclasses.replace(cfg, **changes)


def env_info() -> dict[str, Any]:
    """Versions, platform, git commit, the kernel setting (``normlab.kernels``) with the
    compiled ops it can use, and NumPy's BLAS, for ``env.json`` and ``normlab info``."""
    import normlab  # noqa: PLC0415

    info: dict[str, Any] = {
        "normlab": normlab.__version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "time": _dt.datetime.now().isoformat(timespec="seconds"),
        **reproducibility_info(),  # git, kernels, BLAS, threads, command: lab/provenance.py
    }
    for mod in ("matplotlib", "torch", "cupy"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            info[mod] = None
    return info


def _seed_argument(exp, name: str, seed: int):
    """``Seeds(name, seed)`` for ``run(cfg, seeds)``; a Generator for a legacy ``run(cfg, rng)``
    (one stream in loop order: its arms are not paired)."""
    params = list(inspect.signature(exp.run).parameters)
    if len(params) > 1 and params[1] == "rng":
        return np.random.default_rng(seed)
    return Seeds(name, seed)


def run_experiment(name: str, *, smoke: bool = False, seed: int = 0, out: str | Path = "runs",
                   overrides: dict[str, str] | None = None) -> Path:
    """Run experiment ``name`` and write its run folder; returns the folder's path."""
    exp = get_experiment(name)
    cfg = exp.Config.smoke() if smoke else exp.Config()
    cfg = apply_overrides(cfg, overrides or {})
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = make_run_dir(Path(out) / name, stamp)
    with RunLock(run_dir):
        return _run_in(run_dir, exp, name, cfg, smoke, seed)


def _run_in(run_dir: Path, exp, name: str, cfg, smoke: bool, seed: int) -> Path:
    """Run the experiment and fill ``run_dir`` (locked by the caller)."""
    (run_dir / "figures").mkdir(parents=True)
    write_json(run_dir / "config.json",
               {"experiment": name, "seed": seed, "smoke": smoke, **dataclasses.asdict(cfg)})
    write_json(run_dir / "env.json", env_info())
    t0 = time.perf_counter()
    results = exp.run(cfg, _seed_argument(exp, name, seed))
    wall = time.perf_counter() - t0
    with open(run_dir / "metrics.jsonl", "w") as fh:
        for rec in results.get("metrics", []):
            fh.write(json.dumps(_jsonable(rec), allow_nan=False) + "\n")
    # wall-clock measurements differ from run to run: results.json stays reproducible
    timings = results.pop("timings", None)
    write_json(run_dir / "results.json", results)
    if timings is not None:
        write_json(run_dir / "timings.json", timings)
        results["timings"] = timings
    figures = list(exp.plot(results, run_dir / "figures"))
    if results.get("paired"):
        figures.append(plot_paired(results["paired"], run_dir / "figures"))
    checks = exp.check(results)
    write_json(run_dir / "summary.json", {
        "experiment": name, "title": exp.TITLE, "claim": exp.CLAIM,
        "summary": results.get("summary", {}), "checks": checks,
        "figures": [str(Path(f).relative_to(run_dir)) for f in figures],
        "wall_time_s": round(wall, 2),
        **({} if timings is None else {"timings": timings.get("summary", timings)}),
    })
    return run_dir


def redraw_figures(run_dir: str | Path) -> list[Path]:
    """Draw a run folder's figures again from its ``results.json`` with the current plotting
    code (no training); ``summary.json`` lists them and records the commit they were drawn
    at as ``figures_git_commit``. Raises ``FileNotFoundError`` for a non-run folder."""
    run = load_run(run_dir)
    run_dir = Path(run_dir)
    exp = get_experiment(run["config"]["experiment"])
    results = json.loads((run_dir / "results.json").read_text())
    if (run_dir / "timings.json").is_file():
        results["timings"] = json.loads((run_dir / "timings.json").read_text())
    figures = list(exp.plot(results, run_dir / "figures"))
    if results.get("paired"):
        figures.append(plot_paired(results["paired"], run_dir / "figures"))
    summary = run["summary"]
    summary["figures"] = [str(Path(f).relative_to(run_dir)) for f in figures]
    summary["figures_git_commit"] = reproducibility_info()["git_commit"]
    write_json(run_dir / "summary.json", summary)
    return figures


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """Read a run folder's config, env and summary.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` is not a run folder (no ``summary.json``).
    """
    run_dir = Path(run_dir)
    if not (run_dir / "summary.json").is_file():
        raise MissingPathError(
            f"normlab.lab: expected a run folder with summary.json, got {str(run_dir)!r}. "
            "Pass a folder written by `normlab experiment run`, e.g. runs/bn-vs-none/<timestamp>."
        )
    return {
        "dir": run_dir,
        "config": json.loads((run_dir / "config.json").read_text()),
        "env": json.loads((run_dir / "env.json").read_text()),
        "summary": json.loads((run_dir / "summary.json").read_text()),
    }
