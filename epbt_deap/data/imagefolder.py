"""Folders of image files, ``train/<class>/*`` and ``test/<class>/*``, decoded fast on threads.

Files are decoded only when the split asks for them, so a run on a subset decodes that subset.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from epbt_deap.catalog import class_folders
from epbt_deap.data.splits import DataError, Source, check_source, default_val_size
from epbt_deap.errors import message_of

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


def load_imagefolder(data_dir: Path | None, download: bool, split_seed: int) -> Source:
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
    decoder = ImageDecoder()
    height, width = decoder.decode(train_files[:1]).shape[2:]
    return check_source(Source(ImageFiles(train_files, decoder), torch.tensor(train_labels),
                               ImageFiles(test_files, decoder), torch.tensor(test_labels), len(classes),
                               val_size=default_val_size(len(train_files)), augment=min(height, width) >= 32),
                        f"'{data_dir}'")


class ImageDecoder:
    """Decodes lists of files, checking that every image has the size of the first one it decoded."""

    def __init__(self) -> None:
        self.reference: tuple[Path, torch.Size] | None = None

    def decode(self, files: list[Path]) -> torch.Tensor:
        """``files`` as one (N, C, H, W) uint8 tensor, RGB unless all are grey (N = 0: the first file's C, H, W)."""
        if not files and self.reference is not None:  # an empty split: data.val_size 0
            first, size = self.reference
            return self.decode([first])[:0]
        images = _decode_all(files)
        if self.reference is None:
            self.reference = files[0], images[0].shape[1:]
        first, size = self.reference
        for path, image in zip(files, images):
            if image.shape[1:] != size:
                raise DataError(f"image '{path}' is {image.shape[2]}x{image.shape[1]} but '{first}' is "
                                f"{size[1]}x{size[0]}: all images must have the same size")
        return torch.stack(images)


class ImageFiles:
    """Image files that a split indexes like a tensor: ``files[indices]`` decodes just those."""

    def __init__(self, files: list[Path], decoder: ImageDecoder) -> None:
        self.files, self.decoder = files, decoder

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decoder.decode([self.files[index] for index in indices.tolist()])


def _list_images(split_dir: Path) -> tuple[list[Path], list[int], list[str]]:
    """Image files of ``split_dir/<class>/``, their labels, and the sorted class names."""
    if not split_dir.is_dir():
        raise DataError(f"'{split_dir}' not found: an image folder needs train/<class>/* and test/<class>/*")
    classes = class_folders(split_dir)
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


def _decode_all(files: list[Path]) -> list[torch.Tensor]:
    """Decode image files on a thread pool as (C, H, W) uint8 tensors, RGB unless all are grey."""
    workers = os.cpu_count() or 1
    chunk = -(-len(files) // (4 * workers))
    with warnings.catch_warnings(), ThreadPoolExecutor(workers) as pool:
        # torchvision >= 0.29 warns on every call that its image decoders are deprecated (for TorchCodec)
        warnings.filterwarnings("ignore", "The image decoding and encoding capabilities", DeprecationWarning)
        chunks = pool.map(_decode_chunk, [files[i:i + chunk] for i in range(0, len(files), chunk)])
        images = [image for decoded in chunks for image in decoded]
    if {image.shape[0] for image in images} == {1, 3}:
        images = [image.expand(3, -1, -1) for image in images]
    return images


def _decode_chunk(paths: list[Path]) -> list[torch.Tensor]:
    """Decode files as (1 or 3, H, W) uint8 tensors: one batched call if all are JPEGs, else one by one."""
    from torchvision.io import ImageReadMode, decode_jpeg  # importing torchvision takes seconds: only folders need it

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
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read image '{path}': {message_of(error)}") from error
    if not data:
        raise DataError(f"image '{path}' is an empty file")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _decode(path: Path, blob: torch.Tensor) -> torch.Tensor:
    """One encoded image as a uint8 (1, H, W) grey or (3, H, W) RGB tensor; PIL for formats torchvision lacks.
    An animated image gives its first frame; 16-bit images are scaled to 8 bits."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        try:
            image = decode_image(blob, mode=ImageReadMode.UNCHANGED)
        except RuntimeError:
            return _decode_with_pil(path)
        if image.shape[-3] not in (1, 3):  # grey + alpha, RGBA or CMYK
            image = decode_image(blob, mode=ImageReadMode.GRAY if image.shape[-3] == 2 else ImageReadMode.RGB)
        return _as_uint8(image[0] if image.dim() == 4 else image)
    except (OSError, RuntimeError, ValueError) as error:
        raise DataError(f"cannot read image '{path}': {message_of(error)}") from error


def _as_uint8(image: torch.Tensor) -> torch.Tensor:
    """An image of any unsigned integer depth (a 16-bit PNG decodes as uint16) on the 0..255 scale."""
    if image.dtype == torch.uint8:
        return image
    return (image.double() * (255 / torch.iinfo(image.dtype).max)).round().to(torch.uint8)


def _decode_with_pil(path: Path) -> torch.Tensor:
    """Decode with PIL (BMP, TIFF, PPM, ...), keeping grey images grey and converting the rest to RGB."""
    with Image.open(path) as image:
        grey = image.mode in {"1", "L", "LA", "I", "I;16", "F"}
        array = torch.from_numpy(np.array(image.convert("L" if grey else "RGB")))
    return array.unsqueeze(0) if grey else array.permute(2, 0, 1).contiguous()
