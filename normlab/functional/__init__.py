"""Pure forward/backward pairs: ``*_forward(...) -> (out, cache)``, ``*_backward(dout, cache)``.

No state, no mutation of inputs; the array module comes from the inputs (NumPy or CuPy).
"""

from normlab.functional.linear import linear_backward, linear_forward  # noqa: F401
from normlab.functional.batchnorm import (  # noqa: F401
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
