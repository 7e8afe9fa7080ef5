"""One forward/backward step through a normlab module and its torch rebuild, compared."""

import numpy as np
import torch


def step_matches_torch(net, tnet, X, dout, dx_rtol):
    """Run ``X`` forward and ``dout`` backward through both, check the outputs agree (rtol 1e-7)
    and ``dX`` agrees (rtol ``dx_rtol``), and return torch's parameter gradients by name."""
    Xt = torch.tensor(X, requires_grad=True)
    tnet.zero_grad()  # grads to None, as the book's training loop leaves them
    Yt = tnet(Xt)
    Yt.backward(torch.tensor(dout))
    Y = net(X)
    dX = net.backward(dout)
    np.testing.assert_allclose(Y, Yt.detach().numpy(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), rtol=dx_rtol, atol=1e-12)
    return {k: v.grad.numpy() for k, v in tnet.named_parameters()}
