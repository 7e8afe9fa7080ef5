"""numba's threading layer for normlab's parallel kernels.

numba picks OpenMP by default where its GNU OpenMP runtime loads; in a process that also
runs PyTorch (which ships its own libgomp) the two runtimes fight: measured, a 1-thread
torch MLP step went from 5 ms to 230 ms once numba's OpenMP pool had started. The
``workqueue`` layer has no such conflict, so it is chosen here unless the user picked a
layer (``NUMBA_THREADING_LAYER``). Imported by every provider module with parallel kernels,
before any of them runs.
"""

from __future__ import annotations

import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ and numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"
