"""The book's networks: parameter counts and keys of a torch rebuild, and equal numbers on the
same weights and batches (float64)."""

import numpy as np
import pytest
import torch
from _book import BookResidual, book_lenet_bn, book_resnet18, book_resnet_chapter
from _parity import step_matches_torch

from normlab.d2l import BatchNorm, Residual, lenet_bn, resnet18, resnet_chapter
from normlab.gradcheck import check_module


def _torch_count(tnet):
    return sum(p.numel() for p in tnet.parameters())


def _copy_params(tnet, net):
    """torch -> normlab, by name (the keys must agree)."""
    tparams = {k: v.detach().numpy().copy() for k, v in tnet.named_parameters()}
    names = {n for n, _, _ in net.named_parameters()}
    assert names == set(tparams)
    for mname, m in net.named_modules():
        for key in m.params:
            m.params[key] = tparams[f"{mname}.{key}" if mname else key].copy()


@pytest.mark.parametrize("concise", [False, True])
def test_lenet_bn_has_the_books_parameter_count(concise):
    torch.manual_seed(0)
    tnet = book_lenet_bn()
    net = lenet_bn(concise=concise)
    assert net.num_parameters() == _torch_count(tnet)
    if not concise:
        assert {n for n, _, _ in net.named_parameters()} == {n for n, _ in tnet.named_parameters()}


def test_resnets_have_the_books_parameter_counts_and_state_dict_keys():
    torch.manual_seed(0)
    for tnet, net in [(book_resnet18(10, 1), resnet18(10, 1)),
                      (book_resnet18(7, 3), resnet18(7, 3)),
                      (book_resnet_chapter(), resnet_chapter())]:
        assert net.num_parameters() == _torch_count(tnet)
        assert list(net.state_dict()) == list(tnet.state_dict())


def test_lenet_bn_equals_the_book_over_five_steps_and_in_prediction(rng):
    torch.manual_seed(0)
    tnet = book_lenet_bn()
    net = lenet_bn(dtype=np.float64)
    _copy_params(tnet, net)
    for step in range(6):
        training = step < 5
        net.train(training)
        tnet.train(training)
        tgrads = step_matches_torch(net, tnet, rng.random((6, 1, 28, 28)),
                                    rng.standard_normal((6, 10)), dx_rtol=1e-6)
        for name, _, grad in net.named_parameters():
            np.testing.assert_allclose(grad, tgrads[name], rtol=1e-6, atol=1e-12, err_msg=name)
        for i in (1, 5, 10, 13):
            np.testing.assert_allclose(net[i].buffers["moving_mean"], tnet[i].moving_mean.numpy(),
                                       rtol=1e-7, atol=1e-12)
            np.testing.assert_allclose(net[i].buffers["moving_var"], tnet[i].moving_var.numpy(),
                                       rtol=1e-7, atol=1e-12)


def test_resnet18_equals_the_book_on_the_same_weights(rng):
    torch.manual_seed(0)
    tnet = book_resnet18(10, 1)
    net = resnet18(10, 1, dtype=np.float64)
    net.load_state_dict({k: v.numpy() for k, v in tnet.state_dict().items()})
    for training in (True, False):
        net.train(training)
        tnet.train(training)
        tgrads = step_matches_torch(net, tnet, rng.random((2, 1, 8, 8)),
                                    rng.standard_normal((2, 10)), dx_rtol=1e-6)
        for name in ("0.weight", "resnet_block2.0.conv3.weight", "resnet_block4.1.bn2.weight",
                     "fc.1.weight"):
            grad = dict((n, g) for n, _, g in net.named_parameters())[name]
            np.testing.assert_allclose(grad, tgrads[name], rtol=1e-6, atol=1e-12, err_msg=name)
    tstate = tnet.state_dict()
    for k, v in net.state_dict().items():  # running statistics after the training pass
        np.testing.assert_allclose(v, tstate[k].numpy(), rtol=1e-7, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("use_1x1conv, strides, c_in, c_out", [(False, 1, 3, 3),
                                                               (True, 2, 2, 3)])
def test_residual_gradcheck_and_shape(rng, use_1x1conv, strides, c_in, c_out):
    blk = Residual(c_in, c_out, use_1x1conv=use_1x1conv, strides=strides, rng=rng)
    x = rng.standard_normal((2, c_in, 5, 5))
    assert blk(x.astype(np.float32)).shape == (2, c_out, 3 if strides == 2 else 5,
                                               3 if strides == 2 else 5)
    for training in (True, False):
        blk.train(training)
        report = check_module(blk, x, rng, tol=1e-6)
        errors = dict(report.errors)
        if training:  # BN cancels the conv biases before it: their gradient is exactly 0,
            del errors["conv1.bias"], errors["conv2.bias"]  # checked below instead
        assert max(errors.values()) < 1e-6, errors
    blk.train()
    out = blk(x.astype(np.float32))
    blk.backward(rng.standard_normal(out.shape).astype(np.float32))
    for key in ("conv1", "conv2"):
        assert np.abs(getattr(blk, key).grads["bias"]).max() < 1e-5
    tblk = BookResidual(c_in, c_out, use_1x1conv, strides)
    assert blk.num_parameters() == _torch_count(tblk)


def test_residual_refuses_an_identity_shortcut_of_the_wrong_shape():
    with pytest.raises(ValueError, match="Residual: expected use_1x1conv=True when the shape "
                                         "changes"):
        Residual(3, 6)


@pytest.mark.parametrize("make, shape", [
    (lambda: BatchNorm(3, 4), (4, 3, 5, 5)),
    (lambda: BatchNorm(3, 2), (4, 3)),
    (lambda: Residual(3, 4, use_1x1conv=True, strides=2, rng=0), (2, 3, 6, 6)),
])
def test_module_contract(rng, make, shape):
    """dtype kept, input untouched, state_dict round trip, same numbers from the same state."""
    m = make()
    x = rng.standard_normal(shape).astype(np.float32)
    x0 = x.copy()
    out = m(x)
    assert out.dtype == np.float32 and np.array_equal(x, x0)
    assert m.backward(np.ones_like(out)).dtype == np.float32
    twin = make()
    twin.load_state_dict(m.state_dict())
    for a in (m, twin):
        a.eval()
    np.testing.assert_array_equal(m(x), twin(x))
