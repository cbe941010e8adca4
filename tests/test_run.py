import dataclasses
import threading

import pytest
import torch

from epbt_deap.config import build_config
from epbt_deap.errors import RunDirError
from epbt_deap.evolution.learnability import is_learnable
from epbt_deap.execution.training import evaluate
from epbt_deap.run import run
from epbt_deap.rundir.logs import best_ancestry
from epbt_deap.schedule import LossSchedule
from tests.helpers import read_jsonl, tiny


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    return run(tiny(), run_dir), run_dir


@pytest.mark.slow
def test_run_writes_a_complete_run_directory(finished_run):
    summary, run_dir = finished_run
    assert build_config(__import__("yaml").safe_load((run_dir / "config.yaml").read_text())) == tiny()
    logbook = read_jsonl(run_dir / "logbook.jsonl")
    assert [row["gen"] for row in logbook] == [0, 1, 2]
    assert [row["evals"] for row in logbook] == [4, 4, 4]  # 2 children and the 2 elites, retrained
    assert [row["epochs"] for row in logbook] == [1, 2, 3]
    for row in logbook:
        assert 0 <= row["min"] <= row["avg"] <= row["max"] <= 1 and row["std"] >= 0
        assert 0 <= row["best_test"] <= 1
    assert logbook[-1]["max"] == pytest.approx(summary.best_fitness)


@pytest.mark.slow
def test_lineage_has_one_row_per_evaluation_with_parents(finished_run):
    _, run_dir = finished_run
    lineage = read_jsonl(run_dir / "lineage.jsonl")
    assert len(lineage) == 4 + 4 * 2
    uids = [row["uid"] for row in lineage]
    by_uid = {row["uid"]: row for row in lineage}
    assert len(set(uids)) == len(uids)
    for row in lineage:
        assert set(row["genes"]) == {f"theta_{i}" for i in range(8)}
        if row["generation"] > 0:
            earlier = uids[: uids.index(row["uid"])]
            assert row["parent"] in earlier
            retrained_elite = row["partner"] is None and row["genes"] == by_uid[row["parent"]]["genes"]
            assert row["partner"] in earlier or retrained_elite
        assert row["status"] == "ok" or row["fitness"] == 0


@pytest.mark.slow
def test_checkpoints_on_disk_are_only_the_live_ones_and_best_loads(finished_run):
    summary, run_dir = finished_run
    files = sorted(path.stem for path in (run_dir / "checkpoints").glob("*.pt"))
    assert 2 <= len(files) <= 4 + 1  # population + hall of fame
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert best["uid"] == summary.best_uid and best["fitness"] == pytest.approx(summary.best_fitness)
    assert set(best["genes"]) == {f"theta_{i}" for i in range(8)}
    assert best["model_name"] == "resnet8" and "model" in best


@pytest.mark.slow
def test_a_run_directory_holding_another_run_is_refused(finished_run):
    _, run_dir = finished_run
    before = (run_dir / "logbook.jsonl").read_text()
    with pytest.raises(RunDirError, match="--overwrite"):
        run(tiny(), run_dir)
    assert (run_dir / "logbook.jsonl").read_text() == before


@pytest.mark.slow
def test_by_default_every_initial_loss_is_learnable_and_elites_retrain(finished_run):
    """The measured defaults (docs/results.md): learnable initial theta, elites trained every generation."""
    _, run_dir = finished_run
    lineage = read_jsonl(run_dir / "lineage.jsonl")
    first = [[row["genes"][f"theta_{i}"] for i in range(8)] for row in lineage if row["generation"] == 0]
    assert len(first) == 4 and all(is_learnable(theta, 4) for theta in first)  # the fake data has 4 classes
    retrained = [row for row in lineage if row["generation"] > 0 and row["partner"] is None]
    assert len(retrained) == 2 * 2


@pytest.mark.slow
@pytest.mark.parametrize("evolution, train", [
    ({"algorithm": "none", "population": 2, "generations": 3}, {"loss": "cross_entropy"}),
    ({"algorithm": "pbt", "population": 4, "generations": 2, "mutate": {"name": "mutPerturb"}, "truncation": 0.5},
     {}),
])
def test_baselines_train_every_member_every_generation(tmp_path, evolution, train):
    overrides = {f"evolution.{key}": value for key, value in evolution.items()}
    run(tiny({**overrides, **{f"train.{key}": value for key, value in train.items()}}), tmp_path / "run")
    logbook = read_jsonl(tmp_path / "run" / "logbook.jsonl")
    assert [row["evals"] for row in logbook] == [evolution["population"]] * evolution["generations"]
    assert [row["epochs"] for row in logbook] == list(range(1, evolution["generations"] + 1))
    lineage = read_jsonl(tmp_path / "run" / "lineage.jsonl")
    assert all(row["status"] == "ok" for row in lineage)
    copied = int(evolution["population"] * evolution.get("truncation", 0))  # the bottom share copies the top
    for generation in range(1, evolution["generations"]):
        parents = {row["parent"] for row in lineage if row["generation"] == generation}
        assert len(parents) == evolution["population"] - copied
    if evolution["algorithm"] == "none":
        assert all(row["genes"] == {} for row in lineage)
        assert max(row["best_test"] for row in logbook) > 0.5  # cross-entropy learns the fake data


@pytest.mark.slow
def test_tensorboard_scalars_are_written(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # the test extra's

    _, run_dir = finished_run
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"fitness/max", "fitness/avg", "test_accuracy/best", "genes_of_best/theta_0"} <= set(tags)
    assert [event.step for event in events.Scalars("fitness/max")] == [1, 2, 3]


def test_a_run_leaves_no_tensorboard_writer_open(tmp_path):
    before = set(threading.enumerate())
    run(tiny({"evolution.generations": 1}), tmp_path / "run")
    assert set(threading.enumerate()) <= before  # the event file's writer thread stopped with it


def test_without_tensorboard_nothing_breaks(monkeypatch, tmp_path):
    from epbt_deap.rundir.tensorboard import TensorBoardScalars

    monkeypatch.setitem(__import__("sys").modules, "torch.utils.tensorboard", None)  # import fails
    scalars = TensorBoardScalars(tmp_path / "tensorboard")
    assert scalars.writer is None
    scalars.write({"epochs": 1, "max": 1, "avg": 1, "min": 1, "std": 0, "best_test": 1}, {"lr": 0.1})
    assert not (tmp_path / "tensorboard").exists()


@pytest.mark.slow
def test_the_vectorised_trainer_gives_the_per_model_run(finished_run, tmp_path):
    summary, run_dir = finished_run
    vectorized = tiny({"train.trainer": "vectorized", "resources.cpu_workers": 2})
    run(vectorized, tmp_path / "vectorized")
    expected, actual = read_jsonl(run_dir / "lineage.jsonl"), read_jsonl(tmp_path / "vectorized" / "lineage.jsonl")
    assert [(row["uid"], row["parent"], row["partner"]) for row in actual] == \
        [(row["uid"], row["parent"], row["partner"]) for row in expected]
    assert [row["fitness"] for row in actual] == pytest.approx([row["fitness"] for row in expected], abs=2 / 64)
    assert len(list((tmp_path / "vectorized" / "checkpoints").glob("*.pt"))) == \
        len(list((run_dir / "checkpoints").glob("*.pt")))


def tied(context, task):
    """The trainer's evaluation, every model scored the same: the order of best decides alone."""
    return dataclasses.replace(evaluate(context, task), fitness=0.5)


def test_of_tied_models_best_pt_the_summary_and_the_best_lineage_name_the_newest(tmp_path):
    summary = run(tiny(), tmp_path / "run", evaluate=tied)
    lineage = read_jsonl(tmp_path / "run" / "lineage.jsonl")
    assert summary.best_uid == best_ancestry(lineage)[-1]["uid"] == "g002-003"  # the last made in the last generation
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=False)["uid"] == "g002-003"
    assert LossSchedule.from_run(tmp_path / "run").found_with.best_uid == "g002-003"  # export and replay
