"""What a dataset becomes: a fixed, seeded train / validation / test split of uint8 tensors."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch

from epbt_deap.errors import EpbtError


class DataError(EpbtError):
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
    train_true_labels: torch.Tensor | None = None  # with label noise: the labels before flipping
    val_true_labels: torch.Tensor | None = None

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


class Images(Protocol):
    """uint8 images (N, C, H, W) in memory, or files decoded when indexed."""

    def __len__(self) -> int: ...

    def __getitem__(self, indices: torch.Tensor) -> torch.Tensor: ...


class Source(NamedTuple):
    """A dataset before the validation split, with its default val_size and augmentation."""

    train_images: Images
    train_labels: torch.Tensor
    test_images: Images
    test_labels: torch.Tensor
    num_classes: int
    val_size: int
    augment: bool


def default_val_size(train_size: int) -> int:
    """A tenth of the training samples for validation, at least 1 and at most 5,000."""
    return max(1, min(5000, round(0.1 * train_size)))


def check_source(source: Source, name: str) -> Source:
    """``source``, checked: at least 2 classes, every label in 0..n-1, and training and test samples of
    one shape and dtype (images decoded from files are checked as they decode); a DataError else."""
    count = source.num_classes
    if count < 2:
        raise DataError(f"{name}: {count} class{'' if count == 1 else 'es'}; classification needs at least 2")
    labels = torch.cat([source.train_labels, source.test_labels])
    if len(labels) and (labels.min() < 0 or labels.max() >= count):
        raise DataError(f"{name}: labels must lie in 0..{count - 1} ({count} classes), "
                        f"got {int(labels.min())}..{int(labels.max())}")
    train, test = source.train_images, source.test_images
    if isinstance(train, torch.Tensor) and isinstance(test, torch.Tensor) and (
            train.shape[1:] != test.shape[1:] or train.dtype != test.dtype):
        raise DataError(f"{name}: training and test samples differ: {train.dtype} {list(train.shape[1:])} "
                        f"against {test.dtype} {list(test.shape[1:])} each")
    return source


def split(source: Source, name: str, val_size: int | None, train_subset: int | None,
          augment: bool | None, split_seed: int, test_subset: int | None = None) -> ImageSplits:
    """Hold out a seeded validation split, optionally subsample the rest (and the test set),
    compute train statistics."""
    total = len(source.train_labels)
    val_size = source.val_size if val_size is None else val_size
    if not 0 <= val_size < total:
        raise DataError(f"val_size must be between 0 (no validation set) and {total - 1} for {name} "
                        f"({total} training images), got {val_size}")
    if train_subset is not None and not 1 <= train_subset <= total - val_size:
        raise DataError(f"train_subset must be between 1 and {total - val_size} for {name} "
                        f"({total} training images, {val_size} for validation), got {train_subset}")
    tests = len(source.test_labels)
    if test_subset is not None and not 1 <= test_subset <= tests:
        raise DataError(f"test_subset must be between 1 and {tests} for {name}, got {test_subset}")
    generator = torch.Generator().manual_seed(split_seed)
    order = torch.randperm(total, generator=generator)
    val, train = order[:val_size], order[val_size:][:train_subset]
    test = torch.randperm(tests, generator=generator)[:test_subset].sort().values
    if augment and isinstance(source.train_images, torch.Tensor) and source.train_images.is_floating_point():
        raise DataError(f"data.augment crops and flips images; {name} holds features")
    train_images, val_images, test_images = common_channels(
        source.train_images[train], source.train_images[val], source.test_images[test])
    mean, std = channel_stats(train_images)
    return ImageSplits(
        train_images=train_images, train_labels=source.train_labels[train],
        val_images=val_images, val_labels=source.train_labels[val],
        test_images=test_images, test_labels=source.test_labels[test],
        mean=mean, std=std, num_classes=source.num_classes,
        augment=source.augment if augment is None else augment, name=name,
    )


def common_channels(*parts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Grey parts as RGB when another part is RGB (parts decoded apart may differ)."""
    if {part.shape[1] for part in parts} != {1, 3}:
        return parts
    return tuple(part.expand(-1, 3, -1, -1).contiguous() if part.shape[1] == 1 else part for part in parts)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images in [0, 1] units, exact, from 256-bin histograms; a
    constant channel gets std 1 (normalising it by 0 would make every input nan). Float features
    (N, D, 1, 1) get their own mean and std per feature."""
    if images.is_floating_point():
        values64 = images.double().transpose(0, 1).reshape(images.shape[1], -1)
        mean, std = values64.mean(1), values64.std(1, unbiased=False)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return tuple(mean.tolist()), tuple(std.tolist())
    counts = torch.stack([torch.bincount(channel.reshape(-1), minlength=256) for channel in images.unbind(1)])
    values = torch.arange(256, dtype=torch.float64) / 255
    counts = counts.double() / counts.sum(1, keepdim=True)
    mean = counts @ values
    std = (counts @ values**2 - mean**2).clamp_min(0).sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple(mean.tolist()), tuple(std.tolist())
