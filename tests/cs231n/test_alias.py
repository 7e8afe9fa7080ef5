"""``normlab.cs231n.alias()``: the course notebooks' cells run with their own import lines.

Each notebook below runs in a fresh interpreter whose working directory holds a decoy
``cs231n/`` folder (the assignment's own, which would raise on import), so the alias must take
precedence over it. The cells are the notebooks' seeded checks; the printed numbers are
compared with the values the course prints or states (the same values as in the other tests
of this folder).
"""

import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from _course_cells import BATCH_NORMALIZATION, CONVOLUTIONAL, DROPOUT, FULLY_CONNECTED

import normlab.cs231n

REPO = Path(__file__).resolve().parents[2]


def _write_decoy_and_cifar(cwd: Path) -> None:
    """The assignment's folder: a ``cs231n`` package that must never be imported, and the
    course's relative data path ``cs231n/datasets/cifar-10-batches-py`` (tiny fake batches)."""
    pkg = cwd / "cs231n"
    (pkg / "classifiers").mkdir(parents=True)
    for f in ("__init__.py", "layers.py", "classifiers/__init__.py", "classifiers/fc_net.py"):
        (pkg / f).write_text("raise ImportError('the decoy cs231n folder was imported')\n")
    data = pkg / "datasets" / "cifar-10-batches-py"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {"data": rng.integers(0, 256, (12, 3072), dtype=np.uint8),
             "labels": [int(v) for v in rng.integers(0, 10, 12)]}
        with open(data / name, "wb") as fh:
            pickle.dump(d, fh)


def _run(tmp_path, code):
    _write_decoy_and_cifar(tmp_path)
    # one BLAS thread: on a loaded 2-core machine two OpenBLAS threads slow small matmuls 100x
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _values(out: str, label: str) -> list:
    """Every number printed after ``label`` (one per matching line)."""
    pat = re.compile(re.escape(label) + r"\s*([-+0-9.eE]+|nan|inf)")
    return [float(m.group(1)) for m in pat.finditer(out)]


def test_decoy_folder_is_what_an_unaliased_import_finds(tmp_path):
    _write_decoy_and_cifar(tmp_path)
    proc = subprocess.run([sys.executable, "-c", "import cs231n.layers"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "the decoy cs231n folder was imported" in proc.stderr


def test_fully_connected_nets_notebook(tmp_path):
    out = _run(tmp_path, FULLY_CONNECTED)
    assert "('X_train: ', (50, 3, 32, 32))" in out
    assert _values(out, "affine difference:")[0] < 1e-8  # course: around 1e-9
    for label in ("sandwich dx error:", "sandwich dw error:", "sandwich db error:"):
        assert _values(out, label)[0] < 1e-8
    assert _values(out, "Initial loss:") == pytest.approx([2.3004790897684924,
                                                           7.052114776533016], abs=1e-10)
    errors = {n: _values(out, f"{n} relative error:") for n in ("W1", "W2", "W3", "b1")}
    assert 1e-5 < errors["W2"][0] < 3e-5  # the course prints 2.21e-05 (a ReLU kink)
    assert max(errors["W1"] + errors["W3"] + errors["b1"]) < 1e-6
    assert _values(out, "next_w error:")[0] < 1e-8
    assert _values(out, "velocity error:")[0] < 1e-8
    assert _values(out, "Final training accuracy:") == [1.0]


def test_batch_normalization_notebook(tmp_path):
    out = _run(tmp_path, BATCH_NORMALIZATION)
    means = re.search(r"means: \[(.*)\]", out).group(1)
    stds = re.search(r"stds:  \[(.*)\]", out).group(1)
    np.testing.assert_allclose(np.array(means.split(","), float), [11, 12, 13], rtol=1e-12)
    np.testing.assert_allclose(np.array(stds.split(","), float), [1, 2, 3], rtol=1e-6)
    for label in ("dx error:", "dgamma error:", "dbeta error:"):
        assert _values(out, label)[0] < 1e-7  # course: between 1e-13 and 1e-8
    for label in ("dx difference:", "dgamma difference:", "dbeta difference:"):
        assert _values(out, label)[0] < 1e-9


def test_dropout_notebook(tmp_path):
    out = _run(tmp_path, DROPOUT)
    ps = _values(out, "Running tests with p =")
    zeros = _values(out, "Fraction of train-time output set to zero:")
    assert ps == [0.25, 0.4, 0.7]
    for p, z in zip(ps, zeros):
        assert abs(z - (1 - p)) < 0.01  # course: a fraction 1 - p of units dropped
    assert _values(out, "Fraction of test-time output set to zero:") == [0.0, 0.0, 0.0]
    x_mean = _values(out, "Mean of input:")[0]
    for m in _values(out, "Mean of train-time output:"):
        assert abs(m - x_mean) < 0.05


def test_convolutional_networks_notebook(tmp_path):
    out = _run(tmp_path, CONVOLUTIONAL)
    assert _values(out, "conv difference:")[0] < 1e-7  # course: around e-8
    assert _values(out, "pool difference:")[0] < 1e-7
    assert _values(out, "fast difference:")[0] < 1e-9
    assert abs(_values(out, "Initial loss (no regularization):")[0] - np.log(10)) < 0.01
    # 32 filters of 7x7: a 6 x 6 grid of tiles with one-pixel gaps, each scaled to [0, 255]
    assert "grid shape:  (47, 47, 3) range:  0.0 255.0" in out


def test_alias_is_idempotent_and_maps_every_course_module():
    code = textwrap.dedent("""
        import sys, importlib, normlab.cs231n
        normlab.cs231n.alias(); normlab.cs231n.alias()
        finders = [f for f in sys.meta_path if type(f).__name__ == 'CourseAliasFinder']
        assert len(finders) == 1 and sys.meta_path[0] is finders[0]
        from normlab.cs231n._alias import MODULES
        for course, ours in MODULES.items():
            assert importlib.import_module(course) is importlib.import_module(ours), course
            assert sys.modules[ours].__spec__.name == ours  # reload keeps working
        import cs231n.layers
        importlib.reload(cs231n.layers)
        normlab.cs231n.unalias()
        assert not any(n == 'cs231n' or n.startswith('cs231n.') for n in sys.modules)
        print('ok')
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_unknown_course_module_is_a_clear_error():
    normlab.cs231n.alias()
    try:
        with pytest.raises(ModuleNotFoundError, match="expected one of the assignment 2 "
                                                      "modules .* got 'cs231n.rnn_layers'"):
            import cs231n.rnn_layers  # noqa: F401
    finally:
        normlab.cs231n.unalias()


@pytest.mark.parametrize("module, names", [
    ("classifiers.fc_net", ["FullyConnectedNet", "batchnorm_forward", "dropout_backward",
                            "affine_bn_relu_forward", "conv_forward_fast"]),
    ("classifiers.cnn", ["ThreeLayerConvNet", "conv_forward_naive", "max_pool_forward_fast",
                         "conv_relu_pool_backward", "spatial_batchnorm_forward"]),
    ("layer_utils", ["affine_relu_forward", "affine_forward", "conv_backward_fast"]),
    ("fast_layers", ["conv_forward_fast", "max_pool_backward_reshape"]),
])
def test_star_import_surfaces_follow_the_course(module, names):
    """The course's fc_net/cnn star-import layers and layer_utils, whose module star-imports
    layers and fast_layers; a notebook's ``import *`` of them sees all of it."""
    ns = {}
    exec(f"from normlab.cs231n.{module} import *", ns)
    for name in names:
        assert name in ns, name
    assert not any(n.startswith("_") or n.endswith("_hyper") for n in ns if n != "__builtins__")
