"""The names a config may use for datasets (one spec row each) and models.

Torch-free, so the command line offers them without importing torch. The data and model
packages register one loader or builder under each name (tests/test_names.py checks it)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is known to be before its images load; None where an image folder decides."""

    default_model: str  # trained on it unless train.model says otherwise
    num_classes: int | None  # None: the image folder's class folders
    val_size: int | None  # validation images held out by default; None: 10 % of the folder, at most 5,000
    augment: bool | None  # crop and flip by default; None: for images of 32 pixels or more


DATASET_SPECS = {
    "arrays": DatasetSpec("mlp", num_classes=None, val_size=None, augment=False),
    "cifar10": DatasetSpec("resnet32", num_classes=10, val_size=5000, augment=True),
    "cifar100": DatasetSpec("resnet32", num_classes=100, val_size=5000, augment=True),
    "digits": DatasetSpec("digits_cnn", num_classes=10, val_size=180, augment=False),
    "fake": DatasetSpec("resnet8", num_classes=4, val_size=64, augment=False),
    "fashion_mnist": DatasetSpec("resnet8", num_classes=10, val_size=5000, augment=False),
    "imagefolder": DatasetSpec("resnet32", num_classes=None, val_size=None, augment=None),
    "kmnist": DatasetSpec("resnet8", num_classes=10, val_size=5000, augment=False),
    "mnist": DatasetSpec("resnet8", num_classes=10, val_size=5000, augment=False),
    "svhn": DatasetSpec("resnet32", num_classes=10, val_size=30000, augment=False),
}
DATASETS = tuple(DATASET_SPECS)
USER_DATA = DatasetSpec("resnet8", num_classes=None, val_size=None, augment=False)  # a loader of your own
MODEL_NAMES = ("digits_cnn", "mlp", "resnet20", "resnet32", "resnet56", "resnet8", "wrn16_8")  # sorted


def class_folders(split_dir: Path) -> list[str]:
    """An image folder's classes: the names of its visible sub-folders, sorted (their label order)."""
    return sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir() and not entry.name.startswith("."))
