"""Datasets by name: digits (bundled), fake (for tests), CIFAR-10, CIFAR-100 and SVHN (files or download)."""
from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from epbt_deap.catalog import DATASET_SPECS
from epbt_deap.data.splits import DataError, Source, check_source
from epbt_deap.errors import message_of

DEFAULT_DATA_DIR = Path.home() / ".cache" / "epbt-deap" / "data"

logger = logging.getLogger("epbt_deap")


def specified(name: str, train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor,
              test_labels: torch.Tensor) -> Source:
    """The images and labels of dataset ``name`` with its spec row's classes, validation size and augmentation."""
    spec = DATASET_SPECS[name]
    return check_source(Source(train_images, train_labels, test_images, test_labels, spec.num_classes, spec.val_size,
                               spec.augment), name)


def load_digits(data_dir: Path | None, download: bool, split_seed: int) -> Source:
    """scikit-learn's 1797 8x8 digits; a seeded 360-image test split is held out."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images * (255 / 16)).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(digits.target).long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(split_seed))
    test, train = order[:360], order[360:]
    return specified("digits", images[train], labels[train], images[test], labels[test])


def load_fake(data_dir: Path | None, download: bool, split_seed: int) -> Source:
    """320 learnable 3x16x16 images in 4 classes: a distinct colour per class plus noise."""
    generator = torch.Generator().manual_seed(split_seed)
    palette = torch.tensor([[200, 60, 60], [60, 200, 60], [60, 60, 200], [200, 200, 60]], dtype=torch.float32)
    labels = torch.randint(0, 4, (320,), generator=generator)
    noise = torch.randn(320, 3, 16, 16, generator=generator) * 40
    images = (palette[labels].view(320, 3, 1, 1) + noise).clamp(0, 255).round().to(torch.uint8)
    return specified("fake", images[:256], labels[:256], images[256:], labels[256:])


def load_cifar10(data_dir: Path | None, download: bool, split_seed: int) -> Source:
    """CIFAR-10's python batches in ``data_dir/cifar-10-batches-py``, downloaded there by torchvision if allowed."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive

    root = data_dir or DEFAULT_DATA_DIR
    batches = [f"{CIFAR10.base_folder}/{name}" for name, _ in CIFAR10.train_list + CIFAR10.test_list]

    def fetch(missing: list[str]) -> None:
        download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)

    require_files(root, batches, fetch if download else None, "CIFAR-10",
                   "point the data dir at a folder holding cifar-10-batches-py, allow download, "
                   "or use the imagefolder dataset")
    return specified("cifar10", *read_cifar_batches(root, batches[:-1]), *read_cifar_batches(root, batches[-1:]))


def read_cifar_batches(root: Path, names: list[str], label_key: bytes = b"labels",
                       dataset: str = "CIFAR-10") -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) and labels of CIFAR python batches: pickled dicts of b'data' (N, 3072) and
    ``label_key`` (CIFAR-100: b'fine_labels')."""
    data, labels = [], []
    for name in names:
        try:
            with (root / name).open("rb") as file:
                batch = pickle.load(file, encoding="bytes")
            data.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels += batch[label_key]
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
            raise DataError(f"cannot read {dataset} batch '{root / name}': {message_of(error)}") from error
    return torch.from_numpy(np.concatenate(data)), torch.tensor(labels)


def load_cifar100(data_dir: Path | None, download: bool, split_seed: int) -> Source:
    """CIFAR-100's python files in ``data_dir/cifar-100-python`` (its 100 fine labels), downloaded if allowed."""
    from torchvision.datasets import CIFAR100
    from torchvision.datasets.utils import download_and_extract_archive

    root = data_dir or DEFAULT_DATA_DIR
    train, test = (f"{CIFAR100.base_folder}/{name}" for name, _ in CIFAR100.train_list + CIFAR100.test_list)

    def fetch(missing: list[str]) -> None:
        download_and_extract_archive(CIFAR100.url, str(root), filename=CIFAR100.filename, md5=CIFAR100.tgz_md5)

    require_files(root, [train, test], fetch if download else None, "CIFAR-100",
                  "point the data dir at a folder holding cifar-100-python, or allow download")
    return specified("cifar100", *read_cifar_batches(root, [train], b"fine_labels", "CIFAR-100"),
                     *read_cifar_batches(root, [test], b"fine_labels", "CIFAR-100"))


def load_svhn(data_dir: Path | None, download: bool, split_seed: int) -> Source:
    """SVHN's ``{train,extra,test}_32x32.mat`` in ``data_dir``: train + extra to train on, downloaded if allowed."""
    from torchvision.datasets import SVHN
    from torchvision.datasets.utils import download_url

    root = data_dir or DEFAULT_DATA_DIR
    train, extra, test = (SVHN.split_list[split][1] for split in ("train", "extra", "test"))
    train_files = [train, extra]
    if not download and not (root / extra).is_file() and (root / train).is_file() and (root / test).is_file():
        logger.warning("'%s' not found and download is off: training on %s only", root / extra, train)
        train_files = [train]

    def fetch(missing: list[str]) -> None:
        for url, name, md5 in SVHN.split_list.values():
            if name in missing:
                download_url(url, str(root), name, md5)

    require_files(root, [*train_files, test], fetch if download else None, "SVHN",
                   f"put {train}, {test} and (optional) {extra} there, allow download, or use the imagefolder dataset")
    return specified("svhn", *read_svhn([root / name for name in train_files]), *read_svhn([root / test]))


def read_svhn(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) and labels 0-9 of SVHN .mat files, concatenated with a single copy."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    images, labels = [], []
    for path in paths:
        try:
            mat = loadmat(path, variable_names=("X", "y"))
            x, y = mat["X"], mat["y"]
        except (OSError, ValueError, KeyError, NotImplementedError, MatReadError) as error:
            raise DataError(f"cannot read SVHN file '{path}': {message_of(error)}") from error
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
            raise DataError(f"'{path}' is not an SVHN file: X must be uint8 (32, 32, 3, N) with N labels in y, "
                            f"got {x.dtype} {x.shape} and {y.size} labels")
        images.append(torch.from_numpy(x).permute(3, 2, 0, 1))
        labels.append(torch.from_numpy(y.reshape(-1).astype(np.int64)) % 10)  # SVHN labels digit 0 as 10
    return torch.cat(images), torch.cat(labels)


def require_files(root: Path, files: list[str], fetch: Callable[[list[str]], None] | None, dataset: str,
                   hint: str) -> None:
    """Call ``fetch`` (None: download is off) on those of ``files`` missing from ``root``; DataError if that fails."""
    missing = [name for name in files if not (root / name).is_file()]
    if not missing:
        return
    reason = "download is off"
    if fetch is not None:
        try:
            fetch(missing)
            return
        except (RuntimeError, OSError) as error:
            reason = f"download failed ({message_of(error)})"
    raise DataError(f"{dataset} not found in '{root}' (no {missing[0]}) and {reason}: {hint}")
