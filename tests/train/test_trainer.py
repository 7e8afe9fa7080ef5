import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from normlab import nn
from normlab.train import (BestModel, Callback, DivergenceError, EarlyStopping, History,
                           Trainer)

import _train_parts as parts
import _train_worker as worker

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _setup(n=50, h=32, bn=True, lr=0.1, momentum=0.9, bs=10, seed=0, **kw):
    X, y = parts.make_data(n=n, seed=seed)
    model = parts.make_mlp(h=h, bn=bn, seed=seed)
    opt = parts.SGD(model.parameters(), lr=lr, momentum=momentum)
    kw.setdefault("progress", False)
    trainer = Trainer(model, opt, loss_fn=parts.CrossEntropyLoss(), **kw)
    return trainer, parts.DataLoader(X, y, bs, rng=seed), (X, y)


class _Recorder(Callback):
    def __init__(self):
        self.calls, self.states = [], {}

    def on_train_begin(self, trainer, logs):
        self.calls.append("begin")

    def on_step_end(self, trainer, logs):
        self.calls.append(("step", logs["step"]))

    def on_epoch_end(self, trainer, logs):
        self.calls.append(("epoch", logs["epoch"]))
        self.states[logs["epoch"]] = trainer.model.state_dict()

    def on_train_end(self, trainer, logs):
        self.calls.append("end")
        self.states["end"] = trainer.model.state_dict()


# ---------------------------------------------------------------------------- training
def test_bn_mlp_overfits_50_samples_to_full_train_accuracy():
    trainer, loader, (X, y) = _setup(h=64, bs=25)
    history = trainer.fit(loader, epochs=150)
    assert trainer.evaluate(parts.DataLoader(X, y, 50, shuffle=False))["accuracy"] == 1.0
    assert history["epoch_train_loss"][-1] < 0.1 * history["epoch_train_loss"][0]
    assert len(history) == 150 * 2 and trainer.step == 300 and trainer.epoch == 150


def test_records_hooks_and_validation_follow_the_loop():
    rec = _Recorder()
    trainer, loader, (X, y) = _setup(n=30, callbacks=[rec])
    val = parts.DataLoader(X[:10], y[:10], 5, shuffle=False)
    history = trainer.fit(loader, val, epochs=2)
    assert [r["step"] for r in history] == list(range(1, 7))
    assert [r["epoch"] for r in history] == [1, 1, 1, 2, 2, 2]
    assert history.column("val_loss", with_steps=True)[0] == [3, 6]
    assert rec.calls == ["begin", ("step", 1), ("step", 2), ("step", 3), ("epoch", 1),
                         ("step", 4), ("step", 5), ("step", 6), ("epoch", 2), "end"]
    last = history.records[-1]
    assert last["val_loss"] == pytest.approx(trainer.evaluate(val)["loss"], rel=1e-12)
    assert last["epoch_train_loss"] == pytest.approx(np.mean(history["train_loss"][3:]))
    assert set(last) == {"step", "epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                         "lr", "time", "epoch_end", "epoch_train_loss", "epoch_train_acc"}


def test_steps_mode_stops_mid_epoch_and_validates_every_val_every_steps():
    trainer, loader, (X, y) = _setup(n=30)
    val = parts.DataLoader(X, y, 30, shuffle=False)
    history = trainer.fit(loader, val, steps=7, val_every=2)
    assert trainer.step == 7 and trainer.epoch == 2
    assert history.column("val_loss", with_steps=True)[0] == [2, 3, 4, 6]


def test_evaluate_uses_eval_mode_and_restores_each_modules_mode():
    trainer, loader, (X, y) = _setup(n=20)
    bn = trainer.model[1]
    before = bn.buffers["running_mean"].copy()
    trainer.model.train()
    trainer.model[0].eval()  # a mixed state must come back as it was
    out = trainer.evaluate(loader)
    np.testing.assert_array_equal(bn.buffers["running_mean"], before)
    assert [m.training for m in trainer.model.modules()] == [True, False, True, True, True]
    assert set(out) == {"loss", "accuracy"} and 0.0 <= out["accuracy"] <= 1.0


def test_loss_only_metric_for_regression_style_losses():
    trainer, loader, _ = _setup(n=20, metrics=("loss",))
    history = trainer.fit(loader, loader, epochs=1)
    assert history.records[-1]["train_acc"] is None and history.records[-1]["val_acc"] is None
    assert set(trainer.evaluate(loader)) == {"loss"}


def test_scheduler_steps_per_epoch_by_default_and_per_step_when_asked():
    trainer, loader, _ = _setup(n=20)
    trainer.scheduler = parts.StepLR(trainer.optimizer, step_size=1, gamma=0.5)
    assert trainer.fit(loader, epochs=2)["lr"] == [0.1, 0.1, 0.05, 0.05]
    trainer, loader, _ = _setup(n=20, scheduler_interval="step")
    trainer.scheduler = parts.StepLR(trainer.optimizer, step_size=1, gamma=0.5)
    assert trainer.fit(loader, epochs=1)["lr"] == [0.1, 0.05]


def test_reduce_lr_on_plateau_steps_on_the_validation_loss():
    class ReduceLROnPlateau:  # same class name as normlab.optim's: detected by name
        def __init__(self):
            self.seen = []

        def step(self, metric):
            self.seen.append(metric)

    sched = ReduceLROnPlateau()
    trainer, loader, _ = _setup(n=20, scheduler=sched)
    history = trainer.fit(loader, loader, epochs=3)
    assert sched.seen == history["val_loss"] and len(sched.seen) == 3


def test_grad_clip_bounds_each_update():
    """Plain SGD: the update is lr * clipped gradient, so its global norm is <= lr * max_norm."""
    def update_norm(grad_clip):
        trainer, loader, _ = _setup(n=20, bs=20, momentum=0.0, lr=1.0, grad_clip=grad_clip)
        before = trainer.model.state_dict()
        trainer.fit(loader, steps=1)
        after = trainer.model.state_dict()
        return np.sqrt(sum(np.sum((after[n].astype(np.float64) - before[n]) ** 2)
                           for n, _, _ in trainer.model.named_parameters()))

    assert update_norm(None) > 0.05
    assert update_norm(0.01) == pytest.approx(0.01, rel=1e-3)


# ---------------------------------------------------------------------------- callbacks
def test_best_model_restores_the_full_state_including_bn_running_stats():
    rec = _Recorder()
    best = BestModel(monitor="epoch", mode="min")  # the first epoch end is the best
    trainer, loader, _ = _setup(n=30, callbacks=[rec, best])
    trainer.fit(loader, epochs=3)
    assert best.best_step == 3 and best.best == 1.0
    restored = trainer.model.state_dict()
    assert any(k.endswith("running_mean") for k in restored)
    for k, v in rec.states[1].items():  # state at the end of epoch 1, buffers included
        np.testing.assert_array_equal(restored[k], v, err_msg=k)
    assert not np.array_equal(rec.states["end"]["1.running_mean"], restored["1.running_mean"])


def test_best_model_without_restore_leaves_the_final_weights():
    rec = _Recorder()
    trainer, loader, _ = _setup(n=30, callbacks=[rec, BestModel("epoch", restore=False)])
    trainer.fit(loader, epochs=2)
    for k, v in rec.states["end"].items():
        np.testing.assert_array_equal(trainer.model.state_dict()[k], v)


def test_early_stopping_waits_patience_epochs_without_improvement():
    stop = EarlyStopping(monitor="epoch", mode="min", patience=2)
    trainer, loader, _ = _setup(n=20, callbacks=[stop])
    history = trainer.fit(loader, epochs=10)
    assert len(history.epochs()) == 4 and stop.stopped_step == trainer.step == 8
    stop = EarlyStopping(monitor="val_acc", patience=0, min_delta=2.0)  # never improves by 2
    trainer, loader, _ = _setup(n=20, callbacks=[stop])
    assert len(trainer.fit(loader, loader, epochs=10).epochs()) == 2


def test_callback_argument_errors():
    with pytest.raises(ValueError, match=r"EarlyStopping: expected patience to be an int >= 0, "
                                         r"got -1"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match=r"BestModel: expected mode 'auto', 'min' or 'max', "
                                         r"got 'up'"):
        BestModel(mode="up")
    with pytest.raises(ValueError, match=r"EarlyStopping: expected min_delta >= 0, got -0.1"):
        EarlyStopping(min_delta=-0.1)
    with pytest.raises(TypeError, match=r"BestModel: expected monitor to be a record key"):
        BestModel(monitor=3)
    assert EarlyStopping().mode == "min" and BestModel().mode == "max"


def test_monitoring_a_missing_value_says_how_to_fix_it():
    trainer, loader, _ = _setup(n=20, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match=r"EarlyStopping: expected 'val_loss' in the epoch-end "
                                         r"logs, got None .*Pass a val_loader to fit\(\)"):
        trainer.fit(loader, epochs=1)


# ---------------------------------------------------------------------------- divergence
def test_divergence_raises_a_clear_error_with_the_history_and_no_runtime_warning():
    trainer, loader, _ = _setup(bn=False, lr=1e3, momentum=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DivergenceError, match=r"^Trainer: expected a finite loss, got "
                                                  r"(nan|inf) at step (\d+) \(epoch \d+, "
                                                  r"lr=1000.0\)\. Lower the learning rate") as e:
            trainer.fit(loader, epochs=50)
    err = e.value
    assert isinstance(err, RuntimeError) and err.lr == 1000.0
    assert f"at step {err.step} (epoch {err.epoch}," in str(err)
    assert [r["step"] for r in err.history] == list(range(1, err.step))
    assert trainer.step == err.step - 1


def test_non_finite_gradients_and_parameters_are_caught_too():
    class NanGradLoss(parts.CrossEntropyLoss):
        def backward(self, dout=1.0):
            return super().backward(dout) * np.float32(np.nan)

    trainer, loader, _ = _setup(n=20)
    trainer.loss_fn = NanGradLoss()
    with pytest.raises(DivergenceError, match=r"expected finite gradients, got a non-finite "
                                              r"gradient for '0.weight' at step 1 \(epoch 1, "
                                              r"lr=0.1\)"):
        trainer.fit(loader, epochs=1)

    class InfStep(parts.SGD):
        def step(self):
            super().step()
            self.refs_for_test[0].value = self.refs_for_test[0].value + np.float32(np.inf)

    trainer, loader, _ = _setup(n=20)
    opt = InfStep(trainer.model.parameters(), lr=0.1)
    opt.refs_for_test = trainer.model.parameters()
    trainer.optimizer = opt
    with pytest.raises(DivergenceError, match=r"expected finite parameters after the optimizer "
                                              r"step, got a non-finite '0.weight' at step 1"):
        trainer.fit(loader, epochs=1)


# ---------------------------------------------------------------------------- progress
def test_progress_bar_is_silent_when_stderr_is_not_a_terminal(capsys):
    trainer, loader, _ = _setup(n=20, progress=None)
    assert trainer.progress is False
    trainer.fit(loader, epochs=2)
    assert capsys.readouterr() == ("", "")


def test_progress_bar_shows_loss_accuracy_and_lr_when_on(capsys):
    trainer, loader, _ = _setup(n=20, progress=True)
    trainer.fit(loader, epochs=2)
    err = capsys.readouterr().err
    assert "4/4" in err and "loss=" in err and "acc=" in err and "lr=0.1" in err


# ---------------------------------------------------------------------------- checkpoints
def _run_worker(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, os.path.join(HERE, "_train_worker.py"), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_resume_in_a_fresh_process_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    """7 steps + checkpoint + new process + 7 steps == 14 steps, mid-epoch (4 batches/epoch)."""
    ckpt = tmp_path / "ckpt"
    _run_worker("resume", "first", str(ckpt), str(tmp_path / "first.npz"), "7")
    _run_worker("resume", "second", str(ckpt), str(tmp_path / "second.npz"), "7")
    worker.resume("full", None, str(tmp_path / "full.npz"), 7)
    first, resumed = np.load(tmp_path / "first.npz"), np.load(tmp_path / "second.npz")
    full = np.load(tmp_path / "full.npz")
    assert sorted(resumed.files) == sorted(full.files)
    assert any(k.startswith("optim/") for k in full.files)
    for k in full.files:
        np.testing.assert_array_equal(resumed[k], full[k], err_msg=k)
    assert not np.array_equal(first["model/0.weight"], full["model/0.weight"])
    records = json.loads(str(full["history"]))
    assert len(records) == 14 and records[6]["epoch_end"] is False
    assert History.from_jsonl(ckpt / "history.jsonl")["train_loss"] == [
        r["train_loss"] for r in records]


def test_resume_cuts_the_history_at_the_checkpoint_and_continues_it(tmp_path):
    trainer, loader, _ = _setup(n=30, checkpoint_dir=tmp_path, checkpoint_every=4)
    trainer.fit(loader, steps=6)  # checkpoints at 4 and at the end (6)
    trainer.save(tmp_path / "at6")
    again, loader2, _ = _setup(n=30, checkpoint_dir=tmp_path / "b")
    history = again.fit(loader2, steps=9, resume_from=tmp_path)
    assert [r["step"] for r in history] == list(range(1, 10))
    assert History.from_jsonl(tmp_path / "b" / "history.jsonl").records == history.records
    stale = History(history.records[:8])  # a run killed after step 8, checkpoint at 6
    stale.to_jsonl(tmp_path / "at6" / "history.jsonl")
    third, loader3, _ = _setup(n=30)
    third.load(tmp_path / "at6")
    assert third.step == 6 and [r["step"] for r in third.history] == list(range(1, 7))


def test_fit_past_the_target_does_nothing(tmp_path):
    trainer, loader, _ = _setup(n=20, checkpoint_dir=tmp_path)
    trainer.fit(loader, steps=3)
    again, loader, _ = _setup(n=20)
    assert len(again.fit(loader, steps=2, resume_from=tmp_path)) == 3 and again.step == 3


# ---------------------------------------------------------------------------- errors
def test_fit_argument_errors():
    trainer, loader, _ = _setup(n=20)
    with pytest.raises(ValueError, match=r"expected exactly one of epochs= or steps=, got "
                                         r"epochs=None and steps=None"):
        trainer.fit(loader)
    with pytest.raises(ValueError, match=r"got epochs=1 and steps=2"):
        trainer.fit(loader, epochs=1, steps=2)
    with pytest.raises(ValueError, match=r"Trainer.fit: expected epochs to be a positive int, "
                                         r"got 0"):
        trainer.fit(loader, epochs=0)
    with pytest.raises(ValueError, match=r"expected val_every to be a positive int, got 1.5"):
        trainer.fit(loader, steps=2, val_every=1.5)
    with pytest.raises(ValueError, match=r"expected the train loader to yield at least one "
                                         r"batch, got an empty epoch"):
        trainer.fit([], epochs=1)
    with pytest.raises(ValueError, match=r"Trainer.evaluate: expected a loader yielding at "
                                         r"least one batch"):
        trainer.evaluate([])


def test_plateau_scheduler_needs_validation_and_epoch_interval():
    class ReduceLROnPlateau:
        def step(self, metric): ...

    trainer, loader, _ = _setup(n=20, scheduler=ReduceLROnPlateau())
    with pytest.raises(ValueError, match=r"expected a val_loader for ReduceLROnPlateau, got "
                                         r"None"):
        trainer.fit(loader, epochs=1)
    with pytest.raises(ValueError, match=r"expected scheduler_interval='epoch' with "
                                         r"ReduceLROnPlateau, got 'step'"):
        _setup(n=20, scheduler=ReduceLROnPlateau(), scheduler_interval="step")


def test_accuracy_needs_integer_labels():
    trainer, _, (X, y) = _setup(n=20)
    loader = [(X, y.astype(np.float32))]
    trainer.loss_fn = _LabelCastLoss(trainer.loss_fn)
    with pytest.raises(ValueError, match=r"expected \(N, C\) logits and \(N,\) integer labels "
                                         r"for the 'accuracy' metric, got logits \(20, 3\) and "
                                         r"labels \(20,\) of dtype float32"):
        trainer.fit(loader, epochs=1)


class _LabelCastLoss:
    def __init__(self, inner):
        self.inner = inner

    def __call__(self, logits, y):
        return self.inner(logits, y.astype(np.int64))

    def backward(self, dout=1.0):
        return self.inner.backward(dout)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    ({"model": "net"}, TypeError, r"expected model to be a normlab.nn.Module, got str"),
    ({"optimizer": object()}, TypeError, r"expected an optimizer with a step\(\) method"),
    ({"loss_fn": len}, TypeError, r"expected loss_fn to be a loss Module with backward\(\)"),
    ({"callbacks": [print]}, TypeError, r"expected callbacks to be Callback instances"),
    ({"metrics": ("accuracy",)}, ValueError, r"expected metrics among \('loss', 'accuracy'\)"),
    ({"scheduler_interval": "batch"}, ValueError, r"expected scheduler_interval 'epoch' or"),
    ({"grad_clip": -1.0}, ValueError, r"expected grad_clip to be a positive float or None"),
    ({"checkpoint_every": 5}, ValueError, r"expected a checkpoint_dir with checkpoint_every"),
    ({"checkpoint_every": 0, "checkpoint_dir": "x"}, ValueError,
     r"expected checkpoint_every to be a positive int, got 0"),
    ({"progress": "yes"}, TypeError, r"expected progress to be None \(auto\), True or False"),
])
def test_constructor_errors(kwargs, exc, pattern):
    model = parts.make_mlp()
    args = {"model": model, "optimizer": parts.SGD(model.parameters(), lr=0.1),
            "loss_fn": parts.CrossEntropyLoss(), **kwargs}
    with pytest.raises(exc, match=pattern):
        Trainer(**args)


def test_default_loss_is_cross_entropy():
    model = parts.make_mlp()
    assert isinstance(Trainer(model, parts.SGD(model.parameters(), lr=0.1)).loss_fn,
                      nn.CrossEntropyLoss)


def test_save_load_errors(tmp_path):
    trainer, loader, _ = _setup(n=20)
    with pytest.raises(ValueError, match=r"Trainer.save: expected a path or a Trainer "
                                         r"checkpoint_dir, got neither"):
        trainer.save()
    trainer.fit(loader, steps=1)
    trainer.save(tmp_path)
    other, _, _ = _setup(n=20, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match=r"expected callbacks \[\] \(as saved\), got "
                                         r"\['EarlyStopping'\]"):
        other.load(tmp_path)
    again, _, (X, y) = _setup(n=20)
    no_rng = [(X[:10], y[:10]), (X[10:], y[10:])]
    with pytest.raises(ValueError, match=r"expected a train loader with an rng Generator"):
        again.fit(no_rng, steps=3, resume_from=tmp_path)
    short, loader, (X, y) = _setup(n=20)
    short.fit(loader, steps=1)
    short.save(tmp_path / "mid")

    class EmptyLoader:
        rng = np.random.default_rng(0)

        def __iter__(self):
            return iter(())

    fresh, _, _ = _setup(n=20)
    with pytest.raises(ValueError, match=r"expected the train loader to yield the 1 batches "
                                         r"used before the checkpoint, got 0"):
        fresh.fit(EmptyLoader(), steps=3, resume_from=tmp_path / "mid")


def test_resume_replays_loaders_that_draw_per_batch(tmp_path):
    """RandomBatchSampler draws with replacement at every batch: the replay still matches."""
    from normlab.data import RandomBatchSampler

    def build(ckpt=None):
        X, y = parts.make_data(n=40)
        model = parts.make_mlp(dropout=0.5)
        opt = parts.SGD(model.parameters(), lr=0.05, momentum=0.9)
        trainer = Trainer(model, opt, loss_fn=parts.CrossEntropyLoss(), progress=False,
                          checkpoint_dir=ckpt)
        return trainer, RandomBatchSampler(X, y, 8, num_batches=4, rng=1)

    full, sampler = build()
    full.fit(sampler, steps=10)
    part, sampler = build(tmp_path)
    part.fit(sampler, steps=5)
    resumed, sampler = build(tmp_path)
    resumed.fit(sampler, steps=10, resume_from=tmp_path)
    for k, v in full.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[k], v, err_msg=k)
    assert resumed.history["train_loss"] == full.history["train_loss"]


def test_real_reduce_lr_on_plateau_sees_every_validation_loss_and_checkpoints(tmp_path):
    from normlab.optim import ReduceLROnPlateau

    trainer, loader, _ = _setup(n=20, checkpoint_dir=tmp_path)
    trainer.scheduler = ReduceLROnPlateau(trainer.optimizer, patience=0, factor=0.5)
    history = trainer.fit(loader, loader, epochs=4)
    assert trainer.scheduler.best == min(history["val_loss"])
    again, loader, _ = _setup(n=20)
    again.scheduler = ReduceLROnPlateau(again.optimizer, patience=0, factor=0.5)
    assert again.scheduler.best == float("inf")
    again.load(tmp_path)
    assert again.scheduler.state_dict() == trainer.scheduler.state_dict()
    assert again.current_lr() == trainer.current_lr()


def test_a_non_finite_evaluation_loss_names_the_step_it_followed():
    trainer, loader, _ = _setup(n=20)
    trainer.fit(loader, epochs=1)
    trainer.model[3].params["bias"][:] = np.float32(np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DivergenceError, match=r"expected a finite evaluation loss, got "
                                                  r"(nan|inf) after step 2 \(epoch 1, lr=0.1\)"):
            trainer.evaluate(loader)


def test_resume_at_an_epoch_end_with_one_loader_for_training_and_validation(tmp_path):
    def run(epochs, ckpt=None, resume=False):
        trainer, loader, _ = _setup(n=30, checkpoint_dir=ckpt)
        trainer.fit(loader, loader, epochs=epochs, resume_from=ckpt if resume else None)
        return trainer

    full = run(4)
    run(2, tmp_path)
    resumed = run(4, tmp_path, resume=True)
    for k, v in full.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[k], v, err_msg=k)
    assert resumed.history["val_loss"] == full.history["val_loss"]


def test_training_backward_skips_the_input_gradient_and_restores_the_flag():
    trainer, loader, _ = _setup()
    model = trainer.model
    seen = []
    backward = model.backward

    def spy(dout):
        seen.append(model.requires_dx)
        dx = backward(dout)
        seen.append(dx)
        return dx

    model.backward = spy
    trainer.fit(loader, steps=2)
    assert seen == [False, None, False, None]  # nothing uses dx in training
    assert model.requires_dx is True  # the user's setting is back
