"""Tests for epbt_deap.data: dataset loading, seeded splits and on-device batch transforms."""
from __future__ import annotations

import logging
import pickle
import shutil
from pathlib import Path
from typing import Iterable

import pytest
import torch
import torchvision.datasets.utils
from PIL import Image
from scipy.io import savemat

from epbt_deap.catalog import DATASETS
from epbt_deap.data import DataError, ImageSplits, load_splits, normalize, random_crop_flip
from tests.helpers import run_without_importing

COLOURS = {"zebra": (250, 10, 10), "apple": (10, 250, 10), "mango": (10, 10, 250)}  # sorted: apple, mango, zebra


def rows(images: torch.Tensor) -> set[bytes]:
    return {image.numpy().tobytes() for image in images}


def write_image(path: Path, colour: tuple[int, ...], size: int = 8) -> None:
    """A uniform size x size image; grey, grey + alpha, RGB or RGBA by the length of ``colour``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new({1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[len(colour)], (size, size), colour).save(path)


def write_folder(root: Path, suffixes: tuple[str, ...] = (".png", ".jpg", ".bmp"), per_class: int = 6) -> Path:
    for split in ("train", "test"):
        for name, colour in COLOURS.items():
            for i in range(per_class):
                write_image(root / split / name / f"{i:02d}{suffixes[i % len(suffixes)]}", colour)
    return root


def write_svhn(path: Path, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An SVHN .mat file (X: 32x32x3xN uint8, y: Nx1 with digit 0 as 10); returns its (N, 3, 32, 32) images, labels."""
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(count) % 10
    savemat(path, {"X": images.permute(2, 3, 1, 0).numpy(), "y": labels.where(labels > 0, 10).view(-1, 1).numpy()})
    return images, labels


def write_cifar(root: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A tiny cifar-10-batches-py folder (4 images per train batch, 6 test images); returns each batch's data."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    generator = torch.Generator().manual_seed(0)
    batches = {}
    for name, count in [*((f"data_batch_{i}", 4) for i in range(1, 6)), ("test_batch", 6)]:
        data = torch.randint(0, 256, (count, 3072), dtype=torch.uint8, generator=generator)
        labels = torch.randint(0, 10, (count,), generator=generator)
        (folder / name).write_bytes(pickle.dumps({b"data": data.numpy(), b"labels": labels.tolist()}))
        batches[name] = data.view(-1, 3, 32, 32), labels
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"class%d" % i for i in range(10)]}))
    return batches


def assert_same_labelled_images(images: torch.Tensor, labels: torch.Tensor,
                                expected: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``images`` with ``labels`` are the (distinct) images of ``expected``, each with its label, in any order."""
    wanted = {image.numpy().tobytes(): int(label) for batch in expected for image, label in zip(*batch)}
    assert {image.numpy().tobytes(): int(label) for image, label in zip(images, labels)} == wanted
    assert len(images) == len(wanted)


@pytest.fixture
def svhn_dir(tmp_path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Tiny SVHN files in tmp_path: 40 train, 20 extra and 20 test images."""
    return {split: write_svhn(tmp_path / f"{split}_32x32.mat", count, seed)
            for seed, (split, count) in enumerate({"train": 40, "extra": 20, "test": 20}.items())}


@pytest.fixture(scope="module")
def digits() -> ImageSplits:
    return load_splits("digits")


def test_digits_sizes_and_dtypes(digits: ImageSplits) -> None:
    assert (len(digits.train_labels), len(digits.val_labels), len(digits.test_labels)) == (1257, 180, 360)
    for images, labels in ((digits.train_images, digits.train_labels), (digits.val_images, digits.val_labels),
                           (digits.test_images, digits.test_labels)):
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert images.shape[1:] == (1, 8, 8) and images.is_contiguous() and images.device.type == "cpu"
    assert digits.train_images.max() == 255
    assert (digits.num_classes, digits.in_channels, digits.image_size, digits.augment) == (10, 1, (8, 8), False)
    assert len(digits.mean) == len(digits.std) == 1 and 0 < digits.mean[0] < 1
    assert digits.describe() == "digits: 1257 train / 180 val / 360 test, 1x8x8, 10 classes"


def test_split_is_deterministic_per_seed(digits: ImageSplits) -> None:
    again, other = load_splits("digits"), load_splits("digits", split_seed=1)
    assert torch.equal(again.val_images, digits.val_images) and torch.equal(again.train_labels, digits.train_labels)
    assert not torch.equal(other.val_images, digits.val_images)
    assert not torch.equal(other.test_images, digits.test_images)


def test_splits_are_disjoint(digits: ImageSplits) -> None:  # the 1797 digit images are all distinct
    train, val, test = rows(digits.train_images), rows(digits.val_images), rows(digits.test_images)
    assert len(train | val | test) == 1797
    assert not train & val and not train & test and not val & test


def test_train_subset_keeps_validation(digits: ImageSplits) -> None:
    subset = load_splits("digits", train_subset=100)
    assert len(subset.train_labels) == 100
    assert rows(subset.train_images) <= rows(digits.train_images)
    assert torch.equal(subset.val_images, digits.val_images)


def test_test_subset_is_a_seeded_part_of_the_test_set(digits: ImageSplits) -> None:
    subset = load_splits("digits", test_subset=50)
    assert len(subset.test_labels) == 50
    assert rows(subset.test_images) <= rows(digits.test_images)
    assert torch.equal(subset.train_images, digits.train_images)  # training data unchanged
    assert torch.equal(load_splits("digits", test_subset=50).test_images, subset.test_images)


def test_overrides() -> None:
    splits = load_splits("digits", val_size=10, augment=True)
    assert (len(splits.train_labels), len(splits.val_labels), splits.augment) == (1427, 10, True)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "digits", "val_size": -1}, r"val_size must be between 0 \(no validation set\) and 1436 .*got -1$"),
    ({"name": "digits", "val_size": 1437}, r"val_size must be between 0 .* and 1436 .*got 1437$"),
    ({"name": "digits", "train_subset": 0}, r"train_subset must be between 1 and 1257 .*got 0$"),
    ({"name": "digits", "train_subset": 1258}, r"train_subset must be between 1 and 1257 .*got 1258$"),
    ({"name": "digits", "test_subset": 361}, r"test_subset must be between 1 and 360 for digits, got 361$"),
    ({"name": "mnist", "data_dir": "/nonexistent/epbt-mnist"}, r"MNIST not found in .* and download is off"),
    ({"name": "imagefolder"}, r"the imagefolder dataset needs a data dir holding train/<class>/\*"),
    ({"name": "imagefolder", "data_dir": "/nonexistent/epbt-images"}, r"image folder '/nonexistent/epbt-images' not found"),
])
def test_bad_arguments_raise_one_line_data_error(kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message) as error:
        load_splits(**kwargs)
    assert "\n" not in str(error.value)


def test_unknown_name_lists_datasets() -> None:
    with pytest.raises(DataError, match=", ".join(DATASETS)):
        load_splits("emnist")


def test_cifar10_missing_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="CIFAR-10 not found") as error:
        load_splits("cifar10", tmp_path, download=False)
    assert str(tmp_path) in str(error.value) and "\n" not in str(error.value)


def test_cifar10_reads_batches_folder_offline(tmp_path: Path) -> None:
    batches = write_cifar(tmp_path)
    splits = load_splits("cifar10", tmp_path, download=False, val_size=5)
    assert (len(splits.train_labels), len(splits.val_labels), len(splits.test_labels)) == (15, 5, 6)
    assert (splits.in_channels, splits.image_size, splits.num_classes, splits.augment) == (3, (32, 32), 10, True)
    assert splits.train_images.dtype == torch.uint8 and splits.train_labels.dtype == torch.int64
    test_images, test_labels = batches.pop("test_batch")
    assert torch.equal(splits.test_images, test_images) and torch.equal(splits.test_labels, test_labels)
    assert_same_labelled_images(torch.cat([splits.train_images, splits.val_images]),
                                torch.cat([splits.train_labels, splits.val_labels]), batches.values())
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"truncated")
    with pytest.raises(DataError, match="data_batch_3") as error:
        load_splits("cifar10", tmp_path, download=False, val_size=5)
    assert "\n" not in str(error.value)


def test_svhn_trains_on_train_and_extra(tmp_path: Path, svhn_dir: dict) -> None:
    splits = load_splits("svhn", tmp_path, val_size=10)
    assert (len(splits.train_labels), len(splits.val_labels), len(splits.test_labels)) == (50, 10, 20)
    assert (splits.in_channels, splits.image_size, splits.num_classes, splits.augment) == (3, (32, 32), 10, False)
    assert torch.equal(splits.test_images, svhn_dir["test"][0]) and torch.equal(splits.test_labels, svhn_dir["test"][1])
    assert 0 in splits.test_labels.tolist() and splits.test_labels.max() == 9  # label 10 is digit 0
    assert_same_labelled_images(torch.cat([splits.train_images, splits.val_images]),
                                torch.cat([splits.train_labels, splits.val_labels]),
                                [svhn_dir["train"], svhn_dir["extra"]])


@pytest.mark.usefixtures("svhn_dir")
def test_svhn_default_val_size_is_30000(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="got 30000"):
        load_splits("svhn", tmp_path)


@pytest.mark.usefixtures("svhn_dir")
def test_svhn_without_extra_warns_and_trains_on_train_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "extra_32x32.mat").unlink()
    with caplog.at_level(logging.WARNING, logger="epbt_deap"):
        splits = load_splits("svhn", tmp_path, download=False, val_size=10)
    assert len(splits.train_labels) + len(splits.val_labels) == 40
    assert "extra_32x32.mat" in caplog.text


@pytest.mark.usefixtures("svhn_dir")
@pytest.mark.parametrize("missing", ["train", "test"])
def test_svhn_missing_files_without_download(tmp_path: Path, missing: str) -> None:
    (tmp_path / f"{missing}_32x32.mat").unlink()
    with pytest.raises(DataError, match=f"SVHN not found .* {missing}_32x32.mat.* download is off") as error:
        load_splits("svhn", tmp_path, download=False)
    assert str(tmp_path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.usefixtures("svhn_dir")
def test_svhn_downloads_only_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "extra_32x32.mat").unlink()
    fetched = []

    def download_url(url: str, root: str, filename: str, md5: str) -> None:
        fetched.append(filename)
        write_svhn(Path(root) / filename, 30, seed=7)

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", download_url)
    splits = load_splits("svhn", tmp_path, download=True, val_size=10)
    assert fetched == ["extra_32x32.mat"] and len(splits.train_labels) == 60


@pytest.mark.parametrize(("name", "function"), [("cifar10", "download_and_extract_archive"), ("svhn", "download_url")])
def test_failed_download_is_one_line_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                                function: str) -> None:
    def offline(*args, **kwargs) -> None:
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.datasets.utils, function, offline)
    with pytest.raises(DataError, match="download failed .*name resolution") as error:
        load_splits(name, tmp_path, download=True)
    assert "\n" not in str(error.value)


@pytest.mark.usefixtures("svhn_dir")
def test_svhn_bad_file_is_data_error(tmp_path: Path) -> None:
    savemat(tmp_path / "test_32x32.mat", {"X": torch.zeros(32, 32, 5).byte().numpy(), "y": [[1]] * 5})
    with pytest.raises(DataError, match="test_32x32.mat.* not an SVHN file"):
        load_splits("svhn", tmp_path, val_size=10)
    (tmp_path / "test_32x32.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError, match="cannot read SVHN file"):
        load_splits("svhn", tmp_path, val_size=10)


def test_fake_is_small_and_learnable() -> None:
    splits = load_splits("fake")
    assert (len(splits.train_labels), len(splits.val_labels), len(splits.test_labels)) == (192, 64, 64)
    assert (splits.in_channels, splits.image_size, splits.num_classes, splits.augment) == (3, (16, 16), 4, False)
    means = torch.stack([splits.train_images[splits.train_labels == c].float().mean((0, 2, 3)) for c in range(4)])
    nearest = torch.cdist(splits.test_images.float().mean((2, 3)), means).argmin(1)
    assert (nearest == splits.test_labels).float().mean() > 0.9
    assert torch.equal(load_splits("fake").train_images, splits.train_images)


@pytest.mark.parametrize("suffixes", [(".png", ".jpg", ".bmp"), (".jpg",)])  # mixed, or all JPEG (batched)
def test_imagefolder_loads_sorted_classes(tmp_path: Path, suffixes: tuple[str, ...]) -> None:
    splits = load_splits("imagefolder", write_folder(tmp_path, suffixes))
    assert (len(splits.train_labels), len(splits.val_labels), len(splits.test_labels)) == (16, 2, 18)
    assert (splits.in_channels, splits.image_size, splits.num_classes, splits.augment) == (3, (8, 8), 3, False)
    colours = torch.tensor([COLOURS[name] for name in sorted(COLOURS)], dtype=torch.float32)
    for images, labels in ((splits.train_images, splits.train_labels), (splits.test_images, splits.test_labels)):
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert torch.allclose(images.float().mean((2, 3)), colours[labels], atol=8)  # JPEG is lossy
    assert sorted(splits.test_labels.tolist()) == [0] * 6 + [1] * 6 + [2] * 6


def test_imagefolder_without_validation_images(tmp_path: Path) -> None:
    splits = load_splits("imagefolder", write_folder(tmp_path, (".jpg",)), val_size=0)
    assert (len(splits.train_labels), len(splits.val_labels)) == (18, 0)
    assert splits.val_images.shape == (0, 3, 8, 8) and splits.val_images.dtype == torch.uint8


def test_imagefolder_grey_stays_grey_and_mixed_becomes_rgb(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for label in ("a", "b"):
            for i in range(4):
                write_image(tmp_path / split / label / f"{i}.png", (40 + 50 * i,))
    write_image(tmp_path / "train" / "a" / "alpha.png", (90, 128))
    grey = load_splits("imagefolder", tmp_path)
    assert grey.in_channels == 1 and len(grey.mean) == 1
    assert torch.cat([grey.train_images, grey.val_images]).unique().tolist() == [40, 90, 140, 190]
    write_image(tmp_path / "test" / "a" / "rgba.png", (1, 2, 3, 128))
    mixed = load_splits("imagefolder", tmp_path)
    assert mixed.in_channels == 3
    assert torch.equal(mixed.train_images[:, 0], mixed.train_images[:, 2])
    assert mixed.test_images.flatten(2)[:, :, 0].tolist().count([1, 2, 3]) == 1


@pytest.mark.parametrize("break_folder, culprit", [
    (lambda root: shutil.rmtree(root / "test"), "test"),
    (lambda root: (root / "test" / "zebra").rename(root / "test" / "zebu"), "zebu"),
    (lambda root: write_image(root / "train" / "apple" / "big.png", (1, 2, 3), size=9), "big.png"),
    (lambda root: (root / "train" / "mango" / "bad.jpg").write_bytes(b"not an image"), "bad.jpg"),
    (lambda root: (root / "train" / "empty").mkdir() or (root / "test" / "empty").mkdir(), "empty"),
    (lambda root: (root / "train" / "mango" / "zz.png").write_bytes(b""), "'[^']*zz.png' is an empty file"),
    (lambda root: [shutil.rmtree(root / split / name) for split in ("train", "test") for name in ("apple", "zebra")],
     "1 class; classification needs at least 2"),
])
def test_malformed_imagefolder(tmp_path: Path, break_folder, culprit: str) -> None:
    root = write_folder(tmp_path, per_class=2)
    break_folder(root)
    with pytest.raises(DataError, match=culprit) as error:
        load_splits("imagefolder", root)
    assert "\n" not in str(error.value)


def test_16_bit_images_scale_to_8_bits_and_animated_ones_give_their_first_frame(tmp_path: Path) -> None:
    import numpy as np

    root = write_folder(tmp_path, (".png",), per_class=2)
    for split in ("train", "test"):  # 16-bit grey: 65535 is 255, 257 * 100 is 100
        Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(root / split / "apple" / "deep.png")
        Image.fromarray(np.full((8, 8), 25700, dtype=np.uint16)).save(root / split / "mango" / "deep.png")
        frames = [Image.new("RGB", (8, 8), colour) for colour in ((10, 10, 250), (250, 250, 250))]
        frames[0].save(root / split / "zebra" / "moving.gif", save_all=True, append_images=frames[1:])
    splits = load_splits("imagefolder", root, val_size=0)
    assert splits.train_images.dtype == torch.uint8 and splits.train_images.shape[1:] == (3, 8, 8)
    pixels = {tuple(image[:, 0, 0].tolist()) for image in splits.test_images}
    assert {(255, 255, 255), (100, 100, 100), (10, 10, 250)} <= pixels and (250, 250, 250) not in pixels


def test_normalize_gives_zero_mean_unit_std() -> None:
    splits = load_splits("fake")
    mean, std = torch.tensor(splits.mean), torch.tensor(splits.std)
    normalised = normalize(splits.train_images, mean, std)
    assert normalised.dtype == torch.float32 and normalised.shape == splits.train_images.shape
    assert torch.allclose(normalised.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(normalised.std((0, 2, 3), correction=0), torch.ones(3), atol=1e-4)


def test_random_crop_flip_is_seeded_and_shape_preserving() -> None:
    images = torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    first = random_crop_flip(images, torch.Generator().manual_seed(1))
    assert first.shape == images.shape and first.dtype == images.dtype
    assert torch.equal(first, random_crop_flip(images, torch.Generator().manual_seed(1)))
    assert not torch.equal(first, random_crop_flip(images, torch.Generator().manual_seed(2)))


def test_random_crop_flip_without_padding_only_flips() -> None:
    images = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = random_crop_flip(images, torch.Generator().manual_seed(0), padding=0)
    same = (out == images).flatten(1).all(1)
    mirrored = (out == images.flip(3)).flatten(1).all(1)
    assert (same | mirrored).all() and same.any() and mirrored.any()


def test_random_crop_flip_takes_shifted_windows_of_the_padded_image() -> None:
    images = torch.rand(16, 2, 6, 6, generator=torch.Generator().manual_seed(0)) + 1  # nonzero, unlike padding
    out = random_crop_flip(images, torch.Generator().manual_seed(3), padding=2)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    found = []
    for crop, source in zip(out, padded):
        windows = {(dy, dx): source[:, dy:dy + 6, dx:dx + 6] for dy in range(5) for dx in range(5)}
        matches = [(offset, flip) for offset, window in windows.items() for flip in (False, True)
                   if torch.equal(crop, window.flip(2) if flip else window)]
        assert len(matches) == 1
        found += matches
    assert len({offset for offset, _ in found}) > 3 and {flip for _, flip in found} == {False, True}


def test_a_run_on_tensors_in_memory_never_imports_torchvision():
    """Importing torchvision takes seconds (it loads torch._dynamo); only image folders and downloads need it."""
    run_without_importing("import cli.main, epbt_deap.execution.training; from epbt_deap.run import load_data; "
                          "from epbt_deap.config import build_config; "
                          "load_data(build_config({'data': {'dataset': 'fake'}}))", "torchvision")
