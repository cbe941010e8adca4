"""MNIST, Fashion-MNIST, KMNIST and CIFAR-100 from fabricated files in each one's own layout, read by our
readers; and whole runs at n = 2 and n = 100 classes, the number of classes taken from the data (issue 24)."""
import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from epbt_deap.config import build_config
from epbt_deap.data import DataError, load_splits
from epbt_deap.run import run
from tests.helpers import read_jsonl, tiny

IDX_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}


def idx_bytes(array: np.ndarray) -> bytes:
    """An idx file of unsigned bytes: 0 0 8 ndim, big-endian sizes, the data."""
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx_dataset(root: Path, folder: str, train: int, test: int, compress: bool) -> dict[str, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (train, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(train) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, 28, 28)),
              "t10k-labels-idx1-ubyte": (np.arange(test) * 3) % 10}
    for name, array in arrays.items():
        data = idx_bytes(array)
        (raw / (f"{name}.gz" if compress else name)).write_bytes(gzip.compress(data) if compress else data)
    return arrays


def write_cifar100(root: Path, train: int, test: int) -> dict[str, np.ndarray]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    written = {}
    for name, count in (("train", train), ("test", test)):
        data = rng.integers(0, 256, (count, 3072)).astype(np.uint8)
        labels = (np.arange(count) % 100).tolist()
        (folder / name).write_bytes(pickle.dumps({b"data": data, b"fine_labels": labels, b"coarse_labels": labels}))
        written[name] = labels
    return written


@pytest.mark.parametrize("name", sorted(IDX_FOLDERS))
@pytest.mark.parametrize("compress", [False, True], ids=["idx", "idx.gz"])
def test_the_mnist_family_loads_from_its_idx_files(tmp_path, name, compress):
    arrays = write_idx_dataset(tmp_path, IDX_FOLDERS[name], train=40, test=12, compress=compress)
    splits = load_splits(name, tmp_path, val_size=10)
    assert splits.num_classes == 10 and splits.train_images.shape[1:] == (1, 28, 28)
    assert len(splits.train_labels) == 30 and splits.train_images.dtype == torch.uint8
    assert splits.test_labels.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert torch.equal(splits.test_images[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"].astype(np.uint8)))
    assert not splits.augment  # no crop and flip for digits and letters


def test_cifar100_loads_its_fine_labels(tmp_path):
    labels = write_cifar100(tmp_path, train=150, test=30)
    splits = load_splits("cifar100", tmp_path, val_size=20)
    assert splits.num_classes == 100 and splits.train_images.shape[1:] == (3, 32, 32)
    assert splits.test_labels.tolist() == labels["test"] and splits.augment


@pytest.mark.parametrize("name, message", [("mnist", "MNIST not found in"), ("cifar100", "CIFAR-100 not found in")])
def test_missing_files_without_download_are_one_line(tmp_path, name, message):
    with pytest.raises(DataError, match=message) as error:
        load_splits(name, tmp_path, download=False)
    assert "\n" not in str(error.value)


def test_a_corrupt_idx_file_is_one_line(tmp_path):
    write_idx_dataset(tmp_path, "MNIST", train=20, test=10, compress=False)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x02ab")
    with pytest.raises(DataError, match="not an idx file of unsigned bytes"):
        load_splits("mnist", tmp_path)


def test_a_label_outside_the_datasets_classes_is_one_line(tmp_path):
    write_idx_dataset(tmp_path, "MNIST", train=20, test=10, compress=False)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(20, 200)))
    with pytest.raises(DataError, match=r"^mnist: labels must lie in 0..9 \(10 classes\), got 0..200$"):  # test labels 0..9
        load_splits("mnist", tmp_path)


def tiny_run(dataset, data_dir, run_dir, **data):
    config = tiny({"data.dataset": dataset, "data.dir": str(data_dir), "data.download": False,
                   **{f"data.{key}": value for key, value in data.items()},
                   "evolution.population": 2, "evolution.elites": 1, "evolution.generations": 2})
    run(config, run_dir)
    return read_jsonl(run_dir / "lineage.jsonl")


def test_a_run_at_100_classes_completes_with_eq1s_n_from_the_data(tmp_path, monkeypatch):
    from epbt_deap.evolution import toolbox
    from epbt_deap.schedule import LossSchedule

    checked_at = []
    real_check = toolbox.is_learnable
    monkeypatch.setattr(toolbox, "is_learnable", lambda theta, n: checked_at.append(n) or real_check(theta, n))
    write_cifar100(tmp_path / "data", train=220, test=40)
    rows = tiny_run("cifar100", tmp_path / "data", tmp_path / "run", val_size=20)
    assert len(rows) == 4 and all(row["status"] == "ok" for row in rows)
    assert checked_at and set(checked_at) == {100}  # the learnable initial draw judged Eq. 1 at n = 100
    assert LossSchedule.from_run(tmp_path / "run").num_classes == 100  # as the run's provenance records the data
    weights = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["model"]
    assert [shape[0] for name, shape in ((name, tensor.shape) for name, tensor in weights.items())
            if name.endswith("weight") and len(shape) == 2] == [100]  # one logit per class


def test_a_constant_channel_normalises_to_finite_values():
    from epbt_deap.data.splits import channel_stats

    images = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    images[:, 0] = torch.arange(4, dtype=torch.uint8).view(4, 1, 1) * 50
    mean, std = channel_stats(images)
    assert std[1] == std[2] == 1.0 and std[0] > 0 and mean[1] == 0.0


def test_a_run_at_2_classes_completes(tmp_path):
    for split, count in (("train", 12), ("test", 4)):
        for label, colour in enumerate(((220, 30, 30), (30, 30, 220))):
            for index in range(count):
                path = tmp_path / "data" / split / f"class{label}" / f"{index:02d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (16, 16), colour).save(path)
    rows = tiny_run("imagefolder", tmp_path / "data", tmp_path / "run", val_size=4)
    assert len(rows) == 4 and all(row["status"] == "ok" for row in rows)
    assert build_config({"data": {"dataset": "imagefolder", "dir": str(tmp_path / "data")}}).data.num_classes() == 2
