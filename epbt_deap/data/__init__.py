"""Image-classification datasets loaded once into uint8 tensors, plus on-device batch transforms.

``load_splits`` returns fixed, seeded train/validation/test splits as CPU tensors; training moves
them to its device and calls ``normalize`` and ``CropFlip`` per batch there.
"""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path

from epbt_deap.catalog import DATASETS
from epbt_deap.data.idx import load_fashion_mnist, load_kmnist, load_mnist
from epbt_deap.data.imagefolder import load_imagefolder
from epbt_deap.data.sources import load_cifar10, load_cifar100, load_digits, load_fake, load_svhn
from epbt_deap.data.splits import DataError, ImageSplits, Source, split
from epbt_deap.data.transforms import CropFlip, normalize, random_crop_flip
from epbt_deap.data.user import load_arrays, load_by_import_path

__all__ = ["CropFlip", "DataError", "ImageSplits", "load_splits", "normalize", "random_crop_flip"]

LOADERS: dict[str, Callable[[Path | None, bool, int], Source]] = {
    "arrays": load_arrays, "cifar10": load_cifar10, "cifar100": load_cifar100, "digits": load_digits, "fake": load_fake,
    "fashion_mnist": load_fashion_mnist, "imagefolder": load_imagefolder, "kmnist": load_kmnist, "mnist": load_mnist,
    "svhn": load_svhn,
}

logger = logging.getLogger("epbt_deap")


def load_splits(name: str, data_dir: str | Path | None = None, *, download: bool = False,
                val_size: int | None = None, train_subset: int | None = None,
                augment: bool | None = None, split_seed: int = 0, test_subset: int | None = None) -> ImageSplits:
    """Load dataset ``name`` and split its training set into train and validation (seeded).

    ``train_subset`` and ``test_subset`` keep that many (seeded) images, for CPU-scale runs.
    """
    if name not in LOADERS and ":" not in name:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}, or give an import path, "
                        "module:loader")
    start = time.perf_counter()
    loader = LOADERS.get(name) or functools.partial(load_by_import_path, name)
    source = loader(None if data_dir is None else Path(data_dir).expanduser(), download, split_seed)
    splits = split(source, name, val_size, train_subset, augment, split_seed, test_subset)
    logger.info("loaded %s data in %.1f s", name, time.perf_counter() - start)
    return splits
