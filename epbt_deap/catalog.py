"""The names a config may use for datasets (with their class counts) and models.

Torch-free, so the command line offers them without importing torch. The data and model
packages register one loader or builder under each name (tests/test_names.py checks it)."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODELS = {  # dataset -> the model trained on it unless train.model says otherwise
    "cifar10": "resnet32",
    "digits": "digits_cnn",
    "fake": "resnet8",
    "imagefolder": "resnet32",
    "svhn": "resnet32",
}
DATASETS = tuple(DEFAULT_MODELS)
CLASS_COUNTS = {"cifar10": 10, "digits": 10, "fake": 4, "svhn": 10}  # imagefolder: its class folders
MODEL_NAMES = ("digits_cnn", "resnet20", "resnet32", "resnet56", "resnet8", "wrn16_8")  # sorted


def class_folders(split_dir: Path) -> list[str]:
    """An image folder's classes: the names of its visible sub-folders, sorted (their label order)."""
    return sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir() and not entry.name.startswith("."))
