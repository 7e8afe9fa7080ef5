"""Compiled kernels, kept apart from the readable reference code of each op.

Each module here registers its kernels with ``normlab.functional.dispatch`` on import
(``register(op, backend, impl)``) and says what it is built with in ``PROVIDER``; the
dispatch imports the modules of a backend on its first lookup. Today: numba CPU kernels
for NumPy arrays (``numba_bn``: batch-norm stages; ``numba_conv``: im2col, col2im, the
F(2x2, 3x3) input adjoint; ``numba_pool``: max and average pooling; ``numba_flatconv``: the
flat-row conv path; ``numba_winograd2`` / ``numba_winograd4`` / ``numba_winograd_weight``:
Winograd transforms; ``numba_elementwise``: activations; ``numba_sigmoid``: sigmoid and
BN + sigmoid; ``numba_optim``: optimizer steps).
CuPy kernels and parallel CPU kernels go in new modules listed in
``dispatch._PROVIDERS``. Nothing here is imported by ``import normlab``.
"""
