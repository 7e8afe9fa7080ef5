"""export_onnx: onnxruntime equals normlab's eval output for every registered model."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from normlab import models, nn  # noqa: E402
from normlab.interop import export_onnx  # noqa: E402

# name -> (per-sample input shape, small builder keywords)
SMALL = {
    "mlp": ((2, 4, 4), {"hidden_dims": [16, 8]}),
    "convnet": ((3, 8, 8), {"num_filters": 4, "filter_size": 3, "hidden_dim": 8}),
    "lenet": ((1, 28, 28), {}),
    "resnet20": ((3, 8, 8), {"base_width": 4}),
    "resnet32": ((3, 8, 8), {"base_width": 2}),
    "resnet56": ((3, 8, 8), {"base_width": 2}),
    "resnet18": ((3, 32, 32), {"base_width": 4}),
    "mnist1d-linear": ((1, 40), {}),
    "mnist1d-mlp": ((1, 40), {"hidden": 16}),
    "mnist1d-cnn": ((1, 40), {"channels": 6}),
}


def test_every_registered_model_has_a_small_case():
    assert set(SMALL) == set(models.MODELS)


def _randomise_norms(model, rng):
    """Non-trivial running statistics and affine parameters, so folding really matters."""
    for m in model.modules():
        for key, arr in list(m.buffers.items()):
            if key == "running_mean":
                m.buffers[key] = rng.normal(0, 0.5, arr.shape).astype(arr.dtype)
            elif key == "running_var":
                m.buffers[key] = rng.uniform(0.5, 2.0, arr.shape).astype(arr.dtype)
        if type(m).__name__.startswith(("BatchNorm", "GroupNorm", "LayerNorm", "Instance")):
            for key, arr in list(m.params.items()):
                m.params[key] = (rng.normal(1.0 if key == "weight" else 0.0, 0.3, arr.shape)
                                 .astype(arr.dtype))


def _build(name, rng, norm="batch"):
    shape, kw = SMALL[name]
    if name != "mnist1d-linear":
        kw = {**kw, "norm": norm}
    model = models.build(name, input_shape=shape, num_classes=5, rng=rng, **kw)
    _randomise_norms(model, rng)
    return model.eval(), shape


def _ort(onnx_model, x):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("fold_bn", [True, False])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_onnxruntime_matches_normlab_eval(name, fold_bn, tmp_path, rng):
    model, shape = _build(name, rng)
    path = tmp_path / f"{name}.onnx"
    exported = export_onnx(model, path, (1, *shape), fold_bn=fold_bn)
    onnx.checker.check_model(onnx.load(path))
    ops = {n.op_type for n in exported.graph.node}
    has_bn = any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())
    assert ("BatchNormalization" in ops) == (has_bn and not fold_bn)
    x = rng.standard_normal((3, *shape)).astype(np.float32)  # batch axis is dynamic
    want = model(x)
    got = _ort(exported, x)
    assert got.shape == want.shape == (3, 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, norm", [("resnet20", "group"), ("resnet20", "layer"),
                                        ("mlp", "layer"), ("convnet", "instance"),
                                        ("mnist1d-cnn", "instance"), ("lenet", None)])
def test_other_norm_layers(name, norm, tmp_path, rng):
    model, shape = _build(name, rng, norm)
    exported = export_onnx(model, tmp_path / "m.onnx", (2, *shape))
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    np.testing.assert_allclose(_ort(exported, x), model(x), rtol=1e-5, atol=1e-5)


def test_pools_leaky_relu_flatten_and_adaptive_bins(tmp_path, rng):
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, rng=rng), nn.LeakyReLU(0.2), nn.MaxPool2d(3, 2, 1),
        nn.AvgPool2d(2, padding=1), nn.AdaptiveAvgPool2d((2, 1)), nn.Tanh(),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 3, rng=rng), nn.Sigmoid()).eval()
    exported = export_onnx(model, tmp_path / "m.onnx", (1, 2, 12, 12))
    ops = [n.op_type for n in exported.graph.node]
    assert ops == ["Conv", "LeakyRelu", "MaxPool", "AveragePool", "AveragePool", "Tanh",
                   "Flatten", "Gemm", "Sigmoid"]
    x = rng.standard_normal((4, 2, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(_ort(exported, x), model(x), rtol=1e-5, atol=1e-6)


def test_refuses_training_mode_naming_the_module(tmp_path, rng):
    model, shape = _build("resnet20", rng)
    model.layer2[0].bn1.train()
    with pytest.raises(RuntimeError, match=r"export_onnx: expected a model in eval mode, got "
                                           r"training mode at 'layer2\.0\.bn1'"):
        export_onnx(model, tmp_path / "m.onnx", (1, *shape))
    with pytest.raises(RuntimeError, match="training mode at 'ResNet'"):
        export_onnx(model.train(), tmp_path / "m.onnx", (1, *shape))
    assert not (tmp_path / "m.onnx").exists()


def test_refuses_unsupported_modules_naming_them(tmp_path, rng):
    class Doubler(nn.Module):
        def forward(self, x):
            return 2 * x

    model = nn.Sequential(nn.Linear(4, 4, rng=rng), Doubler()).eval()
    with pytest.raises(ValueError, match=r"export_onnx: expected modules with an ONNX "
                                         r"converter, got Doubler at '1'\. Supported: "):
        export_onnx(model, tmp_path / "m.onnx", (1, 4))

    class Twisted(nn.Sequential):
        def forward(self, x):  # a Sequential that does more than chaining its children
            return super().forward(x) * 3

    with pytest.raises(ValueError, match="got Twisted at 'the top level'"):
        export_onnx(Twisted(nn.Linear(4, 4, rng=rng)).eval(), tmp_path / "m.onnx", (1, 4))
    bn = nn.BatchNorm1d(4, track_running_stats=False).eval()
    with pytest.raises(ValueError, match="expected BatchNorm with running statistics, got "
                                         "track_running_stats=False at '0'"):
        export_onnx(nn.Sequential(bn).eval(), tmp_path / "m.onnx", (2, 4), fold_bn=False)
    assert not (tmp_path / "m.onnx").exists()


def test_input_shape_errors(tmp_path, rng):
    model, _ = _build("lenet", rng)
    with pytest.raises(ValueError, match=r"export_onnx: expected input_shape \(N, \.\.\.\) of "
                                         r"positive ints"):
        export_onnx(model, tmp_path / "m.onnx", (28,))
    with pytest.raises(ValueError, match=r"LeNet: expected input \(N, 1, 28, 28\)"):
        export_onnx(model, tmp_path / "m.onnx", (1, 1, 32, 32))


def test_export_leaves_the_model_unchanged(tmp_path, rng):
    model, shape = _build("resnet20", rng)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    export_onnx(model, tmp_path / "m.onnx", (1, *shape))
    after = model.state_dict()
    assert sorted(after) == sorted(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
