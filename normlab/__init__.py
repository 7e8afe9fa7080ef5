"""normlab: a NumPy deep-learning lab built around Batch Normalization."""

__version__ = "0.1.0"

# The one kernel switch: normlab.kernels("reference" | "compiled"), also a context manager.
from normlab.functional.dispatch import (  # noqa: E402
    get_kernels, get_num_threads, kernels, set_num_threads)

from normlab.allocator import tune_allocator  # noqa: E402

__all__ = ["__version__", "kernels", "get_kernels", "set_num_threads", "get_num_threads",
           "tune_allocator"]
