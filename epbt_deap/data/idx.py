"""MNIST, Fashion-MNIST and KMNIST: their idx files read by our own reader (gzipped or not).

The files sit where torchvision puts them, ``data_dir/<MNIST|FashionMNIST|KMNIST>/raw/``,
and are downloaded there through torchvision where the network allows. The reader is our
own because torchvision's classes check each file's md5, which files made for tests fail.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from epbt_deap.data.sources import DEFAULT_DATA_DIR, require_files, specified
from epbt_deap.data.splits import DataError, Source
from epbt_deap.errors import message_of

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IDX_UBYTE = 0x08  # the idx type code of unsigned bytes


def read_idx(path: Path) -> np.ndarray:
    """The uint8 array of an idx file (``path`` or ``path.gz``): magic 0 0 8 ndim, big-endian sizes, data."""
    candidates = [path, path.with_name(path.name + ".gz")]
    existing = next((candidate for candidate in candidates if candidate.is_file()), path)
    try:
        raw = gzip.decompress(existing.read_bytes()) if existing.suffix == ".gz" else existing.read_bytes()
        zero, kind, dims = raw[:2], raw[2], raw[3]
        shape = tuple(int(size) for size in np.frombuffer(raw[4:4 + 4 * dims], dtype=">u4"))
        if zero != b"\0\0" or kind != IDX_UBYTE or len(raw) != 4 + 4 * dims + int(np.prod(shape)):
            raise ValueError(f"not an idx file of unsigned bytes (magic {raw[:4].hex()}, {len(raw)} bytes)")
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    except (OSError, ValueError, IndexError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"cannot read '{existing}': {message_of(error)}") from error


def load_idx_dataset(name: str, folder: str, mirrors: list[str], data_dir: Path | None, download: bool) -> Source:
    """The four idx files of ``folder`` (torchvision's class name) under ``data_dir``, fetched if allowed."""
    from torchvision.datasets.utils import download_and_extract_archive

    raw = (data_dir or DEFAULT_DATA_DIR) / folder / "raw"
    present = [file for file in FILES if (raw / file).is_file() or (raw / f"{file}.gz").is_file()]

    def fetch(missing: list[str]) -> None:
        for file in missing:
            download_and_extract_archive(f"{mirrors[0]}{file}.gz", str(raw), filename=f"{file}.gz")

    require_files(raw, [file for file in FILES if file not in present], fetch if download else None, folder,
                  f"put {', '.join(FILES)} (or their .gz) in '{raw}', or allow download")
    train_images, train_labels, test_images, test_labels = (read_idx(raw / file) for file in FILES)
    for images, labels in ((train_images, train_labels), (test_images, test_labels)):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{name}: images must be N x H x W with N labels, got {images.shape} and {labels.shape}")
    return specified(name, torch.from_numpy(train_images.copy()).unsqueeze(1),
                     torch.from_numpy(train_labels.astype(np.int64)), torch.from_numpy(test_images.copy()).unsqueeze(1),
                     torch.from_numpy(test_labels.astype(np.int64)))


def load_mnist(data_dir: Path | None, download: bool, split_seed: int) -> Source:
    from torchvision.datasets import MNIST

    return load_idx_dataset("mnist", "MNIST", MNIST.mirrors, data_dir, download)


def load_fashion_mnist(data_dir: Path | None, download: bool, split_seed: int) -> Source:
    from torchvision.datasets import FashionMNIST

    return load_idx_dataset("fashion_mnist", "FashionMNIST", FashionMNIST.mirrors, data_dir, download)


def load_kmnist(data_dir: Path | None, download: bool, split_seed: int) -> Source:
    from torchvision.datasets import KMNIST

    return load_idx_dataset("kmnist", "KMNIST", KMNIST.mirrors, data_dir, download)
