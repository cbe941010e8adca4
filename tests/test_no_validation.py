"""``data.val_size: 0``: Baseline 1 as the paper ran it, on every training image, and refused where selection needs validation."""
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from epbt_deap.config import ConfigError, load_config, named_configs
from epbt_deap.data import load_splits
from epbt_deap.replay import replay
from epbt_deap.report.writer import write_report
from epbt_deap.run import run
from epbt_deap.rundir.show import describe, read_view
from tests.helpers import read_jsonl, tiny

NO_VALIDATION = {"data.val_size": 0}
BASELINE = {**NO_VALIDATION, "name": "b1", "train.loss": "cross_entropy", "evolution.algorithm": "none",
            "evolution.population": 1, "evolution.generations": 2}


@pytest.mark.parametrize("evolution", [{"algorithm": "epbt", "population": 4, "elites": 2},
                                       {"algorithm": "pbt", "population": 4},
                                       {"algorithm": "none", "population": 2}])
def test_refused_where_selection_needs_validation_in_one_line(evolution):
    with pytest.raises(ConfigError) as error:
        tiny({**NO_VALIDATION, **{f"evolution.{key}": value for key, value in evolution.items()}})
    assert str(error.value).startswith("data.val_size: 0 leaves no validation set")
    assert "\n" not in str(error.value)


def test_only_the_table_1_baselines_train_without_validation():
    without = sorted(name for name, path in named_configs().items() if load_config(path).data.val_size == 0)
    assert without == ["cifar10_resnet32_baseline1", "cifar10_wrn16_8_baseline1", "svhn_resnet32_baseline1"]
    assert load_config(named_configs()["cpu_cifar10_baseline1"]).data.val_size == 1000  # its subset stays the same


def test_the_wide_resnet_configs_use_its_authors_weight_decay():
    for name in ("cifar10_wrn16_8_baseline1", "cifar10_wrn16_8_epbt"):
        assert load_config(named_configs()[name]).train.weight_decay == 5e-4
        assert "Zagoruyko & Komodakis" in named_configs()[name].read_text()


def test_no_validation_set_trains_on_every_training_image():
    every, held_out = load_splits("fake", val_size=0), load_splits("fake")
    assert len(every.val_labels) == 0
    assert len(every.train_labels) == len(held_out.train_labels) + len(held_out.val_labels)
    assert torch.equal(every.test_labels, held_out.test_labels)


@pytest.mark.slow
def test_baseline_1_without_validation_records_null_and_reports_replays_and_shows(tmp_path):
    summary = run(tiny(BASELINE), tmp_path / "b1")
    lineage, logbook = read_jsonl(tmp_path / "b1" / "lineage.jsonl"), read_jsonl(tmp_path / "b1" / "logbook.jsonl")
    assert [row["fitness"] for row in lineage] == [None, None]
    assert all(row[key] is None for row in logbook for key in ("avg", "std", "min", "max"))
    assert all(0 <= row["best_test"] <= 1 for row in logbook)
    assert (summary.best_uid, summary.best_fitness) == ("g001-000", None)  # the model trained longest
    assert torch.load(tmp_path / "b1" / "best.pt", weights_only=False)["uid"] == "g001-000"

    text = "\n".join(describe(read_view(tmp_path / "b1")))
    assert "best g001-000 (generation 1, 2 epochs trained): validation n/a (no validation set)" in text
    assert "loss: cross_entropy" in text

    replayed = replay(tmp_path / "b1", tmp_path / "b1_replay")
    assert [row["uid"] for row in read_jsonl(tmp_path / "b1_replay" / "lineage.jsonl")] == ["g000-replay",
                                                                                            "g001-replay"]
    assert replayed.best_fitness is None

    written = write_report([tmp_path / "b1"], tmp_path / "report")
    assert "table1.csv" in written.files

    result = CliRunner().invoke(main, ["evolve", "--config", str(tmp_path / "b1" / "config.yaml"),
                                       "--run-dir", str(tmp_path / "cli"), "--generations", "1"])
    assert result.exit_code == 0, result.output
    assert "best n/a | mean n/a | test of best 0." in result.output and "validation n/a, test 0." in result.output


def test_a_replay_may_train_on_every_training_image(tmp_path):
    """One model without selection, like Baseline 1, which it is compared with in the paper's transfer."""
    run(tiny({"evolution.generations": 2}), tmp_path / "epbt")
    replayed = replay(tmp_path / "epbt", tmp_path / "replay", overrides={"data.val_size": 0})
    assert replayed.best_fitness is None and 0 <= replayed.best_test_accuracy <= 1
    assert [row["fitness"] for row in read_jsonl(tmp_path / "replay" / "lineage.jsonl")] == [None, None]
