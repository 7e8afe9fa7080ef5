"""load_torch_state_dict / to_torch_state_dict: round trips, casts, errors by key."""

import sys

import numpy as np
import pytest
import torch

from normlab import nn
from normlab.interop import load_torch_state_dict, to_torch_state_dict
from normlab.models import FullyConnectedNet


def _pair():
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, norm="batch", rng=0)
    twin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5),
                               torch.nn.ReLU(), torch.nn.Linear(5, 3))
    return model, twin


def test_load_from_torch_copies_every_value_and_casts_to_model_dtype():
    model, twin = _pair()
    twin.double()
    twin(torch.randn(6, 4, dtype=torch.float64))  # moves the BN buffers off their defaults
    load_torch_state_dict(model, twin.state_dict())
    ours = model.state_dict()
    for k, v in twin.state_dict().items():
        assert ours[k].dtype == (np.int64 if k.endswith("num_batches_tracked") else np.float32)
        np.testing.assert_array_equal(ours[k], v.numpy().astype(ours[k].dtype))
    assert int(ours["2.num_batches_tracked"]) == 1


def test_load_accepts_arrays_and_a_torch_module():
    model, twin = _pair()
    load_torch_state_dict(model, {k: v.numpy() for k, v in twin.state_dict().items()})
    np.testing.assert_array_equal(model.state_dict()["1.weight"], twin[1].weight.detach().numpy())
    other, _ = _pair()
    load_torch_state_dict(other, twin)
    np.testing.assert_array_equal(other.state_dict()["4.bias"], twin[4].bias.detach().numpy())


def test_round_trip_through_torch_is_exact():
    model, twin = _pair()
    twin.load_state_dict(to_torch_state_dict(model))
    copy, _ = _pair()
    load_torch_state_dict(copy, twin.state_dict())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(copy.state_dict()[k], v)


def test_to_torch_gives_cpu_tensors_with_our_dtypes():
    model, _ = _pair()
    sd = to_torch_state_dict(model.to(dtype=np.float64))
    assert sd["1.weight"].dtype == torch.float64 and sd["1.weight"].shape == (5, 4)
    assert sd["2.num_batches_tracked"].dtype == torch.int64
    sd["1.weight"][0, 0] = 123.0  # a copy: the model is untouched
    assert model.state_dict()["1.weight"][0, 0] != 123.0


def test_every_problem_is_reported_by_key_in_one_error():
    model, twin = _pair()
    sd = twin.state_dict()
    del sd["4.bias"]
    sd["9.weight"] = torch.zeros(2)
    sd["1.weight"] = torch.zeros(5, 5)
    with pytest.raises(ValueError, match=r"load_torch_state_dict: expected the keys and shapes of "
                       r"FullyConnectedNet\.state_dict\(\), got missing keys \['4\.bias'\]; "
                       r"unexpected keys \['9\.weight'\]; '1\.weight': expected shape \(5, 4\), "
                       r"got \(5, 5\)\."):
        load_torch_state_dict(model, sd)


def test_nothing_is_copied_when_a_key_is_wrong():
    model, twin = _pair()
    before = model.state_dict()
    sd = twin.state_dict()
    del sd["4.bias"]
    with pytest.raises(ValueError, match="missing keys"):
        load_torch_state_dict(model, sd)
    np.testing.assert_array_equal(model.state_dict()["1.weight"], before["1.weight"])


def test_type_errors():
    model, _ = _pair()
    with pytest.raises(TypeError, match=r"load_torch_state_dict: expected a mapping of names to "
                                        r"tensors, got list"):
        load_torch_state_dict(model, [1, 2])
    with pytest.raises(TypeError, match=r"load_torch_state_dict: expected a torch\.Tensor or an "
                                        r"array under '1\.weight', got str"):
        load_torch_state_dict(model, {"1.weight": "w"})


def test_bfloat16_tensors_are_accepted():
    model = nn.Linear(2, 3, rng=0)
    load_torch_state_dict(model, {"weight": torch.ones(3, 2, dtype=torch.bfloat16),
                                  "bias": torch.zeros(3, dtype=torch.bfloat16)})
    assert model.params["weight"].dtype == np.float32 and np.all(model.params["weight"] == 1)


def test_to_torch_without_torch_raises_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match=r"to_torch_state_dict: expected PyTorch to be installed, "
                                          r"got ImportError .*pip install torch"):
        to_torch_state_dict(nn.Linear(2, 2, rng=0))
