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

import normlab.cs231n

REPO = Path(__file__).resolve().parents[2]

SETUP = '''
import normlab.cs231n; normlab.cs231n.alias()
import time
import numpy as np
import matplotlib.pyplot as plt

def rel_error(x, y):
    """ returns relative error """
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))
'''

FULLY_CONNECTED = SETUP + '''
from cs231n.classifiers.fc_net import *
from cs231n.data_utils import get_CIFAR10_data
from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from cs231n.solver import Solver

data = get_CIFAR10_data(num_training=50, num_validation=10, num_test=10)
for k, v in list(data.items()):
    print(('%s: ' % k, v.shape))

# Test the affine_forward function
num_inputs = 2
input_shape = (4, 5, 6)
output_dim = 3
input_size = num_inputs * np.prod(input_shape)
weight_size = output_dim * np.prod(input_shape)
x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
b = np.linspace(-0.3, 0.1, num=output_dim)
out, _ = affine_forward(x, w, b)
correct_out = np.array([[ 1.49834967,  1.70660132,  1.91485297],
                        [ 3.25553199,  3.5141327,   3.77273342]])
print('Testing affine_forward function:')
print('affine difference: ', rel_error(out, correct_out))

from cs231n.layer_utils import affine_relu_forward, affine_relu_backward
np.random.seed(231)
x = np.random.randn(2, 3, 4)
w = np.random.randn(12, 10)
b = np.random.randn(10)
dout = np.random.randn(2, 10)
out, cache = affine_relu_forward(x, w, b)
dx, dw, db = affine_relu_backward(dout, cache)
dx_num = eval_numerical_gradient_array(lambda x: affine_relu_forward(x, w, b)[0], x, dout)
dw_num = eval_numerical_gradient_array(lambda w: affine_relu_forward(x, w, b)[0], w, dout)
db_num = eval_numerical_gradient_array(lambda b: affine_relu_forward(x, w, b)[0], b, dout)
print('Testing affine_relu_forward and affine_relu_backward:')
print('sandwich dx error: ', rel_error(dx_num, dx))
print('sandwich dw error: ', rel_error(dw_num, dw))
print('sandwich db error: ', rel_error(db_num, db))

np.random.seed(231)
N, D, H1, H2, C = 2, 15, 20, 30, 10
X = np.random.randn(N, D)
y = np.random.randint(C, size=(N,))
for reg in [0, 3.14]:
    print("Running check with reg = ", reg)
    model = FullyConnectedNet(
        [H1, H2],
        input_dim=D,
        num_classes=C,
        reg=reg,
        weight_scale=5e-2,
        dtype=np.float64
    )
    loss, grads = model.loss(X, y)
    print("Initial loss: ", loss)
    for name in sorted(grads):
        f = lambda _: model.loss(X, y)[0]
        grad_num = eval_numerical_gradient(f, model.params[name], verbose=False, h=1e-5)
        print(f"{name} relative error: {rel_error(grad_num, grads[name])}")

from cs231n.optim import sgd_momentum
N, D = 4, 5
w = np.linspace(-0.4, 0.6, num=N*D).reshape(N, D)
dw = np.linspace(-0.6, 0.4, num=N*D).reshape(N, D)
v = np.linspace(0.6, 0.9, num=N*D).reshape(N, D)
config = {"learning_rate": 1e-3, "velocity": v}
next_w, _ = sgd_momentum(w, dw, config=config)
expected_next_w = np.asarray([
  [ 0.1406,      0.20738947,  0.27417895,  0.34096842,  0.40775789],
  [ 0.47454737,  0.54133684,  0.60812632,  0.67491579,  0.74170526],
  [ 0.80849474,  0.87528421,  0.94207368,  1.00886316,  1.07565263],
  [ 1.14244211,  1.20923158,  1.27602105,  1.34281053,  1.4096    ]])
expected_velocity = np.asarray([
  [ 0.5406,      0.55475789,  0.56891579, 0.58307368,  0.59723158],
  [ 0.61138947,  0.62554737,  0.63970526,  0.65386316,  0.66802105],
  [ 0.68217895,  0.69633684,  0.71049474,  0.72465263,  0.73881053],
  [ 0.75296842,  0.76712632,  0.78128421,  0.79544211,  0.8096    ]])
print("next_w error: ", rel_error(next_w, expected_next_w))
print("velocity error: ", rel_error(expected_velocity, config["velocity"]))

# Use a three-layer Net to overfit 50 training examples
np.random.seed(231)
num_train = 50
small_data = {
  "X_train": data["X_train"][:num_train],
  "y_train": data["y_train"][:num_train],
  "X_val": data["X_val"],
  "y_val": data["y_val"],
}
model = FullyConnectedNet([100, 100], weight_scale=1e-2, dtype=np.float64)
solver = Solver(model, small_data, print_every=10, num_epochs=20, batch_size=25,
                update_rule="adam", optim_config={"learning_rate": 1e-3}, verbose=False)
solver.train()
print("Final training accuracy: ", max(solver.train_acc_history))
'''

BATCH_NORMALIZATION = SETUP + '''
from cs231n.classifiers.fc_net import *
from cs231n.data_utils import get_CIFAR10_data
from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from cs231n.solver import Solver

def print_mean_std(x,axis=0):
    print(f"  means: {x.mean(axis=axis).tolist()}")
    print(f"  stds:  {x.std(axis=axis).tolist()}")

np.random.seed(231)
N, D1, D2, D3 = 200, 50, 60, 3
X = np.random.randn(N, D1)
W1 = np.random.randn(D1, D2)
W2 = np.random.randn(D2, D3)
a = np.maximum(0, X.dot(W1)).dot(W2)
gamma = np.asarray([1.0, 2.0, 3.0])
beta = np.asarray([11.0, 12.0, 13.0])
a_norm, _ = batchnorm_forward(a, gamma, beta, {'mode': 'train'})
print('After batch normalization (gamma=', gamma, ', beta=', beta, ')')
print_mean_std(a_norm,axis=0)

np.random.seed(231)
N, D = 4, 5
x = 5 * np.random.randn(N, D) + 12
gamma = np.random.randn(D)
beta = np.random.randn(D)
dout = np.random.randn(N, D)
bn_param = {'mode': 'train'}
fx = lambda x: batchnorm_forward(x, gamma, beta, bn_param)[0]
fg = lambda a: batchnorm_forward(x, a, beta, bn_param)[0]
fb = lambda b: batchnorm_forward(x, gamma, b, bn_param)[0]
dx_num = eval_numerical_gradient_array(fx, x, dout)
da_num = eval_numerical_gradient_array(fg, gamma.copy(), dout)
db_num = eval_numerical_gradient_array(fb, beta.copy(), dout)
_, cache = batchnorm_forward(x, gamma, beta, bn_param)
dx, dgamma, dbeta = batchnorm_backward(dout, cache)
print('dx error: ', rel_error(dx_num, dx))
print('dgamma error: ', rel_error(da_num, dgamma))
print('dbeta error: ', rel_error(db_num, dbeta))

np.random.seed(231)
N, D = 100, 500
x = 5 * np.random.randn(N, D) + 12
gamma = np.random.randn(D)
beta = np.random.randn(D)
dout = np.random.randn(N, D)
bn_param = {'mode': 'train'}
out, cache = batchnorm_forward(x, gamma, beta, bn_param)
dx1, dgamma1, dbeta1 = batchnorm_backward(dout, cache)
dx2, dgamma2, dbeta2 = batchnorm_backward_alt(dout, cache)
print('dx difference: ', rel_error(dx1, dx2))
print('dgamma difference: ', rel_error(dgamma1, dgamma2))
print('dbeta difference: ', rel_error(dbeta1, dbeta2))
'''

DROPOUT = SETUP + '''
from cs231n.classifiers.fc_net import *
from cs231n.data_utils import get_CIFAR10_data
from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from cs231n.solver import Solver

np.random.seed(231)
x = np.random.randn(500, 500) + 10
for p in [0.25, 0.4, 0.7]:
    out, _ = dropout_forward(x, {'mode': 'train', 'p': p})
    out_test, _ = dropout_forward(x, {'mode': 'test', 'p': p})
    print('Running tests with p = ', p)
    print('Mean of input: ', x.mean())
    print('Mean of train-time output: ', out.mean())
    print('Mean of test-time output: ', out_test.mean())
    print('Fraction of train-time output set to zero: ', (out == 0).mean())
    print('Fraction of test-time output set to zero: ', (out_test == 0).mean())
'''

CONVOLUTIONAL = SETUP + '''
from cs231n.classifiers.cnn import *
from cs231n.data_utils import get_CIFAR10_data
from cs231n.gradient_check import eval_numerical_gradient_array, eval_numerical_gradient
from cs231n.layers import *
from cs231n.fast_layers import *
from cs231n.solver import Solver

x_shape = (2, 3, 4, 4)
w_shape = (3, 3, 4, 4)
x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
b = np.linspace(-0.1, 0.2, num=3)
conv_param = {'stride': 2, 'pad': 1}
out, _ = conv_forward_naive(x, w, b, conv_param)
correct_out = np.array([[[[-0.08759809, -0.10987781],
                           [-0.18387192, -0.2109216 ]],
                          [[ 0.21027089,  0.21661097],
                           [ 0.22847626,  0.23004637]],
                          [[ 0.50813986,  0.54309974],
                           [ 0.64082444,  0.67101435]]],
                         [[[-0.98053589, -1.03143541],
                           [-1.19128892, -1.24695841]],
                          [[ 0.69108355,  0.66880383],
                           [ 0.59480972,  0.56776003]],
                          [[ 2.36270298,  2.36904306],
                           [ 2.38090835,  2.38247847]]]])
print('Testing conv_forward_naive')
print('conv difference: ', rel_error(out, correct_out))

x_shape = (2, 3, 4, 4)
x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
pool_param = {'pool_width': 2, 'pool_height': 2, 'stride': 2}
out, _ = max_pool_forward_naive(x, pool_param)
correct_out = np.array([[[[-0.26315789, -0.24842105],
                          [-0.20421053, -0.18947368]],
                         [[-0.14526316, -0.13052632],
                          [-0.08631579, -0.07157895]],
                         [[-0.02736842, -0.01263158],
                          [ 0.03157895,  0.04631579]]],
                        [[[ 0.09052632,  0.10526316],
                          [ 0.14947368,  0.16421053]],
                         [[ 0.20842105,  0.22315789],
                          [ 0.26736842,  0.28210526]],
                         [[ 0.32631579,  0.34105263],
                          [ 0.38526316,  0.4       ]]]])
print('Testing max_pool_forward_naive function:')
print('pool difference: ', rel_error(out, correct_out))

from cs231n.fast_layers import conv_forward_fast, conv_backward_fast
np.random.seed(231)
x = np.random.randn(10, 3, 31, 31)
w = np.random.randn(25, 3, 3, 3)
b = np.random.randn(25,)
dout = np.random.randn(10, 25, 16, 16)
conv_param = {'stride': 2, 'pad': 1}
out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
print('Testing conv_forward_fast:')
print('fast difference: ', rel_error(out_naive, out_fast))

from cs231n.layer_utils import conv_relu_pool_forward, conv_relu_pool_backward
np.random.seed(231)
model = ThreeLayerConvNet()
N = 50
X = np.random.randn(N, 3, 32, 32)
y = np.random.randint(10, size=N)
loss, grads = model.loss(X, y)
print('Initial loss (no regularization): ', loss)

from cs231n.vis_utils import visualize_grid
grid = visualize_grid(model.params['W1'].transpose(0, 2, 3, 1))
plt.imshow(grid.astype('uint8'))
plt.axis('off')
plt.gcf().set_size_inches(5, 5)
print('grid shape: ', grid.shape, 'range: ', grid.min(), grid.max())
'''


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
