"""`replay` follows the best lineage's schedule; `report` makes the tables and figures."""
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli.main import main
from epbt_deap.config import Extension
from epbt_deap.replay import replay_config
from epbt_deap.run import run
from epbt_deap.rundir.lock import lock_run_dir
from epbt_deap.rundir.logs import best_ancestry
from tests.helpers import read_jsonl, run_files, tiny

BASELINE = {"name": "tiny_baseline", "train.loss": "cross_entropy", "evolution.algorithm": "none",
            "evolution.population": 1}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for seed in (1, 2):
        run(tiny({"seed": seed}), root / f"epbt_seed{seed}")
        run(tiny({**BASELINE, "seed": seed}), root / f"baseline_seed{seed}")
    return root


@pytest.mark.slow
def test_replay_uses_the_lineage_genes_at_each_step_of_the_clock(runs):
    source = runs / "epbt_seed1"
    result = CliRunner().invoke(main, ["replay", str(source), "--run-dir", str(runs / "replay")])
    assert result.exit_code == 0, result.output
    chain = best_ancestry(read_jsonl(source / "lineage.jsonl"))
    replayed = read_jsonl(runs / "replay" / "lineage.jsonl")
    assert [row["genes"] for row in replayed] == [row["genes"] for row in chain]
    assert [row["generation"] for row in replayed] == [row["generation"] for row in chain]
    assert [row["epochs"] for row in replayed] == [1 + step for step in range(len(chain))]  # one fresh model
    assert replayed[0]["parent"] is None
    assert all(later["parent"] == earlier["uid"] for earlier, later in zip(replayed, replayed[1:]))
    epochs = [row["epochs"] for row in read_jsonl(runs / "replay" / "logbook.jsonl")]
    assert epochs == [(row["generation"] + 1) * 1 for row in chain]  # the run clock, as in the source
    scalars = EventAccumulator(str(runs / "replay" / "tensorboard"))  # as evolve writes them
    scalars.Reload()
    assert [event.step for event in scalars.Scalars("test_accuracy/best")] == epochs


@pytest.mark.slow
def test_a_replay_of_an_extended_run_records_no_extension_of_its_own():
    extension = Extension(after_generation=1, generations_before=2, generations=3, lr_milestones_before=[2],
                          lr_milestones=[2], time="2026-12-07T23:00:00+00:00")
    source = tiny().model_copy(update={"extensions": [extension]})
    schedule = SimpleNamespace(steps=[SimpleNamespace(generation=2)])  # its last step: the one replay_config reads
    config = replay_config(source, Path("/runs/source"), schedule, {})
    assert config.extensions == [] and config.replay_of == "/runs/source" and config.evolution.generations == 3


def test_a_replay_is_not_resumed_nor_replaced_without_overwrite(runs, tmp_path):
    replay = ["replay", str(runs / "epbt_seed2"), "--run-dir", str(tmp_path / "replay")]
    assert CliRunner().invoke(main, replay).exit_code == 0
    before = run_files(tmp_path / "replay")
    resumed = CliRunner().invoke(main, ["resume", str(tmp_path / "replay")])
    assert resumed.exit_code == 2 and resumed.output == (f"error: {tmp_path / 'replay'} is a replay, which cannot be "
                                                         f"resumed; replay {runs / 'epbt_seed2'} again\n")
    again = CliRunner().invoke(main, replay)
    assert again.exit_code == 2 and "holds another run; pass --overwrite to replace it" in again.output
    assert run_files(tmp_path / "replay") == before
    assert CliRunner().invoke(main, [*replay, "--overwrite"]).exit_code == 0


@pytest.mark.slow
def test_report_prints_both_tables_and_writes_the_figures(runs, tmp_path):
    dirs = [str(runs / name) for name in ("epbt_seed1", "epbt_seed2", "baseline_seed1", "baseline_seed2")]
    result = CliRunner().invoke(main, ["report", *dirs, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Final test accuracy" in result.output and "Epochs each method needs" in result.output
    for name in ("accuracy.png", "loss_ancestry.png", "genes.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "out" / "table1.csv").read_text()
    assert table.count("\n") == 3  # a header and two methods, each over 2 seeds


@pytest.mark.slow
def test_verbose_shows_the_librarys_log_and_the_default_shows_only_warnings(runs, tmp_path):
    def report(*flags):
        command = [sys.executable, "-m", "cli.main", *flags, "report", str(runs / "baseline_seed1"), "--out",
                   str(tmp_path / "out")]
        return subprocess.run(command, capture_output=True, text=True, check=True).stderr

    assert f"INFO report written to {tmp_path / 'out'}" in report("-v")
    assert " INFO " not in report()


def test_report_refuses_a_run_named_twice_which_would_count_as_two_seeds(runs, tmp_path):
    same = runs / "baseline_seed1" / ".." / "baseline_seed1"
    result = CliRunner().invoke(main, ["report", str(runs / "baseline_seed1"), str(same), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output == f"error: {runs / 'baseline_seed1'} and {same} are the same run: name each run once\n"
    for twice in (str(runs / "baseline_seed1"), f"{runs / 'baseline_seed1'}/"):  # spelt alike, to pathlib
        result = CliRunner().invoke(main, ["report", str(runs / "baseline_seed1"), twice, "--out", str(tmp_path)])
        assert result.exit_code == 2 and "are the same run: name each run once" in result.output, result.output
    assert not list(tmp_path.iterdir())


def test_report_refuses_a_run_that_stopped_before_its_end(runs, tmp_path):
    stopped = tmp_path / "stopped"
    shutil.copytree(runs / "epbt_seed1", stopped)
    logbook = (stopped / "logbook.jsonl").read_text().splitlines(keepends=True)
    (stopped / "logbook.jsonl").write_text("".join(logbook[:2]))  # killed after generation 1 of 0 to 2
    result = CliRunner().invoke(main, ["report", str(runs / "epbt_seed2"), str(stopped), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and result.output == (f"error: {stopped} stopped after generation 1 of 0 to 2: "
                                                       "resume it, or leave it out of the report\n")


def test_report_of_a_run_in_progress_says_so_from_its_half_written_files(runs, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(runs / "epbt_seed1", live)
    logbook = (live / "logbook.jsonl").read_text().splitlines(keepends=True)
    (live / "logbook.jsonl").write_text("".join(logbook[:2]) + logbook[2][:9])  # generation 2's row half-written
    report = ["report", str(runs / "epbt_seed2"), str(live), "--out", str(tmp_path / "o")]
    with lock_run_dir(live):
        result = CliRunner().invoke(main, report)
    assert result.exit_code == 2 and result.output.startswith(f"error: {live} is still running (pid {os.getpid()} ")
    assert result.output.endswith("after generation 1 of 0 to 2: report it when it ends, or leave it out of the "
                                  "report\n") and result.output.count("\n") == 1
    (live / "logbook.jsonl").write_text("")  # generation 0 still training
    result = CliRunner().invoke(main, report)
    assert result.exit_code == 2 and result.output == (f"error: {live} stopped in generation 0 of 0 to 2: "
                                                       "resume it, or leave it out of the report\n")


def test_report_of_nothing_usable_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2 and result.output == f"error: {tmp_path / 'missing'}: no such run directory\n"
