"""`epbt-deap show`: a run's progress from its files alone, while it runs and after."""
import datetime
import json
import re
from dataclasses import replace

import pytest
import yaml
from click.testing import CliRunner

from cli.main import main
from epbt_deap.errors import RunDirError
from epbt_deap.run import resume, run
from epbt_deap.rundir.layout import RunLayout
from epbt_deap.rundir.logs import read_provenance, read_run_logs
from epbt_deap.rundir.show import describe, read_view
from tests.helpers import RowObserver, tiny

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
THETA = {f"theta_{i}": value for i, value in enumerate([0, 0, 0, 0, 0, 1, 0, 0])}


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def lineage_row(uid, generation, fitness=0.5, status="ok", **extra):
    return {"uid": uid, "generation": generation, "parent": None, "genes": THETA, "fitness": fitness,
            "epochs": generation + 1, "test_accuracy": 0.4, "status": status, **extra}


def write_run(run_dir, logbook_times, lineage, starts=(0,), generations=6):
    """A run directory as a run writes it: one logbook row per entry of ``logbook_times`` (None: no timestamp)."""
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"name": "fake", "seed": 0, "data": {"dataset": "fake"},
                                                         "train": {"epochs_per_generation": 2},
                                                         "evolution": {"generations": generations}, "resources": {}}))
    rows = [{"gen": gen, "evals": 1, "max": 0.5, "best_test": 0.4, "epochs": 2 * (gen + 1),
             **({} if seconds is None else {"time": at(seconds).isoformat()})}
            for gen, seconds in enumerate(logbook_times)]
    (run_dir / "logbook.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (run_dir / "lineage.jsonl").write_text("".join(json.dumps(row) + "\n" for row in lineage))
    (run_dir / "provenance.json").write_text(json.dumps([{"command": "run", "started": at(s).isoformat()}
                                                         for s in starts]))
    return run_dir


def test_a_run_in_progress_shows_how_long_it_has_left(tmp_path):
    run_dir = write_run(tmp_path / "run", [10, 20, 30], [lineage_row("g000-000", 0)])
    view = replace(read_view(run_dir, now=at(35)), held=True)  # a live process holds its lock
    assert (view.logs.generation, view.logs.generations, view.logs.finished) == (2, 6, False)
    assert view.remaining == datetime.timedelta(seconds=30)  # 3 generations to go at 10 s each
    text = "\n".join(describe(view))
    assert "generations: 3 of 6 done (0 to 2), epoch 6 of 12 on the run's clock" in text
    assert "elapsed 35 s since the start" in text and "last generation finished 5 s ago" in text
    assert "about 30 s to finish" in text


def test_a_stopped_run_counts_its_time_to_its_last_generation_and_gives_no_estimate(tmp_path):
    run_dir = write_run(tmp_path / "run", [10, 20, 30], [lineage_row("g000-000", 0)])
    view = read_view(run_dir, now=at(500))  # no process holds its lock
    assert view.stopped and view.elapsed == datetime.timedelta(seconds=30) and view.remaining is None
    text = "\n".join(describe(view))
    assert "ran 30 s from the start at " in text and "to its last completed generation" in text
    assert "last generation finished 7m 50s ago" in text and "to finish" not in text
    (run_dir / "logbook.jsonl").unlink()  # stopped in generation 0
    assert "elapsed: unknown (stopped before generation 0 ended)" in "\n".join(describe(read_view(run_dir)))


def test_the_pace_counts_only_generations_since_the_latest_resume(tmp_path):
    run_dir = write_run(tmp_path / "run", [10, 20, 104, 108], [lineage_row("g000-000", 0)], starts=(0, 100))
    view = replace(read_view(run_dir, now=at(110)), held=True)
    assert view.seconds_per_generation == 4  # not the 100 s the run was stopped
    assert view.remaining == datetime.timedelta(seconds=8)


def test_elapsed_time_leaves_out_the_time_between_a_stop_and_the_resume(tmp_path):
    run_dir = write_run(tmp_path / "run", [10, 20, 104, 108], [lineage_row("g000-000", 0)], starts=(0, 100))
    running = replace(read_view(run_dir, now=at(110)), held=True)
    assert running.elapsed == datetime.timedelta(seconds=20 + 10)  # 0 to 20, then 100 to now
    assert "elapsed 30 s since the start at 2026-01-01 12:00:00 UTC, in 2 sittings (the time between them not " \
           "counted)" in "\n".join(describe(running))
    stopped = read_view(run_dir, now=at(500))
    assert stopped.elapsed == datetime.timedelta(seconds=20 + 8)  # to the last generation of each sitting
    assert "ran 28 s from the start at 2026-01-01 12:00:00 UTC, in 2 sittings" in "\n".join(describe(stopped))
    lost = write_run(tmp_path / "lost", [10, 20, 104], [lineage_row("g000-000", 0)], starts=(0, 50, 100))
    assert read_view(lost, now=at(500)).elapsed == datetime.timedelta(seconds=24)  # the sitting at 50 completed none


def test_a_logbook_without_timestamps_still_reads(tmp_path):
    run_dir = write_run(tmp_path / "run", [None, None], [lineage_row("g000-000", 0)], generations=2)
    text = "\n".join(describe(read_view(run_dir)))
    assert ": finished" in text and "elapsed: unknown (this run's logbook has no timestamps)" in text


def test_a_run_still_in_generation_0_shows_its_elapsed_time(tmp_path):
    run_dir = write_run(tmp_path / "run", [], [])
    for log in ("logbook.jsonl", "lineage.jsonl"):  # written when generation 0 ends
        (run_dir / log).unlink()
    text = "\n".join(describe(replace(read_view(run_dir, now=at(42)), held=True)))
    assert "generations: 0 of 6 done (generation 0 is training, or was stopped), epoch 0 of 12" in text
    assert "elapsed 42 s since the start" in text and "best: none yet" in text and "to finish" not in text


def test_the_best_its_loss_and_the_failures(tmp_path):
    lineage = [lineage_row("g000-000", 0, 0.5), lineage_row("g000-001", 0, 0.0, "diverged", detail="non-finite loss"),
               lineage_row("g001-000", 1, 0.75), lineage_row("g001-001", 1, 0.0, "failed", detail="worker died")]
    text = "\n".join(describe(read_view(write_run(tmp_path / "run", [10, 20], lineage))))
    assert "best g001-000 (generation 1, 2 epochs trained): validation 0.7500, test 0.4000" in text
    assert "theta_5 1, theta_6 0" in text
    assert "shifted to 0 at y = 1): L(y) = -0.5 y + 0.5" in text
    assert "evaluations: 2 ok, 1 diverged, 1 failed" in text
    assert "  g000-001 diverged: non-finite loss" in text and "  g001-001 failed: worker died" in text


def test_a_run_without_validation_shows_its_latest_model(tmp_path):
    lineage = [lineage_row("g000-000", 0, None), lineage_row("g001-000", 1, None)]
    text = "\n".join(describe(read_view(write_run(tmp_path / "run", [10, 20], lineage))))
    assert "best g001-000 (generation 1, 2 epochs trained): validation n/a (no validation set), test 0.4000" in text


def test_a_half_written_last_line_is_left_out_only_when_live(tmp_path):
    run_dir = write_run(tmp_path / "run", [10], [lineage_row("g000-000", 0)])
    for name in ("logbook.jsonl", "lineage.jsonl"):
        with open(run_dir / name, "a") as stream:
            stream.write('{"gen": 1, "uid": "g00')
    logs = read_run_logs(run_dir, live=True)
    assert len(logs.logbook) == 1 and len(logs.lineage) == 1
    with pytest.raises(RunDirError, match="not valid JSON"):
        read_run_logs(run_dir)


def test_a_folder_without_a_run_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["show", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output == f"error: {tmp_path}: not a run directory (no config.yaml)\n"


SMALL = {"evolution.population": 2, "evolution.elites": 1}


def stop_after_generation_1(row):
    """Interrupt the run once generation 1 is on disk, as Ctrl-C would."""
    if row["gen"] == 1:
        raise KeyboardInterrupt


def show(run_dir):
    result = CliRunner().invoke(main, ["show", str(run_dir)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_show_on_a_real_run_stopped_midway_with_half_written_lines_then_finished(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run(tiny(SMALL), run_dir, observer=RowObserver(stop_after_generation_1))
    with open(run_dir / "logbook.jsonl", "a") as logbook, open(run_dir / "lineage.jsonl", "a") as lineage:
        logbook.write('{"gen": 2, "evals": 1, "av')  # killed while generation 2 was being written
        lineage.write('{"uid": "g002-000", "generation": 2, "par')
    stopped = show(run_dir)
    assert "stopped before its end (no process holds its lock): epbt-deap resume" in stopped and "generations: 2 of 3 done (0 to 1), epoch 2 of 3" in stopped
    assert "to finish" not in stopped and "to its last completed generation" in stopped
    assert "evaluations: 4 ok, 0 diverged, 0 failed" in stopped and "L(y) = " in stopped  # the elite retrains too

    resume(run_dir)  # the half-written rows are dropped and generation 2 is trained again
    finished = show(run_dir)
    assert ": finished\n" in finished and "generations: 3 of 3 done (0 to 2), epoch 3 of 3" in finished
    assert "to finish" not in finished and "ago" not in finished
    assert "evaluations: 6 ok, 0 diverged, 0 failed" in finished
    rows = read_run_logs(run_dir).lineage  # ties: the latest generation, then the latest row
    best = rows[max(range(len(rows)), key=lambda index: (rows[index]["fitness"], rows[index]["generation"], index))]
    assert f"best {best['uid']} " in finished and f"validation {best['fitness']:.4f}" in finished


def test_a_stopped_replay_is_not_sent_to_resume(tmp_path):
    run_dir = write_run(tmp_path / "run", [10], [lineage_row("g000-000", 0)])
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**config, "replay_of": str(tmp_path / "source")}))
    text = "\n".join(describe(read_view(run_dir, now=at(20))))
    assert "a replay cannot be resumed: replay again with --overwrite" in text and "resume continues" not in text


def test_a_provenance_file_that_is_not_text_is_a_one_line_error(tmp_path):
    """resume keeps it aside and starts a new one (test_resume)."""
    run_dir = write_run(tmp_path / "run", [10], [lineage_row("g000-000", 0)])
    (run_dir / "provenance.json").write_bytes(b"\xff\xfe")
    with pytest.raises(RunDirError, match=r"provenance.json: not a text file \(not UTF-8\)$"):
        read_provenance(RunLayout.at(run_dir))


@pytest.mark.parametrize("damage, message", [
    (lambda run_dir: _edit_jsonl(run_dir / "lineage.jsonl", genes={**THETA, "theta_5": "1"}),
     r"lineage.jsonl:1: genes has a value of the wrong type"),
    (lambda run_dir: _edit_jsonl(run_dir / "lineage.jsonl", fitness="0.5"),
     r"lineage.jsonl:1: fitness has a value of the wrong type"),
    (lambda run_dir: _edit_jsonl(run_dir / "logbook.jsonl", time="yesterday"),
     r"logbook.jsonl, generation 0: 'yesterday' is not a time \(ISO 8601\)"),
], ids=["gene as text", "fitness as text", "time not a time"])
def test_a_damaged_value_is_a_one_line_error_naming_its_file(tmp_path, damage, message):
    run_dir = write_run(tmp_path / "run", [10], [lineage_row("g000-000", 0)])
    damage(run_dir)
    result = CliRunner().invoke(main, ["show", str(run_dir)])
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1, result.output
    assert re.search(message, result.output), result.output


@pytest.mark.parametrize("damage, reason", [
    ('[{"started": 12}]', r"provenance.json: 12 is not a time \(ISO 8601\)"),
    ("garbage{", r"provenance.json: unreadable \(Expecting value"),
])
def test_a_damaged_provenance_costs_only_the_timing(tmp_path, damage, reason):
    """resume keeps such a file aside and goes on (test_resume); show tells the rest of the run."""
    run_dir = write_run(tmp_path / "run", [10], [lineage_row("g000-000", 0)])
    (run_dir / "provenance.json").write_text(damage)
    result = CliRunner().invoke(main, ["show", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert re.search(r"elapsed: unknown \(.*" + reason, result.output), result.output
    assert "best g000-000" in result.output


def test_a_time_without_a_zone_is_read_as_utc(tmp_path):
    run_dir = write_run(tmp_path / "run", [10], [lineage_row("g000-000", 0)])
    _edit_jsonl(run_dir / "logbook.jsonl", time=at(10).replace(tzinfo=None).isoformat())
    (run_dir / "provenance.json").write_text(json.dumps([{"started": T0.replace(tzinfo=None).isoformat()}]))
    assert "last generation finished 20 s ago" in "\n".join(describe(read_view(run_dir, now=at(30))))


def _edit_jsonl(path, **values):
    """Set ``values`` in the first row of a JSON-lines file."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0].update(values)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
