"""Import direction and the notebooks' import lines."""

import subprocess
import sys


def test_functional_never_imports_cs231n():
    code = ("import sys, normlab.functional, normlab.nn; "
            "sys.exit(any(m.startswith('normlab.cs231n') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_notebook_star_imports_work():
    ns = {}
    exec("from normlab.cs231n.layers import *\n"
         "from normlab.cs231n.layer_utils import *\n"
         "from normlab.cs231n.fast_layers import *\n"
         "from normlab.cs231n.classifiers.fc_net import *\n"
         "from normlab.cs231n.classifiers.cnn import *\n"
         "from normlab.cs231n.solver import Solver\n"
         "from normlab.cs231n.data_utils import get_CIFAR10_data\n"
         "from normlab.cs231n.gradient_check import eval_numerical_gradient, "
         "eval_numerical_gradient_array\n", ns)
    for name in ("affine_forward", "batchnorm_backward_alt", "spatial_groupnorm_forward",
                 "conv_forward_naive", "max_pool_backward_naive", "affine_relu_forward",
                 "conv_relu_pool_forward", "conv_forward_fast", "FullyConnectedNet",
                 "TwoLayerNet", "ThreeLayerConvNet", "Solver"):
        assert name in ns, name
    assert "conv_hyper" not in ns
