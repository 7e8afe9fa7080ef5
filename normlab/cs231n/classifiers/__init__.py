"""The course's ``cs231n.classifiers``: ``fc_net`` and ``cnn`` models with ``loss(X, y=None)``."""

from normlab.cs231n.classifiers.cnn import ThreeLayerConvNet  # noqa: F401
from normlab.cs231n.classifiers.fc_net import FullyConnectedNet, TwoLayerNet  # noqa: F401
