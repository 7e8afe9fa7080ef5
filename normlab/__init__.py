"""normlab: a NumPy deep-learning lab built around Batch Normalization."""

__version__ = "0.1.0"

# The one kernel switch: normlab.kernels("reference" | "compiled"), also a context manager.
from normlab.functional.dispatch import get_kernels, kernels  # noqa: E402

__all__ = ["__version__", "kernels", "get_kernels"]
