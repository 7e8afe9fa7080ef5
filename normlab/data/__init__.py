"""Data: offline and local-folder data sets, mini-batch loaders, preprocessing.

``load_dataset(name, seed=0, **kw) -> Dataset`` (names in ``DATASETS``), ``DataLoader``
(epoch-wise shuffling), ``RandomBatchSampler`` / ``sample_batches`` (sampling with
replacement), and ``normlab.data.preprocessing`` (``Centering``, ``Standardizer``, ``PCA``,
``ZCAWhitening``), ``normlab.data.transforms`` (batch augmentation) and ``download`` (verified,
crash-safe fetching of CIFAR-10/100, MNIST, Fashion-MNIST; runs only when called).
"""

from normlab.data import preprocessing, transforms
from normlab.data.dataset import Dataset
from normlab.data.datasets import DATASETS, load_dataset
from normlab.data.downloads import ChecksumError, DownloadError, download
from normlab.data.loader import DataLoader, RandomBatchSampler, sample_batches
from normlab.data.preprocessing import PCA, Centering, NotFittedError, Standardizer, ZCAWhitening

__all__ = [
    "load_dataset",
    "download",
    "ChecksumError",
    "DownloadError",
    "Dataset",
    "DATASETS",
    "DataLoader",
    "RandomBatchSampler",
    "sample_batches",
    "preprocessing",
    "transforms",
    "Centering",
    "Standardizer",
    "PCA",
    "ZCAWhitening",
    "NotFittedError",
]
