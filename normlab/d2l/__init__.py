"""The batch-norm chapter of "Dive into Deep Learning" (d2l.ai; first edition ``d2lzh``) on
normlab: the book's names, signatures and numerics over :mod:`normlab.functional`.

=========================  ================================================================
``batch_norm``             ``batch_norm(is_training, X, gamma, beta, moving_mean, moving_var,
                           eps, momentum) -> (Y, moving_mean, moving_var)``
``BatchNorm``              ``BatchNorm(num_features, num_dims)``: the from-scratch layer
``lenet_bn``               LeNet with BN (``concise=True``: framework BN layers)
``Residual``               ``Residual(input_channels, num_channels, use_1x1conv, strides)``
``resnet_block``           a stage of Residual blocks (a list)
``resnet18``               ``d2l.resnet18(num_classes, in_channels=1)`` (3x3 stem)
``resnet_chapter``         the ResNet section's network (7x7 stem, max pool)
``load_data_fashion_mnist``  ``(train_iter, test_iter)`` from a local IDX folder
``train_ch6``              SGD training with the book's printout and curves
``train_ch5``              the first edition's ``train_ch5(net, train_iter, test_iter,
                           batch_size, trainer, ctx, num_epochs)``
``evaluate_accuracy``      accuracy in prediction mode
=========================  ================================================================

See docs/d2l.md.
"""

from normlab.d2l.batchnorm import BatchNorm, batch_norm  # noqa: F401
from normlab.d2l.data import load_data_fashion_mnist, resize_bilinear  # noqa: F401
from normlab.d2l.models import (  # noqa: F401
    Residual,
    lenet_bn,
    resnet18,
    resnet_block,
    resnet_chapter,
)
from normlab.d2l.train import (  # noqa: F401
    evaluate_accuracy,
    plot_curves,
    train_ch5,
    train_ch6,
    xavier_init,
)
