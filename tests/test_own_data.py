"""A user's own data: a loader by import path, tabular arrays in an .npz with the built-in MLP, and every
mistake one line before training (issue 24, items 2, 3 and 7)."""
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sklearn.datasets import load_breast_cancer

from cli.main import main
from epbt_deap.config import build_config
from epbt_deap.data import DataError, load_splits
from epbt_deap.execution.training import evaluate
from epbt_deap.run import resume, run
from epbt_deap.schedule import LossSchedule
from tests.helpers import read_jsonl, untimed

MYDATA = '''
import numpy as np


def rng():
    return np.random.default_rng(0)


def images_nhwc():
    x = rng().integers(0, 256, (60, 8, 8, 3)).astype(np.uint8)
    y = np.arange(60) % 3
    return x[:48], y[:48], x[48:], y[48:], ["a", "b", "c"]


def grey_mapping():
    x = rng().integers(0, 256, (40, 8, 8)).astype(np.uint8)
    return {"x_train": x[:30], "y_train": np.arange(30) % 2, "x_test": x[30:], "y_test": np.arange(10) % 2}


def labels_out_of_range():
    x = rng().integers(0, 256, (20, 8, 8)).astype(np.uint8)
    return x[:10], np.arange(10), x[10:], np.arange(10) % 2, ["a", "b"]


def float_images():
    return np.zeros((10, 3, 8, 8)), np.zeros(10), np.zeros((4, 3, 8, 8)), np.zeros(4)


def three_parts():
    return np.zeros((10, 4)), np.zeros(10)


def named_labels():
    return np.zeros((10, 4), np.float32), ["cat"] * 10, np.zeros((4, 4), np.float32), ["dog"] * 4


def ragged_features():
    return [[0.0, 1.0], [0.0]] * 5, np.zeros(10, int), np.zeros((4, 2), np.float32), np.zeros(4, int)


def empty_test():
    x, y, *_ = images_nhwc()
    return x, y, x[:0], y[:0]


def empty_train():
    _, _, x, y, names = images_nhwc()
    return x[:0], y[:0], x, y, names


def one_huge_label():
    x, y, x_test, y_test = images_nhwc()[:4]
    y[0] = 10**7
    return x, y, x_test, y_test


def too_many_names():
    return (*images_nhwc()[:4], [str(name) for name in range(49)])


def disjoint_classes():
    x, y, x_test, y_test = images_nhwc()[:4]
    return x, y, x_test, y_test + 5


def one_class_unseen():
    x, y, x_test, y_test = images_nhwc()[:4]
    y_test[0] = 3
    return x, y, x_test, y_test


def duplicate_names():
    return (*images_nhwc()[:4], ["a", "a", "a"])


def names_not_a_list():
    return (*images_nhwc()[:4], 3)
'''


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    (tmp_path / "mydata.py").write_text(textwrap.dedent(MYDATA))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_loaders_images_in_any_layout_become_the_split(user_folder):
    splits = load_splits("mydata:images_nhwc")
    assert splits.num_classes == 3 and splits.train_images.shape[1:] == (3, 8, 8) and not splits.augment
    assert len(splits.train_labels) + len(splits.val_labels) == 48 and len(splits.test_labels) == 12
    grey = load_splits("mydata:grey_mapping", val_size=5)
    assert grey.num_classes == 2 and grey.train_images.shape[1:] == (1, 8, 8) and len(grey.val_labels) == 5


@pytest.mark.parametrize("loader, message", [
    ("mydata:labels_out_of_range", "labels must lie in 0..1 (2 classes), got 0..9"),
    ("mydata:float_images", "x_train must be uint8 images"),
    ("mydata:three_parts", "the loader must return (x_train, y_train, x_test, y_test[, classes])"),
    ("mydata:named_labels", "y_train is not an array of numbers"),
    ("mydata:ragged_features", "x_train is not an array of numbers"),
    ("mydata:missing", "module 'mydata' has no callable 'missing'"),
    ("nodata:load", "cannot import module 'nodata'"),
    ("mydata:empty_test", "mydata:empty_test: x_test holds no samples"),
    ("mydata:empty_train", "mydata:empty_train: x_train holds no samples"),
    ("mydata:one_huge_label", "10000001 classes (the largest label is 10000000) for 48 training samples"),
    ("mydata:too_many_names", "49 classes (49 class names) for 48 training samples"),
    ("mydata:disjoint_classes", "no class of y_test (5..7) appears in y_train (0..2)"),
    ("mydata:duplicate_names", "class names must differ, got 'a' 3 times"),
    ("mydata:names_not_a_list", "the class names must be a list of strings, got int"),
])
def test_each_data_mistake_is_one_line_before_training(user_folder, loader, message):
    """On a short run, so that a mistake the checks miss fails the test quickly."""
    result = CliRunner().invoke(main, ["evolve", "--config", "quickstart", "--set", f"data.dataset={loader}",
                                       "--generations", "1", "--population", "2", "--elites", "1",
                                       "--run-dir", str(user_folder / "run")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert message in result.output and not (user_folder / "run" / "lineage.jsonl").exists()


def test_test_classes_that_training_never_shows_are_named_in_a_warning(user_folder, caplog):
    splits = load_splits("mydata:one_class_unseen")
    assert splits.num_classes == 4
    assert [record.getMessage() for record in caplog.records if record.levelname == "WARNING"] == [
        "mydata:one_class_unseen: 1 of 12 test samples are of classes y_train never shows (3); "
        "the model cannot get them right"]
    caplog.clear()
    load_splits("mydata:images_nhwc")
    assert not [record for record in caplog.records if record.levelname == "WARNING"]


def breast_cancer_npz(path):
    data = load_breast_cancer()
    order = np.random.default_rng(0).permutation(len(data.target))
    x, y = data.data[order].astype(np.float32), data.target[order]
    np.savez(path, x_train=x[:450], y_train=y[:450], x_test=x[450:], y_test=y[450:],
             classes=np.array(data.target_names))
    return path


def test_features_are_standardised_with_the_training_statistics(tmp_path):
    splits = load_splits("arrays", breast_cancer_npz(tmp_path / "cancer.npz"), val_size=50)
    assert splits.train_images.shape[1:] == (30, 1, 1) and splits.train_images.dtype == torch.float32
    from epbt_deap.data import normalize

    features = normalize(splits.train_images, torch.tensor(splits.mean), torch.tensor(splits.std))
    assert features.mean(0).abs().max() < 1e-4 and (features.std(0, unbiased=False) - 1).abs().max() < 1e-4
    with pytest.raises(DataError, match="data.augment crops and flips images; arrays holds features"):
        load_splits("arrays", tmp_path / "cancer.npz", augment=True)


def test_a_tabular_run_with_the_built_in_mlp_reaches_90_percent_on_breast_cancer(tmp_path):
    config = build_config({"name": "cancer", "seed": 1,
                           "data": {"dataset": "arrays", "dir": str(breast_cancer_npz(tmp_path / "cancer.npz"))},
                           "train": {"epochs_per_generation": 5, "batch_size": 32, "lr": 0.05, "lr_milestones": [15]},
                           "evolution": {"population": 4, "elites": 2, "generations": 4},
                           "resources": {"device": "cpu"}})
    assert config.train.model == "mlp"
    summary = run(config, tmp_path / "run")
    assert summary.best_test_accuracy >= 0.90
    assert all(row["status"] == "ok" for row in read_jsonl(tmp_path / "run" / "lineage.jsonl"))


def interrupted_in_generation_2(context, task):
    """The trainer's evaluation until generation 2, which a Ctrl-C stops."""
    if task.start_epoch == 2:
        raise KeyboardInterrupt
    return evaluate(context, task)


def test_arrays_that_cannot_be_data_are_one_line(tmp_path):
    x, y = np.zeros((10, 3), dtype=np.float32), np.arange(10) % 2
    np.save(tmp_path / "one.npy", x)
    np.savez(tmp_path / "scalar_names.npz", x_train=x, y_train=y, x_test=x, y_test=y, classes=np.array("ab"))
    x[3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    for file, message in (("one.npy", "holds one array; the arrays dataset needs an .npz file"),
                          ("scalar_names.npz", "the class names must be a list of strings"),
                          ("nan.npz", "arrays: x_train holds nan or infinite values")):
        with pytest.raises(DataError, match=message) as error:
            load_splits("arrays", tmp_path / file)
        assert "\n" not in str(error.value)


def test_a_run_on_arrays_resumes_to_the_uninterrupted_run(tmp_path):
    """Where the data sets the number of classes, the plan is rebuilt after loading: that must not
    draw from the random state a resume restores."""
    config = build_config({"name": "cancer", "seed": 1,
                           "data": {"dataset": "arrays", "dir": str(breast_cancer_npz(tmp_path / "cancer.npz"))},
                           "train": {"epochs_per_generation": 1, "batch_size": 64, "lr_milestones": [2]},
                           "evolution": {"population": 4, "elites": 2, "generations": 3},
                           "resources": {"device": "cpu"}})
    reference = run(config, tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "run", evaluate=interrupted_in_generation_2)
    resumed = resume(tmp_path / "run")
    assert untimed(resumed.logbook) == untimed(reference.logbook)
    assert [row["genes"] for row in read_jsonl(tmp_path / "run" / "lineage.jsonl")] == \
        [row["genes"] for row in read_jsonl(tmp_path / "reference" / "lineage.jsonl")]
    assert LossSchedule.from_run(tmp_path / "run").num_classes == 2  # known from the data, not the config
