"""ResNets: explicit residual wiring, shapes, gradients, zero-init, overfitting, errors."""

import numpy as np
import pytest

from normlab import nn
from normlab.gradcheck import check_module
from normlab.models import BasicBlock, ResNet, resnet18, resnet20, resnet32, resnet56


def test_block_output_is_relu_of_main_plus_shortcut(rng):
    block = BasicBlock(3, 3, norm=None, dtype=np.float64, rng=0)
    x = rng.standard_normal((2, 3, 5, 5))
    main = block.conv2(block.relu1(block.conv1(x)))
    np.testing.assert_array_equal(block(x), np.maximum(main + x, 0))


def test_block_backward_sums_both_paths(rng):
    # conv2 = 0 makes the main path constant in x, so dx is the shortcut's part alone.
    block = BasicBlock(2, 2, norm=None, dtype=np.float64, rng=0)
    block.conv2.params["weight"] = np.zeros_like(block.conv2.params["weight"])
    x = rng.standard_normal((2, 2, 3, 3))
    out = block(x)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(block.backward(dout), dout * (out > 0))


@pytest.mark.parametrize("in_planes, planes, stride", [(2, 2, 1), (2, 3, 2), (2, 3, 1)])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_block_gradcheck(in_planes, planes, stride, mode, rng):
    # check_module with a layer before the block, so dx flows through the residual sum
    block = getattr(BasicBlock(in_planes, planes, stride, dtype=np.float64, rng=1), mode)()
    assert (block.downsample is None) == (stride == 1 and in_planes == planes)
    pre = nn.Conv2d(in_planes, in_planes, 1, dtype=np.float64, rng=2)
    report = check_module(block, rng.standard_normal((2, in_planes, 4, 4)), rng, pre=pre,
                          tol=1e-6, h=1e-5)
    assert report.passed, report.errors


@pytest.mark.parametrize("stem, hw", [("cifar", 4), ("imagenet", 12)])  # >= 2x2 at the end
@pytest.mark.parametrize("norm", ["batch", None])
def test_tiny_resnet_gradcheck(stem, hw, norm, gradcheck, rng):
    net = ResNet((1, 1), (2, 3), stem=stem, in_channels=1, num_classes=3, norm=norm,
                 dtype=np.float64, rng=1)
    gradcheck(net, rng.standard_normal((2, 1, hw, hw)), rng, tol=1e-6)


@pytest.mark.parametrize("builder, n", [(resnet20, 3), (resnet32, 5), (resnet56, 9)])
def test_cifar_depths_and_shapes(builder, n, rng):
    net = builder(num_classes=7, base_width=2, rng=0)
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(blocks) == 3 * n
    assert len(convs) == 1 + 6 * n + 2  # stem, two per block, two projection shortcuts
    assert sum(b.downsample is not None for b in blocks) == 2
    out = net(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    assert out.shape == (2, 7) and out.dtype == np.float32


def test_resnet18_structure_and_shape(rng):
    net = resnet18(num_classes=5, base_width=4, in_channels=1, rng=0)
    assert [n for n, _ in net.named_children()] == [
        "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool",
        "flatten", "fc"]
    assert net.conv1.params["weight"].shape == (4, 1, 7, 7)
    out = net(rng.standard_normal((2, 1, 32, 32)).astype(np.float32))
    assert out.shape == (2, 5)


def test_resnet18_full_width_parameter_count():
    # torchvision's resnet18 has 11,689,512 parameters with 1000 classes.
    assert resnet18(num_classes=1000, rng=0).num_parameters() == 11_689_512


def test_convs_have_no_bias_with_norm_and_one_without():
    assert "bias" not in BasicBlock(2, 2, rng=0).conv1.params
    assert "bias" in BasicBlock(2, 2, norm=None, rng=0).conv1.params


def test_kaiming_fan_out_initialisation():
    w = resnet20(base_width=16, rng=0).layer3[0].conv2.params["weight"]  # (64, 64, 3, 3)
    np.testing.assert_allclose(w.std(), np.sqrt(2.0 / (64 * 9)), rtol=0.02)


def test_zero_init_residual_makes_blocks_identity_on_relu_input(rng):
    net = resnet20(base_width=2, zero_init_residual=True, rng=0)
    for m in net.modules():
        if isinstance(m, BasicBlock):
            assert np.all(m.bn2.params["weight"] == 0)
    block = net.layer1[0]
    x = np.abs(rng.standard_normal((2, 2, 4, 4))).astype(np.float32)
    np.testing.assert_array_equal(block(x), x)  # bn2 out = beta = 0, relu(x) = x for x >= 0
    assert np.all(resnet20(base_width=2, rng=0).layer1[0].bn2.params["weight"] == 1)


@pytest.mark.parametrize("norm", ["layer", "group", "instance"])
def test_other_norms_build_and_run(norm, rng):
    net = resnet20(base_width=4, norm=norm, num_classes=3, rng=0)
    assert net(rng.standard_normal((2, 3, 8, 8)).astype(np.float32)).shape == (2, 3)


@pytest.mark.parametrize("build", [lambda: resnet20(base_width=4, rng=0),
                                   lambda: resnet18(base_width=4, rng=0)])
def test_overfits_a_batch_of_20(build, overfit, rng):
    x = rng.standard_normal((20, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    assert overfit(build(), x, y, steps=60) == 1.0


@pytest.mark.parametrize("kw, match", [
    ({"blocks": (1, 1), "widths": (2,)},
     r"ResNet: expected blocks and widths of the same non-zero length"),
    ({"widths": (2, 0)}, r"ResNet: expected widths to be positive ints, got \(2, 0\)"),
    ({"num_classes": 0}, r"ResNet: expected num_classes to be positive ints, got 0"),
    ({"stem": "imagenet1k"}, r"ResNet: expected stem 'cifar' or 'imagenet', got 'imagenet1k'"),
    ({"norm": "sync"}, r"ResNet: expected norm in .*got 'sync'"),
    ({"norm": None, "zero_init_residual": True},
     r"ResNet: expected a norm layer for zero_init_residual=True, got norm=None"),
])
def test_bad_hyperparameters_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        ResNet(**{"blocks": (1, 1), "widths": (2, 4), **kw})


def test_block_bad_norm_and_wrong_input_raise(rng):
    with pytest.raises(ValueError, match=r"BasicBlock: expected norm in .*got 'bn'"):
        BasicBlock(2, 2, norm="bn")
    with pytest.raises(ValueError, match=r"ResNet: expected input \(N, 3, H, W\), got input of "
                                         r"shape \(2, 1, 8, 8\)"):
        resnet20(base_width=2, rng=0)(rng.standard_normal((2, 1, 8, 8)).astype(np.float32))
