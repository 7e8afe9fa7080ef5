import dataclasses
import json
import types

import pytest

import normlab
from normlab.lab import runs
from normlab.lab.registry import get_experiment
from normlab.lab.runs import _seed_argument, apply_overrides, env_info, load_run
from normlab.lab.seeding import Seeds


@dataclasses.dataclass(frozen=True)
class _Cfg:
    width: int = 3
    lr: float = 0.1
    bn: bool = True
    sizes: tuple = (1, 2)


def test_apply_overrides_converts_types():
    cfg = apply_overrides(_Cfg(), {"width": "7", "lr": "1e-3", "bn": "false", "sizes": "4,8"})
    assert cfg == _Cfg(width=7, lr=1e-3, bn=False, sizes=(4, 8))


def test_apply_overrides_rejects_unknown_key():
    with pytest.raises(ValueError, match=r"_Cfg: expected one of the config keys \['bn', 'lr', "
                                         r"'sizes', 'width'\], got 'depth'"):
        apply_overrides(_Cfg(), {"depth": "3"})


def test_apply_overrides_rejects_bad_value():
    with pytest.raises(ValueError, match="expected width to be of type int, got 'wide'"):
        apply_overrides(_Cfg(), {"width": "wide"})


def test_unknown_experiment():
    with pytest.raises(ValueError, match="expected an experiment name, got 'nope'. Known "
                                         "experiments: activation-stats"):
        get_experiment("nope")


def test_load_run_on_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected a run folder with summary.json"):
        load_run(tmp_path / "missing")


def test_env_info_records_kernel_setting_and_blas():
    assert env_info()["kernels"]["setting"] == "compiled"
    with normlab.kernels("reference"):
        info = env_info()
    assert info["kernels"]["setting"] == "reference"
    assert "bn_moments" in info["kernels"]["numpy"]["ops"]
    assert info["blas"]["library"] and info["blas"]["version"]
    json.dumps(info)


def test_run_folder_env_json_records_kernel_setting(tmp_path, monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class Config:
        steps: int = 1

        @classmethod
        def smoke(cls):
            return cls()

    exp = types.SimpleNamespace(Config=Config, TITLE="t", CLAIM="c",
                                run=lambda cfg, rng: {"metrics": [], "summary": {}},
                                plot=lambda results, out: [], check=lambda results: {})
    monkeypatch.setattr(runs, "get_experiment", lambda name: exp)
    with normlab.kernels("reference"):
        run_dir = runs.run_experiment("fake", smoke=True, out=tmp_path)
    env = json.loads((run_dir / "env.json").read_text())
    assert env["kernels"]["setting"] == "reference"
    assert env["blas"]["library"]


def test_timings_go_to_their_own_file_and_stay_out_of_results(tmp_path, monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class Config:
        n: int = 1

        @classmethod
        def smoke(cls):
            return cls()

    seen = {}

    def plot(results, out_dir):
        seen["timings"] = results.get("timings")
        return []

    exp = types.SimpleNamespace(
        NAME="fake", TITLE="t", CLAIM="c", Config=Config, plot=plot,
        run=lambda cfg, seeds: {"summary": {"x": 1.0}, "timings": {"summary": {"ms": 2.5}}},
        check=lambda results: {"ok": True})
    monkeypatch.setattr(runs, "get_experiment", lambda name: exp)
    run_dir = runs.run_experiment("fake", smoke=True, out=tmp_path)
    assert "timings" not in json.loads((run_dir / "results.json").read_text())
    assert json.loads((run_dir / "timings.json").read_text()) == {"summary": {"ms": 2.5}}
    assert json.loads((run_dir / "summary.json").read_text())["timings"] == {"ms": 2.5}
    assert seen["timings"] == {"summary": {"ms": 2.5}}  # the figures still get them


def test_experiments_get_seeds_and_legacy_ones_a_generator():
    import types

    import numpy as np

    paired_exp = types.SimpleNamespace(run=lambda cfg, seeds: None)
    legacy_exp = types.SimpleNamespace(run=lambda cfg, rng: None)
    assert _seed_argument(paired_exp, "x", 4) == Seeds("x", 4)
    g = _seed_argument(legacy_exp, "x", 4)
    assert isinstance(g, np.random.Generator)
    assert g.random() == np.random.default_rng(4).random()


def test_redraw_figures_from_results(tmp_path):
    import json

    from normlab.lab.runs import redraw_figures, run_experiment

    run_dir = run_experiment("weight-scale", smoke=True, out=tmp_path,
                             overrides={"n_scales": "2", "epochs": "1", "n_train": "200",
                                        "width": "16"})
    before = json.loads((run_dir / "summary.json").read_text())
    for png in (run_dir / "figures").glob("*.png"):
        png.unlink()
    figures = redraw_figures(run_dir)
    after = json.loads((run_dir / "summary.json").read_text())
    assert [str(f.relative_to(run_dir)) for f in figures] == after["figures"] == before["figures"]
    assert all(f.is_file() for f in figures)
    assert after["checks"] == before["checks"] and after["figures_git_commit"]
