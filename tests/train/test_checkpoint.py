import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from normlab.train import load_checkpoint, save_checkpoint

import _train_parts as parts

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _trained(seed=0, steps=3):
    """A BN + Dropout MLP and a momentum SGD with non-trivial state after a few steps."""
    X, y = parts.make_data(n=20, seed=seed)
    model = parts.make_mlp(seed=seed, dropout=0.5)
    opt = parts.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = parts.StepLR(opt, step_size=1, gamma=0.5)
    loss = parts.CrossEntropyLoss()
    for _ in range(steps):
        model.train()
        loss(model(X), y)
        model.backward(loss.backward())
        opt.step()
        sched.step()
    return model, opt, sched


def _assert_same_optimizer_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sorted(sa["state"]) == sorted(sb["state"])
    for i in sa["state"]:
        for k, v in sa["state"][i].items():
            np.testing.assert_array_equal(sb["state"][i][k], v)


def test_round_trip_restores_model_buffers_optimizer_scheduler_and_generators(tmp_path):
    model, opt, sched = _trained(seed=0)
    extra = np.random.default_rng(7)
    extra.random(3)
    trainer_state = {"step": 3, "arr": np.arange(4.0), "scalar": np.float32(1.5),
                     "pair": (1, "a"), "by_index": {0: [1.0, None], 2: {"x": True}},
                     "big": 2 ** 100}
    save_checkpoint(tmp_path, model=model, optimizer=opt, scheduler=sched,
                    trainer_state=trainer_state, rngs={"extra": extra})

    model2, opt2, sched2 = _trained(seed=1, steps=1)
    extra2 = np.random.default_rng(0)
    meta = load_checkpoint(tmp_path, model=model2, optimizer=opt2, scheduler=sched2,
                           rngs={"extra": extra2})
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(model2.state_dict()[k], v)
        assert model2.state_dict()[k].dtype == v.dtype
    assert "1.running_var" in model.state_dict()
    _assert_same_optimizer_state(opt, opt2)
    assert sched2.state_dict() == sched.state_dict()
    (_, g1), = model.named_generators()
    (_, g2), = model2.named_generators()
    assert g1.bit_generator.state == g2.bit_generator.state
    assert extra2.bit_generator.state == extra.bit_generator.state
    ts = meta["trainer_state"]
    np.testing.assert_array_equal(ts["arr"], np.arange(4.0))
    assert ts["scalar"] == np.float32(1.5) and ts["scalar"].dtype == np.float32
    assert ts["pair"] == (1, "a") and ts["by_index"] == {0: [1.0, None], 2: {"x": True}}
    assert ts["big"] == 2 ** 100
    assert meta["rngs"]["extra"] == extra.bit_generator.state


def test_folder_keeps_one_consistent_pair_and_a_latest_pointer(tmp_path):
    model, opt, _ = _trained()
    first = save_checkpoint(tmp_path, model=model, trainer_state={"i": 1})
    second = save_checkpoint(tmp_path, model=model, trainer_state={"i": 2})
    assert first != second
    names = sorted(os.listdir(tmp_path))
    stem = os.path.basename(second)[:-len(".json")]
    assert names == [stem + ".json", stem + ".npz", "latest"]
    assert (tmp_path / "latest").read_text().strip() == stem + ".json"
    meta = json.loads((tmp_path / (stem + ".json")).read_text())
    assert meta["npz"] == stem + ".npz"
    assert load_checkpoint(tmp_path, model=model)["trainer_state"] == {"i": 2}
    assert load_checkpoint(second, model=model)["path"] == second


def test_stale_partial_files_of_a_killed_save_are_ignored_then_cleaned(tmp_path):
    model, _, _ = _trained()
    save_checkpoint(tmp_path, model=model, trainer_state={"i": 1})
    (tmp_path / "ckpt-00000002.npz").write_bytes(b"half a zip")  # killed before its JSON
    (tmp_path / ".tmp-ckpt-00000003.npz-ab12").write_bytes(b"half")
    assert load_checkpoint(tmp_path, model=model)["trainer_state"] == {"i": 1}
    save_checkpoint(tmp_path, model=model, trainer_state={"i": 3})
    assert sorted(os.listdir(tmp_path)) == ["ckpt-00000003.json", "ckpt-00000003.npz", "latest"]
    assert load_checkpoint(tmp_path, model=model)["trainer_state"] == {"i": 3}


def test_missing_folder_and_missing_pointer_name_the_path(tmp_path):
    model, _, _ = _trained()
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=r"expected a checkpoint folder, got .*nope"):
        load_checkpoint(missing, model=model)
    with pytest.raises(FileNotFoundError, match=r"expected a 'latest' file in .*"):
        load_checkpoint(tmp_path, model=model)


def test_missing_array_file_is_reported(tmp_path):
    model, _, _ = _trained()
    path = save_checkpoint(tmp_path, model=model)
    os.remove(path[:-len(".json")] + ".npz")
    with pytest.raises(FileNotFoundError, match=r"expected the array file .*ckpt-00000001.npz"):
        load_checkpoint(tmp_path, model=model)


def test_corrupt_files_are_reported_not_half_loaded(tmp_path):
    model, _, _ = _trained()
    path = save_checkpoint(tmp_path, model=model)
    npz = path[:-len(".json")] + ".npz"
    data = bytearray(open(npz, "rb").read())
    data[-30] ^= 0xFF
    open(npz, "wb").write(bytes(data))
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"to match the SHA-256 .* The file is corrupt"):
        load_checkpoint(tmp_path, model=model)
    for k, v in before.items():
        np.testing.assert_array_equal(model.state_dict()[k], v)
    open(path, "w").write("{not json")
    with pytest.raises(ValueError, match=r"expected valid JSON in .*corrupt"):
        load_checkpoint(tmp_path, model=model)
    open(path, "w").write("[1, 2]")
    with pytest.raises(ValueError, match=r"expected a normlab-checkpoint JSON file"):
        load_checkpoint(tmp_path, model=model)


def test_model_mismatch_names_keys_and_shapes(tmp_path):
    model, _, _ = _trained()
    save_checkpoint(tmp_path, model=model)
    no_bn = parts.make_mlp(bn=False)
    with pytest.raises(ValueError, match=r"got missing keys \['2.weight', '2.bias'\], "
                                         r"unexpected keys \['1.weight'"):
        load_checkpoint(tmp_path, model=no_bn)
    wider = parts.make_mlp(h=16, dropout=0.5)
    with pytest.raises(ValueError, match=r"'0.weight': saved shape \(32, 8\), model shape "
                                         r"\(16, 8\).*Build the same architecture"):
        load_checkpoint(tmp_path, model=wider)


def test_optimizer_and_scheduler_mismatches(tmp_path):
    model, opt, sched = _trained()
    save_checkpoint(tmp_path / "bare", model=model)
    with pytest.raises(ValueError, match=r"expected optimizer state in the checkpoint, got "
                                         r"none"):
        load_checkpoint(tmp_path / "bare", model=model, optimizer=opt)

    class OtherOptimizer(parts.SGD):
        pass

    save_checkpoint(tmp_path / "full", model=model, optimizer=opt, scheduler=sched)
    other = OtherOptimizer(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=rf"expected a {type(opt).__name__} optimizer \(as "
                                         r"saved\), got OtherOptimizer"):
        load_checkpoint(tmp_path / "full", model=model, optimizer=other)
    with pytest.raises(ValueError, match=r"expected scheduler state in the checkpoint"):
        load_checkpoint(tmp_path / "bare", model=model, scheduler=sched)


def test_generator_mismatch_and_unknown_rng_names(tmp_path):
    without_rng = parts.make_mlp(dropout=0.5)
    without_rng[3].rng = None  # same keys, no generator
    save_checkpoint(tmp_path, model=without_rng, rngs={"a": np.random.default_rng(0)})
    with pytest.raises(ValueError, match=r"expected saved states for the model generators "
                                         r"\['3'\], got only \[\]"):
        load_checkpoint(tmp_path, model=parts.make_mlp(dropout=0.5))
    with pytest.raises(ValueError, match=r"extra generators \['b'\], got only \['a'\]"):
        load_checkpoint(tmp_path, model=without_rng, rngs={"b": np.random.default_rng()})


def test_unsupported_state_values_raise_type_errors(tmp_path):
    model = parts.make_mlp()
    with pytest.raises(TypeError, match=r"got set under 'trainer/s'"):
        save_checkpoint(tmp_path, model=model, trainer_state={"s": {1}})
    with pytest.raises(TypeError, match=r"expected numeric arrays, got an object array"):
        save_checkpoint(tmp_path, model=model, trainer_state={"o": np.array([None])})
    with pytest.raises(TypeError, match=r"expected str or int dict keys, got tuple"):
        save_checkpoint(tmp_path, model=model, trainer_state={"d": {(1, 2): 0, 3: 1}})
    with pytest.raises(TypeError, match=r"expected a np.random.Generator .* for rng 'r'"):
        save_checkpoint(tmp_path, model=model, rngs={"r": np.random.RandomState(0)})
    assert not os.path.exists(tmp_path / "latest")


def _spawn_saver(folder):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, os.path.join(HERE, "_train_worker.py"), "spam",
                             str(folder)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def test_sigkill_during_saves_always_leaves_a_complete_previous_checkpoint(tmp_path):
    """Kill a process that does nothing but save (4 MB per save) at random moments."""
    import _train_worker as worker

    chooser = np.random.default_rng()
    for trial in range(4):
        proc = _spawn_saver(tmp_path)
        try:
            first = int(proc.stdout.readline())  # at least one save of this process done
            time.sleep(float(chooser.uniform(0.0, 0.08)))
        finally:
            proc.send_signal(signal.SIGKILL)
            rest = proc.communicate()[0].split()
            proc.wait()
        last_printed = int(rest[-1]) if rest else first
        saved = worker.spam_model()
        meta = load_checkpoint(tmp_path, model=saved)
        i = meta["trainer_state"]["i"]
        # the save after the last printed counter may have completed before the kill
        assert i in (last_printed, last_printed + 1)
        for k, v in saved.state_dict().items():
            np.testing.assert_array_equal(v, np.full_like(v, i), err_msg=k)
        (_, g), = saved.named_generators()
        assert g.bit_generator.state == np.random.default_rng(i).bit_generator.state


def test_a_pointer_to_a_missing_json_is_reported(tmp_path):
    model = parts.make_mlp()
    path = save_checkpoint(tmp_path, model=model)
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=r"expected the checkpoint file .*ckpt-00000001"
                                                r"\.json', got nothing there"):
        load_checkpoint(tmp_path, model=model)
