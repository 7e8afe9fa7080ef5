"""SyncBatchNorm: exactly BatchNorm on the concatenated batch, on 2 and 3 real processes.

The multi-process tests write cases to a tmp folder, run ``_syncbn_worker`` under
``mpiexec`` and compare each rank's slice with BatchNorm on the whole batch computed
here, in one process (float64, 1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest

from normlab import nn
from normlab.distributed import SingleProcessCommunicator
from normlab.gradcheck import rel_error

from tests.distributed._fakes import CountingComm
from tests.distributed._mpi import launch

TOL = 1e-12
_PLAIN = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}
_TAIL = {2: (), 3: (4,), 4: (3, 2), 5: (2, 2, 3)}  # spatial sizes per input rank


def _case(rng, ndim, splits, C=3, momentum=0.1, affine=True, expect_error=False):
    N = sum(splits)
    shape = (N, C) + _TAIL[ndim]
    case = {"splits": np.array(splits), "C": C, "affine": affine,
            "momentum": np.nan if momentum is None else momentum,
            "weight": 1.0 + 0.5 * rng.standard_normal(C), "bias": 0.5 * rng.standard_normal(C)}
    for step in (0, 1):  # shifted, scaled data: the merge must handle unequal means
        case[f"x{step}"] = 3.0 + 2.0 * rng.standard_normal(shape) * rng.uniform(0.5, 2, C
                                                                                ).reshape((1, C) + (1,) * (ndim - 2))
        case[f"d{step}"] = rng.standard_normal(shape)
    if expect_error:
        case["expect_error"] = True
    return case


def _reference(case):
    """BatchNorm on the concatenated batch, two steps, in this process."""
    momentum = None if np.isnan(case["momentum"]) else case["momentum"]
    bn = _PLAIN[case["x0"].ndim](case["C"], momentum=momentum, affine=case["affine"],
                                 dtype=np.float64)
    if bn.affine:
        bn.params["weight"], bn.params["bias"] = case["weight"].copy(), case["bias"].copy()
    ref = {}
    for step in (0, 1):
        ref[f"out{step}"] = bn(case[f"x{step}"])
        ref[f"dx{step}"] = bn.backward(case[f"d{step}"])
        for key, g in bn.grads.items():
            ref[f"d{key}{step}"] = g
    ref.update(bn.buffers)
    return ref


CASES_2 = {
    "2d-5-8": (2, [5, 8], {}), "3d-5-8": (3, [5, 8], {}), "4d-5-8": (4, [5, 8], {}),
    "5d-5-8": (5, [5, 8], {}), "4d-0-7": (4, [0, 7], {}), "2d-1-6": (2, [1, 6], {}),
    "2d-5-8-momentum-none": (2, [5, 8], {"momentum": None}),
    "4d-8-5-no-affine": (4, [8, 5], {"affine": False}),
    "2d-1-0-error": (2, [1, 0], {"expect_error": True}),
}
CASES_3 = {
    "2d-5-8-11": (2, [5, 8, 11], {}), "3d-5-8-11": (3, [5, 8, 11], {}),
    "4d-5-8-11": (4, [5, 8, 11], {}), "5d-5-8-11": (5, [5, 8, 11], {}),
    "4d-0-1-6": (4, [0, 1, 6], {}), "2d-1-0-1": (2, [1, 0, 1], {}),
}


@pytest.mark.parametrize("nproc, cases", [(2, CASES_2), (3, CASES_3)], ids=["2proc", "3proc"])
def test_sync_batchnorm_equals_full_batch_batchnorm(tmp_path, nproc, cases):
    rng = np.random.default_rng(nproc)
    built = {}
    for name, (ndim, splits, kw) in cases.items():
        built[name] = _case(rng, ndim, splits, **kw)
        np.savez(tmp_path / f"case-{name}.npz", **built[name])
    launch(nproc, "_syncbn_worker", tmp_path)
    controls = 0
    for name, case in built.items():
        outs = [dict(np.load(tmp_path / f"out-{name}-{r}.npz")) for r in range(nproc)]
        if "expect_error" in case:
            for o in outs:
                assert "more than 1 value per channel" in str(o["error"]), name
                assert f"got 1 over all {nproc} process(es)" in str(o["error"]), name
            continue
        ref = _reference(case)
        bounds = np.cumsum([0] + list(case["splits"]))
        for step in (0, 1):
            for key in ("out", "dx"):
                got = np.concatenate([o[f"{key}{step}"] for o in outs])
                np.testing.assert_allclose(got, ref[f"{key}{step}"], rtol=0, atol=TOL,
                                           err_msg=f"{name} {key}{step}")
            for r, o in enumerate(outs):
                for key in ("dweight", "dbias"):
                    if f"{key}{step}" in ref:
                        np.testing.assert_allclose(o[f"{key}{step}"], ref[f"{key}{step}"],
                                                   rtol=0, atol=TOL, err_msg=f"{name} {key}")
                    else:
                        assert f"{key}{step}" not in o
        for r, o in enumerate(outs):
            for key in ("running_mean", "running_var"):
                np.testing.assert_allclose(o[key], ref[key], rtol=0, atol=TOL,
                                           err_msg=f"{name} rank {r} {key}")
            assert int(o["num_batches_tracked"]) == 2
        # negative control: per-rank BatchNorm normalises with the rank's own statistics
        for r, o in enumerate(outs):
            if "plain_out0" in o and case["splits"][r] < bounds[-1]:
                part = ref["out0"][bounds[r]:bounds[r + 1]]
                assert np.abs(o["plain_out0"] - part).max() > 1e-3, f"{name} rank {r}"
                controls += 1
    assert controls >= len(cases)


# ---------------------------------------------------------------- one process, no MPI
@pytest.mark.parametrize("ndim", [2, 3, 4, 5])
def test_one_process_sync_batchnorm_is_batchnorm(ndim):
    rng = np.random.default_rng(ndim)
    case = _case(rng, ndim, [7])
    ref = _reference(case)
    sync = nn.SyncBatchNorm(3, dtype=np.float64, comm=SingleProcessCommunicator())
    sync.params["weight"], sync.params["bias"] = case["weight"].copy(), case["bias"].copy()
    for step in (0, 1):
        np.testing.assert_array_equal(sync(case[f"x{step}"]), ref[f"out{step}"])
        np.testing.assert_array_equal(sync.backward(case[f"d{step}"]), ref[f"dx{step}"])
    np.testing.assert_array_equal(sync.grads["weight"], ref["dweight1"])
    np.testing.assert_array_equal(sync.buffers["running_var"], ref["running_var"])


def test_sync_batchnorm_sends_one_allgather_forward_one_allreduce_backward():
    comm = CountingComm(size=1)
    sync = nn.SyncBatchNorm(4, dtype=np.float64, comm=comm)
    x = np.random.default_rng(0).standard_normal((5, 4, 3, 3))
    sync.backward(sync(x))
    assert comm.calls == {"allreduce": 1, "allgather": 1, "broadcast": 0, "barrier": 0}
    sync.eval()
    sync(x)  # running statistics: nothing sent
    sync.backward(x)
    assert comm.calls["allgather"] == 1 and comm.calls["allreduce"] == 1


def test_sync_batchnorm_merges_what_the_ranks_send():
    """Two identical ranks (a fake comm): the statistics are those of the doubled batch."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 4))
    sync = nn.SyncBatchNorm(2, dtype=np.float64, comm=CountingComm(size=2))
    bn = nn.BatchNorm1d(2, dtype=np.float64)
    out = sync(x)
    ref = bn(np.concatenate([x, x]))[:3]
    assert rel_error(out, ref) < 1e-14
    assert rel_error(sync.buffers["running_var"], bn.buffers["running_var"]) < 1e-14


def test_sync_batchnorm_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel.*got 1 over all 1"):
        nn.SyncBatchNorm(3, comm=SingleProcessCommunicator())(np.ones((1, 3), np.float32))
    with pytest.raises(TypeError, match="SyncBatchNorm: expected comm to be a normlab"):
        nn.SyncBatchNorm(3, comm="world")
    with pytest.raises(ValueError, match="SyncBatchNorm: expected 2D or 3D or 4D or 5D input"):
        nn.SyncBatchNorm(3)(np.ones((2, 3, 1, 1, 1, 1), np.float32))
    sync = nn.SyncBatchNorm(3)
    sync(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"SyncBatchNorm: expected dout of shape \(4, 3\)"):
        sync.backward(np.ones((4, 2), np.float32))


def test_sync_batchnorm_eval_without_running_stats_uses_local_batch():
    comm = CountingComm(size=2)
    sync = nn.SyncBatchNorm(2, track_running_stats=False, dtype=np.float64, comm=comm).eval()
    x = np.random.default_rng(2).standard_normal((4, 2))
    np.testing.assert_array_equal(sync(x), nn.BatchNorm1d(2, track_running_stats=False,
                                                          dtype=np.float64).eval()(x))
    assert comm.calls["allgather"] == 0


def test_convert_sync_batchnorm_keeps_values_and_keys():
    from normlab.models import resnet20

    rng = np.random.default_rng(3)
    model = resnet20(base_width=4, num_classes=5, rng=0, dtype=np.float64)
    for _, m in model.named_modules():
        for key in m.buffers:
            if key != "num_batches_tracked":
                m.buffers[key] = m.buffers[key] + rng.uniform(0.1, 1, m.buffers[key].shape)
    model.bn1.eval()
    before = model.state_dict()
    comm = SingleProcessCommunicator()
    out = nn.convert_sync_batchnorm(model, comm)
    assert out is model
    after = model.state_dict()
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
    kinds = {type(m).__name__ for m in model.modules()}
    assert "SyncBatchNorm" in kinds and not {"BatchNorm1d", "BatchNorm2d"} & kinds
    assert model.layer2[0].downsample[1].comm is comm  # inside a Sequential too
    assert model.bn1.training is False and model.layer1[0].bn1.training is True
    x = rng.standard_normal((4, 3, 8, 8))
    model.eval()
    ref = resnet20(base_width=4, num_classes=5, rng=0, dtype=np.float64)
    ref.load_state_dict(before)
    np.testing.assert_array_equal(model(x), ref.eval()(x))


def test_convert_sync_batchnorm_of_a_layer_and_errors():
    bn = nn.BatchNorm1d(3, affine=True, bias=False, momentum=None, eps=1e-3)
    bn.params["weight"] += 1.0
    sync = nn.convert_sync_batchnorm(bn, SingleProcessCommunicator())
    assert isinstance(sync, nn.SyncBatchNorm) and "bias" not in sync.params
    assert sync.momentum is None and sync.eps == 1e-3
    np.testing.assert_array_equal(sync.params["weight"], bn.params["weight"])
    from normlab.optim.groups import is_norm_module

    assert is_norm_module(sync)
    with pytest.raises(TypeError, match="convert_sync_batchnorm: expected a normlab Module"):
        nn.convert_sync_batchnorm([bn])
    with pytest.raises(TypeError, match="convert_sync_batchnorm: expected comm"):
        nn.convert_sync_batchnorm(bn, comm=3)
