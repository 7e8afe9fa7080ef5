"""Pure forward/backward pairs: ``*_forward(...) -> (out, cache)``, ``*_backward(dout, cache)``.

No state, no mutation of inputs; the array module comes from the inputs (NumPy or CuPy).
"""

from normlab.functional.linear import linear_backward, linear_forward  # noqa: F401
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
