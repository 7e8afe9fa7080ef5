"""normlab: a NumPy deep-learning lab built around Batch Normalization."""

__version__ = "0.1.0"
