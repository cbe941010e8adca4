"""`LossSchedule`: the best lineage's genes epoch by epoch, exported to JSON and read back exactly."""
import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

import epbt_deap
from cli.main import main
from epbt_deap.config import build_config
from epbt_deap.evolution.eq1 import binary_loss_formula
from epbt_deap.execution.taylorglo import taylorglo_loss
from epbt_deap.run import run
from epbt_deap.rundir.checkpoints import load_checkpoint
from epbt_deap.schedule import LossSchedule, ScheduleError
from tests.helpers import OLD_ELITE, read_jsonl


@pytest.fixture(scope="module")
def old_elite_run(tmp_path_factory):
    """The OLD_ELITE run with every checkpoint kept, so that each ancestor's genes can be read back."""
    run_dir = tmp_path_factory.mktemp("schedule") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("epbt_deap.rundir.recorder.remove_unreferenced", lambda folder, referenced: [])
        run(build_config(OLD_ELITE), run_dir)
    return run_dir


def test_the_schedule_holds_each_ancestors_checkpointed_genes_by_epochs_trained(old_elite_run):
    schedule = LossSchedule.from_run(old_elite_run)
    best = schedule.steps[-1]
    last_generation = OLD_ELITE["evolution"]["generations"] - 1
    assert best.generation < last_generation, "the run's best must be an old elite"
    assert any(step.clock_epoch != step.epoch for step in schedule.steps), "a child of an old elite starts later"
    assert best.genes == load_checkpoint(old_elite_run / "best.pt")["genes"]
    trained = 0
    for step in schedule.steps:
        checkpoint = load_checkpoint(old_elite_run / "checkpoints" / f"{step.uid}.pt")
        assert step.genes == checkpoint["genes"]
        assert step.epoch == trained and step.clock_epoch == step.generation * 1
        trained = checkpoint["epochs"]
        assert step.epoch + step.epochs == trained
        assert schedule.genes_at(step.epoch) == {"lr": checkpoint["genes"]["lr"],
                                                 "momentum": checkpoint["genes"]["momentum"]}
        assert schedule.theta_at(step.epoch) == tuple(checkpoint["genes"][f"theta_{i}"] for i in range(8))
        decayed = 0.1 if step.clock_epoch >= 2 else 1.0  # the milestone is on the run's clock
        assert schedule.lr_at(step.epoch) == pytest.approx(checkpoint["genes"]["lr"] * decayed, rel=1e-12)
        assert schedule.sgd_at(step.epoch)["momentum"] == checkpoint["genes"]["momentum"]
    assert schedule.epochs == trained
    assert schedule.step_at(schedule.epochs + 10) == best  # the last step holds
    assert schedule.sgd_at(schedule.epochs + 10) == schedule.sgd_at(schedule.epochs - 1)
    assert schedule.num_classes == 10 and schedule.sgd.batch_size == 32


def test_loss_at_is_the_steps_taylorglo_loss(old_elite_run):
    schedule = LossSchedule.from_run(old_elite_run)
    logits, targets = torch.randn(5, 10, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 3, 9, 2, 2])
    for step in schedule.steps:
        expected = taylorglo_loss(logits, targets, schedule.theta_at(step.epoch))
        assert torch.equal(schedule.loss_at(step.epoch)(logits, targets), expected)
    first, last = (schedule.loss_at(step.epoch)(logits, targets) for step in (schedule.steps[0], schedule.steps[-1]))
    assert not torch.equal(first, last)


def test_export_and_load_round_trip_exactly(old_elite_run, tmp_path):
    path = tmp_path / "schedule.json"
    result = CliRunner().invoke(main, ["export", str(old_elite_run), "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert str(path) in result.output
    best_theta = LossSchedule.from_run(old_elite_run).theta_at(10**6)
    assert result.output.rstrip().endswith(binary_loss_formula(best_theta))  # the last step, as `show` writes it
    loaded = LossSchedule.load(path)
    assert loaded == LossSchedule.from_run(old_elite_run)
    loaded.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == path.read_text()
    stored = json.loads(path.read_text())
    assert stored["schema_version"] == 3 and stored["loss"] == {
        "name": "taylorglo", "taylorglo_scale": 1.0, "reduction": "mean", "label_smoothing": 0.0, "gce_q": 0.7}
    del stored["loss"]["gce_q"]  # a version 2 file, written before gce
    (tmp_path / "v2.json").write_text(json.dumps({**stored, "schema_version": 2}))
    assert LossSchedule.load(tmp_path / "v2.json") == loaded
    del stored["loss"]["label_smoothing"]  # a version 1 file, written before label smoothing
    (tmp_path / "v1.json").write_text(json.dumps({**stored, "schema_version": 1}))
    assert LossSchedule.load(tmp_path / "v1.json") == loaded


def hinge(stored):
    stored["loss"]["name"] = "hinge"


def no_batch(stored):
    stored["sgd"]["batch_size"] = 0


def no_theta_7(stored):
    del stored["steps"][0]["genes"]["theta_7"]


def text_gene(stored):
    stored["steps"][-1]["genes"]["theta_0"] = "big"


def edit_step(index, key, value):
    def edit(stored):
        stored["steps"][index][key] = value
    return edit


def edit_top(section, key, value):
    def edit(stored):
        (stored[section] if section else stored)[key] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (edit_step(-1, "lr", []), r"step g00\d-\d+: lr must list one positive learning rate per epoch, got \[\]"),
    (edit_step(0, "lr", [None]), r"lr must list one positive learning rate per epoch, got \[None\]"),
    (edit_step(0, "lr", [-5.0]), r"lr must list one positive learning rate per epoch, got \[-5.0\]"),
    (edit_step(0, "epoch", "0"), r"step g000-\d+: epoch: not a whole number, 0 or more"),
    (edit_step(0, "genes", "theta_0"), r"the step after epoch 0 must be an object with a genes object and an lr list"),
    (edit_step(1, "epoch", 7), r"step g00\d-\d+ starts at epoch 7, but the steps before it end at \d+"),
    (edit_top(None, "evolved", "theta_0"), r"loss schedule: evolved must be a list of gene names"),
    (edit_top(None, "schema_version", True), r"loss schedule version True: this epbt-deap reads versions"),
    (edit_top("sgd", "lr_clock", "generation"), r"loss schedule: lr_clock 'generation' is not 'run'"),
    (hinge, r"loss schedule: loss: Input should be 'taylorglo', 'cross_entropy' or 'gce' \(got 'hinge'\)"),
    (no_batch, r"loss schedule: batch_size: Input should be greater than or equal to 2 \(got 0\)"),
    (no_theta_7, r"loss schedule: step g000-\d+ lacks theta_7"),
    (text_gene, r"loss schedule: step g00\d-\d+: theta_0 must be a finite number, got 'big'"),
])
def test_a_hand_edited_schedule_that_training_would_refuse_is_a_one_line_error(old_elite_run, tmp_path, edit,
                                                                                 message):
    stored = LossSchedule.from_run(old_elite_run).to_dict()
    edit(stored)
    (tmp_path / "schedule.json").write_text(json.dumps(stored))
    with pytest.raises(ScheduleError, match=message):
        LossSchedule.load(tmp_path / "schedule.json")


def test_a_loaded_recipe_holds_the_values_training_would_use(old_elite_run, tmp_path):
    stored = LossSchedule.from_run(old_elite_run).to_dict()
    stored["sgd"] |= {"momentum": "0.9", "batch_size": 32.0, "lr_milestones": ["2"]}  # a run's config takes these
    (tmp_path / "schedule.json").write_text(json.dumps(stored))
    schedule = LossSchedule.load(tmp_path / "schedule.json")
    assert (schedule.sgd.momentum, schedule.sgd.batch_size, schedule.sgd.lr_milestones) == (0.9, 32, (2,))
    assert type(schedule.sgd_at(0)["momentum"]) is float and type(schedule.sgd.batch_size) is int


def test_an_epoch_is_a_whole_number(old_elite_run):
    schedule = LossSchedule.from_run(old_elite_run)
    assert schedule.lr_at(np.int64(0)) == schedule.lr_at(0)
    for epoch in (1.5, -1, True):
        with pytest.raises(ValueError, match=f"epoch must be a whole number, 0 or more, got {epoch!r}"):
            schedule.lr_at(epoch)


def test_failed_ancestors_are_left_out_of_the_schedule(old_elite_run, tmp_path):
    """A failed child keeps its parent's weights: its genes trained nothing that its own child inherited."""
    rows = read_jsonl(old_elite_run / "lineage.jsonl")
    schedule = LossSchedule.from_run(old_elite_run)
    first, best = schedule.steps[0].uid, schedule.steps[-1].uid
    by_uid = {row["uid"]: row for row in rows}
    failed = {**by_uid[first], "uid": "g001-failed", "generation": 1, "parent": first, "status": "failed",
              "fitness": 0.0}
    edited = [{**row, "parent": "g001-failed"} if row["uid"] == best else row for row in rows] + [failed]
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("config.yaml", "logbook.jsonl"):
        (copy / name).write_text((old_elite_run / name).read_text())
    (copy / "lineage.jsonl").write_text("".join(json.dumps(row) + "\n" for row in edited))
    assert LossSchedule.from_run(copy).steps == schedule.steps


def test_a_run_with_half_written_last_lines_exports_and_loads_as_show_reads_it(old_elite_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(old_elite_run, copy)
    for name in ("logbook.jsonl", "lineage.jsonl"):  # a generation being written, or cut by kill -9
        with open(copy / name, "a") as stream:
            stream.write('{"gen": 9, "uid": "g00')
    assert LossSchedule.from_run(copy).steps == LossSchedule.from_run(old_elite_run).steps
    result = CliRunner().invoke(main, ["export", str(copy), "--out", str(tmp_path / "schedule.json")])
    assert result.exit_code == 0, result.output
    assert epbt_deap.load_run(copy).logbook == epbt_deap.load_run(old_elite_run).logbook


@pytest.mark.parametrize("content, message", [
    ("{", "not valid JSON"),
    ('{"schema": "other"}', "not an epbt-deap loss schedule"),
    ('{"schema": "epbt-deap/loss-schedule", "schema_version": 9}', "loss schedule version 9"),
    ('{"schema": "epbt-deap/loss-schedule", "schema_version": 1, "steps": []}', "missing or unexpected field"),
    (b"\xff\xfe\x00garbage", r"not a text file \(not UTF-8\)"),
])
def test_a_bad_schedule_file_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "schedule.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ScheduleError, match=message) as raised:
        LossSchedule.load(path)
    assert "\n" not in str(raised.value)


def test_export_of_a_folder_without_a_run_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["export", str(tmp_path), "--out", str(tmp_path / "s.json")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "not a run directory" in result.output and not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("name", ["config.yaml", "lineage.jsonl"])
def test_export_refuses_to_write_over_a_runs_own_file_and_replay_over_its_source(old_elite_run, name):
    before = (old_elite_run / name).read_bytes()
    result = CliRunner().invoke(main, ["export", str(old_elite_run), "--out", str(old_elite_run / name)])
    assert result.exit_code == 2 and result.output == (f"error: {old_elite_run / name} is a file of the run in "
                                                       f"{old_elite_run}: write the schedule elsewhere\n")
    replayed = CliRunner().invoke(main, ["replay", str(old_elite_run), "--run-dir", str(old_elite_run / "."),
                                         "--overwrite"])
    assert replayed.exit_code == 2 and "is the run to replay: give the replay another --run-dir" in replayed.output
    assert (old_elite_run / name).read_bytes() == before
    exported = CliRunner().invoke(main, ["export", str(old_elite_run), "--out", str(old_elite_run / "schedule.json")])
    assert exported.exit_code == 0, exported.output  # beside the run's files is fine
    (old_elite_run / "schedule.json").unlink()


def test_a_replay_of_an_old_elite_lasts_its_lineage_and_shows_finished(old_elite_run, tmp_path):
    best = LossSchedule.from_run(old_elite_run).steps[-1]
    replayed = tmp_path / "replay"
    result = CliRunner().invoke(main, ["replay", str(old_elite_run), "--run-dir", str(replayed)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((replayed / "config.yaml").read_text())["evolution"]["generations"] == best.generation + 1
    shown = CliRunner().invoke(main, ["show", str(replayed)])
    assert shown.exit_code == 0 and "finished" in shown.output and "not finished" not in shown.output
