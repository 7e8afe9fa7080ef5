import dataclasses
import json
import types

import pytest

import normlab
from normlab.lab import runs
from normlab.lab.registry import get_experiment
from normlab.lab.runs import apply_overrides, env_info, load_run


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
