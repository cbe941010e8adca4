"""`replay --model/--dataset/--set`: the best lineage's schedule trains another network or dataset."""
import logging

import pytest
import yaml
from click.testing import CliRunner

from cli.main import main
from epbt_deap.config import build_config
from epbt_deap.models import build_model
from epbt_deap.run import run
from epbt_deap.rundir.checkpoints import load_checkpoint
from epbt_deap.schedule import LossSchedule
from tests.helpers import OLD_ELITE, read_jsonl
from tests.test_data import write_folder


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The OLD_ELITE run: digits_cnn on digits (10 classes)."""
    run_dir = tmp_path_factory.mktemp("transfer") / "source"
    run(build_config(OLD_ELITE), run_dir)
    return run_dir


def replay(source, target, *args):
    return CliRunner().invoke(main, ["replay", str(source), "--run-dir", str(target), *args])


def test_a_replay_onto_another_model_trains_that_model_on_the_schedule(source, tmp_path):
    result = replay(source, tmp_path / "replay", "--model", "resnet8")
    assert result.exit_code == 0, result.output
    best = load_checkpoint(tmp_path / "replay" / "best.pt")
    assert best["model_name"] == "resnet8"
    build_model("resnet8", 10, 1).load_state_dict(best["model"])  # the weights are resnet8's, strictly
    config = yaml.safe_load((tmp_path / "replay" / "config.yaml").read_text())
    assert config["train"]["model"] == "resnet8" and config["replay_of"] == str(source)
    schedule = LossSchedule.from_run(source)
    replayed = read_jsonl(tmp_path / "replay" / "lineage.jsonl")
    assert [row["genes"] for row in replayed] == [step.genes for step in schedule.steps]
    clock = [row["epochs"] for row in read_jsonl(tmp_path / "replay" / "logbook.jsonl")]
    assert clock == [step.clock_epoch + step.epochs for step in schedule.steps]


def test_a_replay_onto_another_number_of_classes_warns_of_unlearnable_steps(source, tmp_path, caplog):
    failing = [step.uid for step in LossSchedule.from_run(source).unlearnable_steps(4)]
    assert failing, "the test needs a step whose theta fails the check for 4 classes"
    with caplog.at_level(logging.WARNING, logger="epbt_deap"):
        result = replay(source, tmp_path / "replay", "--dataset", "fake", "--set", "data.train_subset=100")
    assert result.exit_code == 0, result.output
    warnings = [record.getMessage() for record in caplog.records if "learnability" in record.getMessage()]
    assert len(warnings) == 1 and "found with 10 classes" in warnings[0] and "for 4 classes" in warnings[0]
    assert all(uid in warnings[0] for uid in failing)
    assert load_checkpoint(tmp_path / "replay" / "best.pt")["model"]["8.weight"].shape[0] == 4  # digits_cnn's head


def test_a_replay_onto_an_image_folder_reads_it_from_data_dir(source, tmp_path):
    folder = write_folder(tmp_path / "images")  # 3 classes of 8x8 colour images
    result = replay(source, tmp_path / "replay", "--dataset", "imagefolder", "--data-dir", str(folder),
                    "--set", "data.train_subset=16")
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((tmp_path / "replay" / "config.yaml").read_text())
    assert (config["data"]["dataset"], config["data"]["dir"]) == ("imagefolder", str(folder))
    assert load_checkpoint(tmp_path / "replay" / "best.pt")["model"]["8.weight"].shape[0] == 3  # digits_cnn's head
    assert LossSchedule.from_run(tmp_path / "replay").num_classes == 3


def test_the_same_number_of_classes_gives_no_warning(source, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="epbt_deap"):
        assert replay(source, tmp_path / "replay", "--model", "resnet8").exit_code == 0
    assert not [record for record in caplog.records if "learnability" in record.getMessage()]


@pytest.mark.parametrize("args, message", [
    (["--set", "evolution.population=3"], "evolution.population: a replay follows the source run's schedule"),
    (["--set", "train.epochs_per_generation=2"], "train.epochs_per_generation: a replay follows"),
    (["--model", "resnet33"], "unknown model 'resnet33'"),
    (["--set", "oops"], "expected KEY=VALUE"),
    (["--dataset", "emnist"], "unknown dataset 'emnist': choose one of"),
])
def test_a_bad_replay_override_is_one_line_and_exit_code_2(source, tmp_path, args, message):
    result = replay(source, tmp_path / "replay", *args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "replay").exists()


@pytest.mark.slow
def test_report_compares_a_replay_with_baseline_1_of_that_model(source, tmp_path):
    assert replay(source, tmp_path / "replay", "--model", "resnet8").exit_code == 0
    baseline = build_config(OLD_ELITE, {"name": "baseline1", "train.model": "resnet8", "train.loss": "cross_entropy",
                                        "evolution.algorithm": "none", "evolution.population": 1,
                                        "evolution.genes": {}})
    run(baseline, tmp_path / "baseline1")
    result = CliRunner().invoke(main, ["report", str(tmp_path / "replay"), str(tmp_path / "baseline1"),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    methods = [line.split(",")[0] for line in (tmp_path / "out" / "table1.csv").read_text().splitlines()[1:]]
    assert sorted(methods) == ["no PBT (cross_entropy)", "replay (taylorglo)"]
