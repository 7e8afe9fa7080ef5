"""Pure forward/backward pairs: ``*_forward(...) -> (out, cache)``, ``*_backward(dout, cache)``.

No state, no mutation of inputs; the array module comes from the inputs (NumPy or CuPy).
"""

from normlab.functional.linear import linear_backward, linear_forward  # noqa: F401
