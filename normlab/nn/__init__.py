"""Stateful modules (PyTorch names, signatures and state_dict keys) over normlab.functional."""

from normlab.nn.container import Sequential  # noqa: F401
from normlab.nn.linear import Flatten, Identity, Linear  # noqa: F401
from normlab.nn.module import Module, ParamRef  # noqa: F401
from normlab.nn.activation import LeakyReLU, ReLU, Sigmoid, Tanh  # noqa: F401
from normlab.nn.dropout import Dropout  # noqa: F401
from normlab.nn.loss import CrossEntropyLoss, MSELoss, MultiMarginLoss  # noqa: F401
