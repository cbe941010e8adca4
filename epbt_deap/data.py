"""Image-classification datasets loaded once into uint8 tensors, plus on-device batch transforms.

``load_splits`` returns fixed, seeded train/validation/test splits as CPU tensors; training moves
them to its device and calls ``normalize`` and ``random_crop_flip`` per batch there.
"""
from __future__ import annotations

import logging
import os
import pickle
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

DATASET_NAMES = ("cifar10", "digits", "fake", "imagefolder", "svhn")
DEFAULT_DATA_DIR = Path.home() / ".cache" / "epbt-deap" / "data"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})

logger = logging.getLogger("epbt_deap")


class DataError(ValueError):
    """A dataset problem the user can fix; the message is one line."""


@dataclass(frozen=True, eq=False)
class ImageSplits:
    """Train/validation/test images (uint8, N x C x H x W) and int64 labels, with train statistics."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    augment: bool
    name: str = "images"

    @property
    def in_channels(self) -> int:
        return self.train_images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[2:])

    def describe(self) -> str:
        """One line for logs, e.g. ``digits: 1257 train / 180 val / 360 test, 1x8x8, 10 classes``."""
        height, width = self.image_size
        return (f"{self.name}: {len(self.train_labels)} train / {len(self.val_labels)} val / "
                f"{len(self.test_labels)} test, {self.in_channels}x{height}x{width}, {self.num_classes} classes")


class _Source(NamedTuple):
    """A dataset before the validation split, with its default val_size and augmentation."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    val_size: int
    augment: bool


def load_splits(name: str, data_dir: str | Path | None = None, *, download: bool = False,
                val_size: int | None = None, train_subset: int | None = None,
                augment: bool | None = None, split_seed: int = 0) -> ImageSplits:
    """Load dataset ``name`` and split its training set into train and validation (seeded)."""
    if name not in _LOADERS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)}")
    start = time.perf_counter()
    source = _LOADERS[name](None if data_dir is None else Path(data_dir).expanduser(), download, split_seed)
    splits = _split(source, name, val_size, train_subset, augment, split_seed)
    logger.info("loaded %s data in %.1f s", name, time.perf_counter() - start)
    return splits


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 ``(x / 255 - mean) / std`` with per-channel (C,) mean and std."""
    return images.float().sub_(mean.view(-1, 1, 1) * 255).div_(std.view(-1, 1, 1) * 255)


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Per image: zero-pad by ``padding``, crop back to H x W at a random offset, flip with p = 1/2."""
    batch, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding,) * 4)
    shift_y, shift_x = torch.randint(0, 2 * padding + 1, (2, batch, 1, 1, 1), generator=generator, device=device)
    flip = torch.randint(0, 2, (batch, 1, 1, 1), generator=generator, device=device).bool()
    rows = shift_y + torch.arange(height, device=device).view(1, 1, height, 1)
    cropped = padded.gather(2, rows.expand(batch, channels, height, width + 2 * padding))
    cols = torch.arange(width, device=device).view(1, 1, 1, width)
    cols = torch.where(flip, width - 1 - cols, cols) + shift_x
    return cropped.gather(3, cols.expand(batch, channels, height, width))


def _split(source: _Source, name: str, val_size: int | None, train_subset: int | None,
           augment: bool | None, split_seed: int) -> ImageSplits:
    """Hold out a seeded validation split, optionally subsample the rest, compute train statistics."""
    total = len(source.train_labels)
    val_size = source.val_size if val_size is None else val_size
    if not 1 <= val_size < total:
        raise DataError(f"val_size must be between 1 and {total - 1} for {name} ({total} training images), "
                        f"got {val_size}")
    if train_subset is not None and not 1 <= train_subset <= total - val_size:
        raise DataError(f"train_subset must be between 1 and {total - val_size} for {name} "
                        f"({total} training images, {val_size} for validation), got {train_subset}")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(split_seed))
    val, train = order[:val_size], order[val_size:][:train_subset]
    train_images = source.train_images[train]
    mean, std = _channel_stats(train_images)
    return ImageSplits(
        train_images=train_images, train_labels=source.train_labels[train],
        val_images=source.train_images[val], val_labels=source.train_labels[val],
        test_images=source.test_images.contiguous(), test_labels=source.test_labels.contiguous(),
        mean=mean, std=std, num_classes=source.num_classes,
        augment=source.augment if augment is None else augment, name=name,
    )


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images in [0, 1] units, exact, from 256-bin histograms."""
    counts = torch.stack([torch.bincount(channel.reshape(-1), minlength=256) for channel in images.unbind(1)])
    values = torch.arange(256, dtype=torch.float64) / 255
    counts = counts.double() / counts.sum(1, keepdim=True)
    mean = counts @ values
    std = (counts @ values**2 - mean**2).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def _load_digits(data_dir: Path | None, download: bool, split_seed: int) -> _Source:
    """scikit-learn's 1797 8x8 digits; a seeded 360-image test split is held out."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images * (255 / 16)).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(digits.target).long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(split_seed))
    test, train = order[:360], order[360:]
    return _Source(images[train], labels[train], images[test], labels[test], 10, val_size=180, augment=False)


def _load_fake(data_dir: Path | None, download: bool, split_seed: int) -> _Source:
    """320 learnable 3x16x16 images in 4 classes: a distinct colour per class plus noise."""
    generator = torch.Generator().manual_seed(split_seed)
    palette = torch.tensor([[200, 60, 60], [60, 200, 60], [60, 60, 200], [200, 200, 60]], dtype=torch.float32)
    labels = torch.randint(0, 4, (320,), generator=generator)
    noise = torch.randn(320, 3, 16, 16, generator=generator) * 40
    images = (palette[labels].view(320, 3, 1, 1) + noise).clamp(0, 255).round().to(torch.uint8)
    return _Source(images[:256], labels[:256], images[256:], labels[256:], 4, val_size=64, augment=False)


def _load_cifar10(data_dir: Path | None, download: bool, split_seed: int) -> _Source:
    """CIFAR-10's python batches in ``data_dir/cifar-10-batches-py``, downloaded there by torchvision if allowed."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive

    root = data_dir or DEFAULT_DATA_DIR
    batches = [f"{CIFAR10.base_folder}/{name}" for name, _ in CIFAR10.train_list + CIFAR10.test_list]

    def fetch(missing: list[str]) -> None:
        download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)

    _require_files(root, batches, fetch if download else None, "CIFAR-10",
                   "point the data dir at a folder holding cifar-10-batches-py, allow download, "
                   "or use the imagefolder dataset")
    return _Source(*_read_cifar_batches(root, batches[:-1]), *_read_cifar_batches(root, batches[-1:]), 10,
                   val_size=5000, augment=True)


def _read_cifar_batches(root: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) and labels of CIFAR python batches: pickled dicts of b'data' (N, 3072) and b'labels'."""
    data, labels = [], []
    for name in names:
        try:
            with (root / name).open("rb") as file:
                batch = pickle.load(file, encoding="bytes")
            data.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels += batch[b"labels"]
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
            raise DataError(f"cannot read CIFAR-10 batch '{root / name}': {_one_line(error)}") from error
    return torch.from_numpy(np.concatenate(data)), torch.tensor(labels)


def _load_svhn(data_dir: Path | None, download: bool, split_seed: int) -> _Source:
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

    _require_files(root, [*train_files, test], fetch if download else None, "SVHN",
                   f"put {train}, {test} and (optional) {extra} there, allow download, or use the imagefolder dataset")
    return _Source(*_read_svhn([root / name for name in train_files]), *_read_svhn([root / test]), 10,
                   val_size=30000, augment=False)


def _read_svhn(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) and labels 0-9 of SVHN .mat files, concatenated with a single copy."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    images, labels = [], []
    for path in paths:
        try:
            mat = loadmat(path, variable_names=("X", "y"))
            x, y = mat["X"], mat["y"]
        except (OSError, ValueError, KeyError, NotImplementedError, MatReadError) as error:
            raise DataError(f"cannot read SVHN file '{path}': {_one_line(error)}") from error
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
            raise DataError(f"'{path}' is not an SVHN file: X must be uint8 (32, 32, 3, N) with N labels in y, "
                            f"got {x.dtype} {x.shape} and {y.size} labels")
        images.append(torch.from_numpy(x).permute(3, 2, 0, 1))
        labels.append(torch.from_numpy(y.reshape(-1).astype(np.int64)) % 10)  # SVHN labels digit 0 as 10
    return torch.cat(images), torch.cat(labels)


def _require_files(root: Path, files: list[str], fetch: Callable[[list[str]], None] | None, dataset: str,
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
            reason = f"download failed ({_one_line(error)})"
    raise DataError(f"{dataset} not found in '{root}' (no {missing[0]}) and {reason}: {hint}")


def _load_imagefolder(data_dir: Path | None, download: bool, split_seed: int) -> _Source:
    """``data_dir/{train,test}/<class>/<image>``; classes are the sorted folder names."""
    if data_dir is None:
        raise DataError("the imagefolder dataset needs a data dir holding train/<class>/* and test/<class>/*")
    if not data_dir.is_dir():
        raise DataError(f"image folder '{data_dir}' not found")
    train_files, train_labels, classes = _list_images(data_dir / "train")
    test_files, test_labels, test_classes = _list_images(data_dir / "test")
    if test_classes != classes:
        raise DataError(f"class folders differ between '{data_dir / 'train'}' and '{data_dir / 'test'}': "
                        f"only in train: {sorted(set(classes) - set(test_classes))}, "
                        f"only in test: {sorted(set(test_classes) - set(classes))}")
    images = _decode_all(train_files + test_files)
    train_images, test_images = images[:len(train_files)], images[len(train_files):]
    channels, height, width = images.shape[1:]
    return _Source(train_images, torch.tensor(train_labels), test_images, torch.tensor(test_labels), len(classes),
                   val_size=max(1, min(5000, round(0.1 * len(train_files)))),
                   augment=channels == 3 and min(height, width) >= 32)


def _list_images(split_dir: Path) -> tuple[list[Path], list[int], list[str]]:
    """Image files of ``split_dir/<class>/``, their labels, and the sorted class names."""
    if not split_dir.is_dir():
        raise DataError(f"'{split_dir}' not found: an image folder needs train/<class>/* and test/<class>/*")
    classes = sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise DataError(f"no class folders in '{split_dir}'")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        class_files = [split_dir / name / file for file in sorted(
            entry.name for entry in os.scandir(split_dir / name)
            if entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES)]
        if not class_files:
            raise DataError(f"no image files in '{split_dir / name}'")
        files += class_files
        labels += [label] * len(class_files)
    return files, labels, classes


def _decode_all(files: list[Path]) -> torch.Tensor:
    """Decode image files on a thread pool into one (N, C, H, W) uint8 tensor, RGB unless all are grey."""
    workers = os.cpu_count() or 1
    chunk = -(-len(files) // (4 * workers))
    with warnings.catch_warnings(), ThreadPoolExecutor(workers) as pool:
        # torchvision >= 0.29 warns on every call that its image decoders are deprecated (for TorchCodec)
        warnings.filterwarnings("ignore", "The image decoding and encoding capabilities", DeprecationWarning)
        chunks = pool.map(_decode_chunk, [files[i:i + chunk] for i in range(0, len(files), chunk)])
        images = [image for decoded in chunks for image in decoded]
    if {image.shape[0] for image in images} == {1, 3}:
        images = [image.expand(3, -1, -1) for image in images]
    size = images[0].shape[1:]
    for path, image in zip(files, images):
        if image.shape[1:] != size:
            raise DataError(f"image '{path}' is {image.shape[2]}x{image.shape[1]} but '{files[0]}' is "
                            f"{size[1]}x{size[0]}: all images must have the same size")
    return torch.stack(images)


def _decode_chunk(paths: list[Path]) -> list[torch.Tensor]:
    """Decode files as (1 or 3, H, W) uint8 tensors: one batched call if all are JPEGs, else one by one."""
    blobs = [_read(path) for path in paths]
    try:
        images = decode_jpeg(blobs, mode=ImageReadMode.UNCHANGED)
    except RuntimeError:  # some file is not a JPEG, or is broken
        return [_decode(path, blob) for path, blob in zip(paths, blobs)]
    return [image if image.shape[0] in (1, 3) else _decode(path, blob)
            for path, blob, image in zip(paths, blobs, images)]


def _read(path: Path) -> torch.Tensor:
    """A file's bytes as a uint8 tensor."""
    try:
        return torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
    except OSError as error:
        raise DataError(f"cannot read image '{path}': {_one_line(error)}") from error


def _decode(path: Path, blob: torch.Tensor) -> torch.Tensor:
    """One encoded image as a uint8 (1, H, W) grey or (3, H, W) RGB tensor; PIL for formats torchvision lacks."""
    try:
        try:
            image = decode_image(blob, mode=ImageReadMode.UNCHANGED)
        except RuntimeError:
            return _decode_with_pil(path)
        if image.shape[0] not in (1, 3):  # grey + alpha, RGBA or CMYK
            image = decode_image(blob, mode=ImageReadMode.GRAY if image.shape[0] == 2 else ImageReadMode.RGB)
        return image
    except (OSError, RuntimeError, ValueError) as error:
        raise DataError(f"cannot read image '{path}': {_one_line(error)}") from error


def _decode_with_pil(path: Path) -> torch.Tensor:
    """Decode with PIL (BMP, TIFF, PPM, ...), keeping grey images grey and converting the rest to RGB."""
    with Image.open(path) as image:
        grey = image.mode in {"1", "L", "LA", "I", "I;16", "F"}
        array = torch.from_numpy(np.array(image.convert("L" if grey else "RGB")))
    return array.unsqueeze(0) if grey else array.permute(2, 0, 1).contiguous()


def _one_line(error: BaseException) -> str:
    """An exception's message collapsed onto one line."""
    return " ".join(str(error).split()) or type(error).__name__


_LOADERS: dict[str, Callable[[Path | None, bool, int], _Source]] = {
    "cifar10": _load_cifar10, "digits": _load_digits, "fake": _load_fake, "imagefolder": _load_imagefolder,
    "svhn": _load_svhn,
}
