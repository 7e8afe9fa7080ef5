"""The compiled kernels load from numba's on-disk cache in a new process instead of being
compiled again (a kernel that captures another jitted function from a closure is not
cacheable: every process then paid 1.7-2 s for batch norm's first training step)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

_SCRIPT = r"""
import json
import numpy as np
import normlab
from normlab import nn, models
from normlab.functional.compiled import (numba_bn, numba_conv, numba_elementwise, numba_flatconv,
                                         numba_pool, numba_sigmoid)

normlab.set_num_threads(1)
x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
for build in (lambda: models.LeNet(norm="batch", rng=0), lambda: models.resnet20(rng=0)):
    model = build()
    inp = x if isinstance(model, models.LeNet) else np.repeat(x[:, :, :8, :8], 3, axis=1)
    for training in (True, False):
        model.train(training)
        out = model(inp)
        model.backward(np.ones_like(out))
stats = {}
dispatchers = [(f"numba_bn.{name}[{i}]", k) for name, pair in numba_bn._kernels.items()
               for i, k in enumerate(pair)]
for module in (numba_conv, numba_flatconv, numba_elementwise, numba_pool, numba_sigmoid):
    dispatchers += [(f"{module.__name__}.{n}", getattr(module, n)) for n in dir(module)]
for name, f in dispatchers:
    s = getattr(f, "stats", None)
    if s is not None and hasattr(s, "cache_hits"):
        stats[name] = (sum(s.cache_hits.values()), sum(s.cache_misses.values()))
print(json.dumps(stats))
"""


def _run(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                         text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_every_kernel_from_the_cache(tmp_path):
    first = _run(tmp_path)
    used = {name for name, (hits, misses) in first.items() if hits + misses}
    assert {"numba_bn.stats[0]", "numba_bn.affine[0]", "numba_bn.sums[0]",
            "numba_bn.dx[0]"} <= used  # the models ran the batch-norm kernels
    second = _run(tmp_path)
    recompiled = {name: v for name, v in second.items() if name in used and v[1]}
    assert not recompiled, f"compiled again instead of loaded from the cache: {recompiled}"
