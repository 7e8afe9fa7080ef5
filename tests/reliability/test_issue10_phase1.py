"""Regression tests for issue 10, one block per numbered item (the functional items 2, 4 and
11 live in test_issue10_functional.py)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from normlab import nn
from normlab import functional as F
from normlab.errors import (DataError, NormlabError, NormlabTypeError, NormlabValueError,
                            ShapeError, StateError)
from normlab.optim import SGD, Adam, RMSprop, StepLR, clip_grad_norm


# ---------------------------------------------------------------- 1. memory corruption
POOL_OOB = textwrap.dedent("""
    import numpy as np
    from normlab import nn, functional as F
    from normlab.cs231n.fast_layers import max_pool_forward_fast, max_pool_backward_fast
    from normlab.errors import ShapeError
    caught = 0
    for m in (nn.MaxPool2d(2), nn.AvgPool2d(2)):
        m(np.ones((2, 3, 4, 4), np.float32))
        try:
            m.backward(np.ones((2, 3, 5, 5), np.float32))
        except ShapeError:
            caught += 1
    for fwd, bwd, x, d in [
            (F.max_pool1d_forward, F.max_pool1d_backward, np.ones((2, 3, 4)), np.ones((2, 3, 9))),
            (F.avg_pool1d_forward, F.avg_pool1d_backward, np.ones((2, 3, 4)), np.ones((2, 3, 9))),
            (F.max_pool2d_forward, F.max_pool2d_backward, np.ones((2, 3, 4, 4)),
             np.ones((2, 3, 50, 50))),
            (F.avg_pool2d_forward, F.avg_pool2d_backward, np.ones((2, 3, 4, 4)),
             np.ones((9, 9, 9, 9)))]:
        _, cache = fwd(x, 2)
        try:
            bwd(d, cache)
        except ShapeError:
            caught += 1
    _, cache = max_pool_forward_fast(np.ones((2, 3, 4, 4)),
                                     {"pool_height": 2, "pool_width": 2, "stride": 2})
    try:
        max_pool_backward_fast(np.ones((2, 3, 5, 5)), cache)
    except ShapeError:
        caught += 1
    print("caught", caught)
""")


def test_item1_pool_backward_with_a_larger_dout_errors_instead_of_writing_out_of_bounds():
    # run in a child: before the fix this aborted the interpreter ("corrupted size vs. prev_size")
    r = subprocess.run([sys.executable, "-c", POOL_OOB], capture_output=True, text=True,
                       timeout=300, cwd=os.getcwd())
    assert r.returncode == 0, r.stderr[-2000:]
    assert "caught 7" in r.stdout


def test_item1_message():
    m = nn.MaxPool2d(2)
    m(np.ones((2, 3, 4, 4), np.float32))
    with pytest.raises(ShapeError, match=r"MaxPool2d: expected dout of shape \(2, 3, 2, 2\) "
                                         r"\(the forward output's\), got shape \(2, 3, 5, 5\)"):
        m.backward(np.ones((2, 3, 5, 5), np.float32))
    _, cache = F.max_pool1d_forward(np.ones((2, 3, 4)), 2)
    with pytest.raises(ShapeError, match=r"max_pool1d_backward: expected dout of shape "
                                         r"\(2, 3, 2\)"):
        F.max_pool1d_backward(np.ones((2, 3, 5)), cache)


# ---------------------------------------------------------------- 2. Module.backward checks dout
@pytest.mark.parametrize("module, x, dout, match", [
    (nn.Linear(4, 3, rng=0), np.ones((2, 4), np.float32), np.ones((2, 4), np.float32),
     r"Linear: expected dout of shape \(2, 3\) \(the forward output's\), got shape \(2, 4\)"),
    (nn.ReLU(), np.ones((2, 4), np.float32), np.ones((4, 2), np.float32),
     r"ReLU: expected dout of shape \(2, 4\)"),
    (nn.BatchNorm1d(4), np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32),
     np.ones((5, 3), np.float32), r"BatchNorm1d: expected dout of shape \(5, 4\)"),
    (nn.Conv2d(2, 3, 3, rng=0), np.ones((1, 2, 5, 5), np.float32), np.ones((1, 3, 2, 2),
                                                                           np.float32),
     r"Conv2d: expected dout of shape \(1, 3, 3, 3\) \(the forward output's\), got shape "
     r"\(1, 3, 2, 2\)"),
    (nn.AdaptiveAvgPool2d(2), np.ones((1, 2, 5, 5), np.float32), np.ones((1, 2, 3, 3),
                                                                         np.float32),
     r"AdaptiveAvgPool2d: expected dout of shape \(1, 2, 2, 2\)"),
])
def test_item2_module_backward_checks_dout_before_any_kernel(module, x, dout, match):
    module(x)
    with pytest.raises(ShapeError, match=match):
        module.backward(dout)


def test_item2_module_backward_refuses_non_arrays_and_integer_dout():
    m = nn.Tanh()
    m(np.ones((2, 2), np.float32))
    with pytest.raises(NormlabTypeError, match=r"Tanh: expected dout to be an ndarray"):
        m.backward([[1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(NormlabTypeError, match=r"Tanh: expected a floating dout, got dtype int64"):
        m.backward(np.ones((2, 2), np.int64))


# ---------------------------------------------------------------- 3. untrusted unpickling
class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_item3_course_cifar_reader_refuses_code_in_a_pickle(tmp_path, monkeypatch):
    from normlab.cs231n.data_utils import load_CIFAR_batch

    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "data_batch_1"
    bad.write_bytes(pickle.dumps({"data": _Evil(), "labels": [0]}))
    with pytest.raises(DataError, match=r"load_CIFAR_batch: expected only NumPy arrays and plain "
                                        r"containers in a CIFAR-10 batch, got a reference to "
                                        r"(posix|os|nt)\.system"):
        load_CIFAR_batch(str(bad))
    assert not (tmp_path / "pwned-by-pickle").exists()


def test_item3_course_reader_still_reads_a_real_batch(tmp_path):
    from normlab.cs231n.data_utils import load_CIFAR_batch

    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    (tmp_path / "b").write_bytes(pickle.dumps({"data": data, "labels": [3, 4]}))
    X, Y = load_CIFAR_batch(str(tmp_path / "b"))
    assert X.shape == (2, 32, 32, 3) and list(Y) == [3, 4]


# ---------------------------------------------------------------- 5. dict-shaped state
def _sgd_model():
    m = nn.Linear(3, 2, rng=0)
    return m, SGD(m.parameters(), lr=0.1, momentum=0.9)


def _stepped(opt_cls, **kw):
    m = nn.Linear(3, 2, rng=0)
    opt = opt_cls(m.parameters(), **kw)
    m(np.ones((4, 3), np.float32))
    m.backward(np.ones((4, 2), np.float32))
    opt.step()
    return opt


@pytest.mark.parametrize("state, match", [
    ({}, r"SGD\.load_state_dict: expected a dict with keys 'state' and 'param_groups', got \[\]"),
    ({"state": {}, "param_groups": [{"lr": 0.1}]},
     r"SGD\.load_state_dict: expected param_groups to be a list of dicts with a 'params' list"),
    ({"state": [], "param_groups": [{"params": [0, 1]}]},
     r"SGD\.load_state_dict: expected state to be a dict keyed by parameter index"),
    ({"state": {"x": {}}, "param_groups": [{"params": [0, 1], "lr": 0.1, "momentum": 0.9,
                                            "dampening": 0.0, "weight_decay": 0.0,
                                            "nesterov": False, "maximize": False}]},
     r"SGD\.load_state_dict: expected state indices in 0\.\.1, got 'x'"),
])
def test_item5_optimizer_state_dicts(state, match):
    _, opt = _sgd_model()
    with pytest.raises(StateError, match=match):
        opt.load_state_dict(state)


def test_item5_course_param_dicts():
    from normlab.cs231n.layers import batchnorm_forward, conv_forward_naive, dropout_forward

    x = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(StateError, match=r"batchnorm_forward: expected bn_param with keys "
                                         r"\['mode'\], got keys \[\] \(missing \['mode'\]\)"):
        batchnorm_forward(x, np.ones(3), np.zeros(3), {})
    with pytest.raises(StateError, match=r"batchnorm_forward: expected bn_param to be a dict, "
                                         r"got NoneType"):
        batchnorm_forward(x, np.ones(3), np.zeros(3), None)
    with pytest.raises(ShapeError, match=r"batchnorm_forward: expected bn_param\['running_mean'\] "
                                         r"of shape \(3,\)"):
        batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "test",
                                                        "running_mean": np.zeros(4)})
    with pytest.raises(StateError, match=r"dropout_forward: expected dropout_param with keys "
                                         r"\['p', 'mode'\]"):
        dropout_forward(x, {"p": 0.5})
    with pytest.raises(NormlabTypeError, match=r"conv_forward_naive: expected conv_param\['stride'\] "
                                               r"to be an int, got str"):
        conv_forward_naive(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), np.zeros(1),
                           {"stride": "1", "pad": 0})


def test_item5_loader_state():
    from normlab.data import DataLoader

    dl = DataLoader(np.ones((10, 2), np.float32), np.zeros(10, np.int64), 4, rng=0)
    with pytest.raises(StateError, match=r"DataLoader\.load_state_dict: expected a loader state "
                                         r"dict with keys \['rng'\], got \[\]"):
        dl.load_state_dict({})
    bad = dl.state_dict()
    bad["rng"] = {"bit_generator": "PCG64"}
    with pytest.raises(StateError, match=r"DataLoader: expected a complete PCG64 generator state"):
        dl.load_state_dict(bad)


def test_item5_checkpoint_json_without_keys(tmp_path):
    from normlab.train import load_checkpoint, save_checkpoint

    m = nn.Linear(3, 2, rng=0)
    save_checkpoint(tmp_path / "ck", model=m)
    jpath = tmp_path / "ck" / (tmp_path / "ck" / "latest").read_text().strip()
    meta = json.loads(jpath.read_text())
    del meta["model_keys"]
    jpath.write_text(json.dumps(meta))
    with pytest.raises(StateError, match=r"load_checkpoint: expected checkpoint meta .* with keys "
                                         r".*\(missing \['model_keys'\]\)"):
        load_checkpoint(tmp_path / "ck", model=m)


# ---------------------------------------------------------------- 6. exception types
def test_item6_corrupt_data_files_raise_data_error(tmp_path):
    from normlab.cs231n.data_utils import load_CIFAR_batch
    from normlab.data.files import read_cifar10_batch, read_idx

    trunc = tmp_path / "data_batch_1"
    trunc.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]})[:40])
    for reader, owner in ((read_cifar10_batch, "read_cifar10_batch"),
                          (load_CIFAR_batch, "load_CIFAR_batch")):
        with pytest.raises(DataError, match=rf"{owner}: expected a CIFAR-10 python batch \(a "
                                            r"pickle\) in .*, got an unreadable file"):
            reader(trunc)
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match=r"read_idx: expected a readable gzip file"):
        read_idx(gz)


def test_item6_big_endian_input_to_pooling_gives_the_native_result():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    for fwd in (F.max_pool2d_forward, F.avg_pool2d_forward):
        out_native, _ = fwd(x, 3, stride=2, padding=1)
        out_big, cache = fwd(x.astype(">f8"), 3, stride=2, padding=1)
        assert np.array_equal(out_native, out_big)
    dx = F.avg_pool2d_backward(np.ones(out_big.shape).astype(">f8"), cache)
    assert dx.shape == x.shape and dx.dtype.isnative


# ---------------------------------------------------------------- 8. NaN data is bad data
def test_item8_nan_in_the_data_is_reported_as_bad_data_not_divergence():
    from normlab.data import DataLoader
    from normlab.train import DivergenceError, Trainer

    X = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    X[5, 2] = np.nan
    y = np.zeros(16, np.int64)
    m = nn.Sequential(nn.Linear(4, 3, rng=0))
    t = Trainer(m, SGD(m.parameters(), lr=0.1), progress=False)
    with pytest.raises(DataError, match=r"Trainer: expected finite input data, got NaN or inf in "
                                        r"the input batch of step 1") as info:
        t.fit(DataLoader(X, y, 16, shuffle=False), epochs=1)
    assert not isinstance(info.value, DivergenceError)
    assert "learning rate" not in str(info.value)


# ---------------------------------------------------------------- 9. silently accepted nonsense
def test_item9_integer_dtype_for_layers_and_models():
    from normlab import models

    with pytest.raises(NormlabTypeError, match=r"Linear: expected a floating dtype"):
        nn.Linear(3, 2, dtype=np.int64)
    with pytest.raises(NormlabTypeError, match=r"Linear: expected a floating dtype"):
        models.build("mlp", input_shape=(4,), num_classes=3, dtype=int)


def test_item9_same_param_twice_in_one_group():
    m = nn.Linear(3, 2, rng=0)
    p = m.parameters()
    with pytest.raises(NormlabValueError, match=r"SGD: expected each parameter once, got 'weight' "
                                                r"twice in one param group"):
        SGD([p[0], p[0]], lr=0.1)


def test_item9_adam_state_into_sgd():
    adam = _stepped(Adam, lr=1e-3)
    _, sgd = _sgd_model()
    with pytest.raises(StateError, match=r"SGD\.load_state_dict: expected param group "
                                         r"hyperparameters .*Was it saved by another optimizer"):
        sgd.load_state_dict(adam.state_dict())
    sd = adam.state_dict()
    sd["param_groups"][0].update(momentum=0.9, dampening=0.0, nesterov=False)
    with pytest.raises(StateError, match=r"SGD\.load_state_dict: expected state\[0\] to hold "
                                         r"\['momentum_buffer'\], got keys \['exp_avg', "):
        sgd.load_state_dict(sd)


def test_item9_state_dicts_cannot_install_invalid_hyperparameters():
    m, opt = _sgd_model()
    sd = opt.state_dict()
    sd["param_groups"][0]["lr"] = -5
    with pytest.raises(NormlabValueError, match=r"SGD: expected lr"):
        opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.1  # unchanged
    sched = StepLR(opt, step_size=2)
    ssd = sched.state_dict()
    ssd["step_size"] = -3
    with pytest.raises(NormlabValueError, match=r"StepLR\.load_state_dict: expected step_size to "
                                                r"be an int >= 1, got -3"):
        sched.load_state_dict(ssd)
    assert sched.step_size == 2
    with pytest.raises(StateError, match=r"StepLR\.load_state_dict: expected keys"):
        sched.load_state_dict({"last_epoch": 0})


def test_item9_hyperparameter_ranges():
    m, opt = _sgd_model()
    with pytest.raises(NormlabValueError, match=r"StepLR: expected gamma in \(0\.0, inf\), got "
                                                r"gamma=-0\.5"):
        StepLR(opt, step_size=1, gamma=-0.5)
    with pytest.raises(NormlabValueError, match=r"clip_grad_norm: expected max_norm in \[0\.0, "
                                                r"inf\), got max_norm=-1"):
        clip_grad_norm(m.parameters(), -1)
    with pytest.raises(NormlabValueError, match=r"RMSprop: expected alpha in \[0, 1\]"):
        RMSprop(m.parameters(), alpha=1.5)


def test_item9_whitening_eps0_on_rank_deficient_data():
    from normlab.data.preprocessing import PCA, ZCAWhitening

    X = np.random.default_rng(0).standard_normal((20, 3))
    X = np.concatenate([X, X[:, :1]], axis=1)  # rank 3 of 4
    with pytest.raises(NormlabValueError, match=r"ZCAWhitening: expected full-rank data or eps > 0 "
                                                r"for whitening, got 1 of 4 covariance eigenvalues"):
        ZCAWhitening(eps=0).fit(X)
    with pytest.raises(NormlabValueError, match=r"PCA: expected full-rank data or eps > 0"):
        PCA(whiten=True, eps=0).fit(X)
    assert np.isfinite(ZCAWhitening(eps=1e-5).fit(X).transform(X)).all()
    PCA(n_components=3, whiten=True, eps=0).fit(X)  # the kept components are full rank


def test_item9_negative_running_var():
    from normlab.interop import fold_batchnorm

    bn = nn.BatchNorm1d(3)
    sd = bn.state_dict()
    sd["running_var"] = np.array([1.0, -2.0, 1.0], np.float32)
    with pytest.raises(StateError, match=r"BatchNorm1d\.load_state_dict: 'running_var': expected "
                                         r"a non-negative variance, got minimum -2\.0"):
        bn.load_state_dict(sd)
    assert (bn.buffers["running_var"] == 1).all()
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.BatchNorm1d(3)).eval()
    model[1].buffers["running_var"][1] = -1.0
    with pytest.raises(NormlabValueError, match=r"fold_batchnorm: expected a finite, non-negative "
                                                r"running_var"):
        fold_batchnorm(model)


def test_item9_numerical_gradient_h0():
    from normlab.cs231n.gradient_check import eval_numerical_gradient_array
    from normlab.gradcheck import numerical_gradient

    x = np.ones(3)
    with pytest.raises(NormlabValueError, match=r"numerical_gradient: expected h in \(0\.0, inf\), "
                                                r"got h=0"):
        numerical_gradient(lambda v: v, x, np.ones(3), h=0)
    with pytest.raises(NormlabValueError, match=r"eval_numerical_gradient_array: expected h"):
        eval_numerical_gradient_array(lambda v: v, x, np.ones(3), h=0.0)


# ---------------------------------------------------------------- 10. interop round trip
def test_item10_torch_export_of_a_bn_model_loads_back():
    from normlab.interop import load_torch_state_dict, to_torch_state_dict

    m = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4))
    m(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    sd = to_torch_state_dict(m)
    assert tuple(sd["1.num_batches_tracked"].shape) == ()
    m2 = nn.Sequential(nn.Linear(3, 4, rng=1), nn.BatchNorm1d(4))
    load_torch_state_dict(m2, sd)
    for k, v in m.state_dict().items():
        assert np.array_equal(v, m2.state_dict()[k])


def test_every_error_above_is_a_normlab_error():
    assert issubclass(StateError, NormlabError) and issubclass(DataError, NormlabError)


def test_item6_path_problems_are_normlab_os_errors(tmp_path):
    import errno

    from normlab.errors import NormlabOSError
    from normlab.train import History, save_checkpoint

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    m = nn.Linear(2, 2, rng=0)
    with pytest.raises(NormlabOSError, match=r"save_checkpoint: expected a folder at '.*afile' "
                                             r"\(or nothing there\), got FileExistsError") as info:
        save_checkpoint(blocker, model=m)
    assert info.value.errno == errno.EEXIST
    with pytest.raises(NormlabOSError, match=r"write: expected a writable file '.*x\.jsonl', got "
                                             r"NotADirectoryError"):
        History().to_jsonl(blocker / "x.jsonl")
