"""Pure forward/backward pairs: ``*_forward(...) -> (out, cache)``, ``*_backward(dout, cache)``.

No state, no mutation of inputs; the array module comes from the inputs (NumPy or CuPy).
"""

from normlab.functional.linear import linear_backward, linear_forward  # noqa: F401
from normlab.functional.activation import (  # noqa: F401
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from normlab.functional.dropout import dropout_backward, dropout_forward  # noqa: F401
from normlab.functional.loss import mse_loss, multi_margin_loss, softmax_cross_entropy  # noqa: F401
