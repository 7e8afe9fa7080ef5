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
from normlab.functional.conv import (  # noqa: F401
    conv1d_backward,
    conv1d_forward,
    conv2d_backward,
    conv2d_forward,
)
from normlab.functional.pool import (  # noqa: F401
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
    avg_pool1d_backward,
    avg_pool1d_forward,
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool1d_backward,
    max_pool1d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)
from normlab.functional.batchnorm import (  # noqa: F401
    BatchNormCache,
    Moments,
    batch_moments,
    batch_norm_backward_elementwise,
    batch_norm_backward_reduce,
    batch_norm_forward_from_moments,
    merge_moments,
    batch_norm_backward,
    batch_norm_backward_staged,
    batch_norm_eval_backward,
    batch_norm_eval_forward,
    batch_norm_forward,
    update_running_stats,
)
from normlab.functional.norm import (  # noqa: F401
    group_norm_backward,
    group_norm_forward,
    instance_norm_backward,
    instance_norm_forward,
    layer_norm_backward,
    layer_norm_forward,
    rms_norm_backward,
    rms_norm_forward,
)
