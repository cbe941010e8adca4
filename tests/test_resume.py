"""Runs survive SIGKILL, Ctrl-C and SIGTERM, and resume to the same result."""
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

import epbt_deap.run
from cli.main import execute, main
from epbt_deap.errors import WorkerError
from epbt_deap.execution.pool import InProcessPool
from epbt_deap.execution.protocol import EvalResult
from epbt_deap.run import check_run_dir, resume, run
from epbt_deap.rundir import checkpoints
from epbt_deap.rundir.checkpoints import CheckpointError, load_checkpoint, save_checkpoint, write_atomically
from epbt_deap.rundir.layout import RunLayout
from epbt_deap.schedule import LossSchedule
from tests.helpers import RowObserver, read_jsonl, read_logbook, run_files, tiny, tiny_yaml

LONGER = {"evolution.generations": 4}
ONE_GENERATION = {"evolution.generations": 1}


def start_cli(tmp_path, *args):
    config = tiny_yaml(tmp_path / "config.yaml", LONGER)
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args, "--config", str(config),
                             "--run-dir", str(tmp_path / "run")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=restore_default_sigint)


def restore_default_sigint():
    """A background job (as under CI) inherits SIGINT ignored; a terminal user's run does not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until(done, process, timeout=120):
    """Poll ``done()`` while the run ``process`` lives, for ``timeout`` seconds at most."""
    deadline = time.monotonic() + timeout
    while not done():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)


def wait_for_generations(run_dir, count, process, timeout=120):
    wait_until(lambda: len(read_jsonl(run_dir / "logbook.jsonl")) >= count, process, timeout)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same run, never interrupted."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run(tiny(LONGER), run_dir)
    return read_logbook(run_dir / "logbook.jsonl"), read_jsonl(run_dir / "lineage.jsonl")


def assert_complete_and_equal(run_dir, reference):
    logbook, lineage = reference
    assert read_logbook(run_dir / "logbook.jsonl") == logbook  # every generation exactly once, same numbers
    resumed_lineage = read_jsonl(run_dir / "lineage.jsonl")
    assert [r["uid"] for r in resumed_lineage] == [r["uid"] for r in lineage]
    assert [r["fitness"] for r in resumed_lineage] == [r["fitness"] for r in lineage]
    checkpoints = list((run_dir / "checkpoints").iterdir())
    assert len(checkpoints) <= tiny().evolution.population + 1
    assert not [path for path in checkpoints if path.suffix != ".pt"]  # no temporary leftovers


@pytest.mark.slow
def test_sigkill_during_generation_2_then_resume(tmp_path, reference):
    process = start_cli(tmp_path, "evolve")
    wait_for_generations(tmp_path / "run", 2, process)
    process.kill()
    process.wait()
    assert len(read_jsonl(tmp_path / "run" / "logbook.jsonl")) < 4
    resume(tmp_path / "run")
    assert_complete_and_equal(tmp_path / "run", reference)


@pytest.mark.slow
def test_sigkill_during_generation_0_restarts_cleanly(tmp_path, reference):
    process = start_cli(tmp_path, "evolve")
    while not (tmp_path / "run" / "config.yaml").exists():
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.kill()
    process.wait()
    assert not (tmp_path / "run" / "state.pkl").exists()  # killed in generation 0, not after it
    lock = (tmp_path / "run" / ".lock").stat().st_ino
    resume(tmp_path / "run")
    assert_complete_and_equal(tmp_path / "run", reference)
    assert (tmp_path / "run" / ".lock").stat().st_ino == lock  # the restart never deleted the lock it held


@pytest.mark.slow
@pytest.mark.parametrize("signum, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_interrupt_keeps_the_state_and_says_how_to_resume(tmp_path, reference, signum, code, word):
    process = start_cli(tmp_path, "evolve")
    wait_until((tmp_path / "run" / "state.pkl").exists, process)  # generation 0 saved for resume
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code
    assert f"{word}; the completed generations are kept; continue with: epbt-deap resume" in stderr
    assert "Traceback" not in stderr
    done = CliRunner().invoke(main, ["resume", str(tmp_path / "run")])  # the command it names, in this process
    assert done.exit_code == 0, done.output
    assert_complete_and_equal(tmp_path / "run", reference)


class BufferCutShort(io.BytesIO):
    """An in-memory file whose third write is interrupted by Ctrl-C."""

    def __init__(self):
        super().__init__()
        self.writes = 0

    def write(self, data):
        self.writes += 1
        if self.writes == 3:
            raise KeyboardInterrupt
        return super().write(data)


def test_ctrl_c_while_a_checkpoint_is_serialised_is_an_interruption_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "io", SimpleNamespace(BytesIO=BufferCutShort))
    with pytest.raises(KeyboardInterrupt):  # not torch's RuntimeError about its unfinished zip stream
        save_checkpoint({"w": torch.ones(1000)}, tmp_path / "child.pt")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_a_file_is_written_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "state.pkl"
    path.write_bytes(b"old")
    monkeypatch.setattr(checkpoints.os, "fsync", lambda descriptor: press_ctrl_c())
    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, b"new")
    assert [entry.name for entry in tmp_path.iterdir()] == ["state.pkl"] and path.read_bytes() == b"old"


@pytest.fixture
def sigterm_handler_restored():
    handler = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, handler)


def send_sigterm():
    os.kill(os.getpid(), signal.SIGTERM)


def press_ctrl_c():
    """What SIGINT does in a terminal (a background job, as under CI, ignores a real one)."""
    raise KeyboardInterrupt


@pytest.mark.parametrize("interrupt, code, word", [(send_sigterm, 143, "terminated"),
                                                   (press_ctrl_c, 130, "interrupted")])
def test_an_interruption_during_an_evaluation_is_not_a_failed_evaluation(
        tmp_path, capsys, sigterm_handler_restored, interrupt, code, word):
    def evaluate(context, item):
        interrupt()
        return item

    def action(observer):
        return InProcessPool(lambda device: None, ()).map(evaluate, [1])

    with pytest.raises(SystemExit) as exit:
        execute(action, tmp_path)
    assert exit.value.code == code
    assert capsys.readouterr().err == (f"error: {word}; nothing was written to {tmp_path} yet: "
                                       "run the same command again\n")
    (tmp_path / "config.yaml").write_text("name: written\n")  # the run directory holds a run now
    with pytest.raises(SystemExit):
        execute(action, tmp_path)
    assert capsys.readouterr().err == (f"error: {word}; no generation had completed; continue with: "
                                       f"epbt-deap resume {tmp_path} (it starts generation 0 again)\n")
    (tmp_path / "state.pkl").write_bytes(b"")  # a generation has completed
    with pytest.raises(SystemExit):
        execute(action, tmp_path)
    assert capsys.readouterr().err == (f"error: {word}; the completed generations are kept; "
                                       f"continue with: epbt-deap resume {tmp_path}\n")
    with pytest.raises(SystemExit):
        execute(action, tmp_path, resumable=False)  # a replay's
    assert capsys.readouterr().err == (f"error: {word}; a replay cannot be resumed: run the same command again "
                                       "with --overwrite\n")


def press_ctrl_c_instead(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("stopped", ["load_data", "rmtree"])
def test_a_stop_before_overwrite_replaced_the_run_says_to_run_the_command_again(tmp_path, monkeypatch, stopped):
    """While the data loads, or while the old run's files are deleted, the old config is still there:
    resuming would continue the old run, so the hint is the same command again, which works."""
    run_dir = tmp_path / "run"
    (run_dir / "tensorboard").mkdir(parents=True)  # deleted after config.yaml in name order
    (run_dir / "checkpoints").mkdir()  # before it: but state.pkl goes first of all
    old_config = tiny_yaml(run_dir / "config.yaml").read_text()
    (run_dir / "state.pkl").write_bytes(b"")
    target = epbt_deap.run.shutil if stopped == "rmtree" else epbt_deap.run
    monkeypatch.setattr(target, stopped, press_ctrl_c_instead)
    config = tiny_yaml(tmp_path / "new.yaml", {"seed": 7})
    result = CliRunner().invoke(main, ["evolve", "--config", str(config), "--run-dir", str(run_dir), "--overwrite"])
    assert result.exit_code == 130
    assert result.output == f"error: interrupted; the run in {run_dir} was not replaced yet: run the same command again\n"
    assert (run_dir / "config.yaml").read_text() == old_config
    assert (run_dir / "state.pkl").exists() == (stopped == "load_data")  # never a state whose checkpoints are gone
    check_run_dir(RunLayout.at(run_dir), overwrite=True)  # the same command again is accepted


@pytest.mark.slow
def test_resuming_a_finished_run_changes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    first = run(tiny(), run_dir)
    before = run_files(run_dir)
    again = resume(run_dir)
    assert list(again.logbook) == list(first.logbook) and run_files(run_dir) == before


def test_a_restart_of_generation_0_keeps_the_earlier_starts_and_the_users_files_and_records_a_resume(tmp_path):
    run_dir = tmp_path / "run"
    run(tiny(ONE_GENERATION), run_dir)
    (run_dir / "state.pkl").unlink()  # as if killed before generation 0 ended
    started = json.loads((run_dir / "provenance.json").read_text())
    (run_dir / "out.log").write_text("the user's own log, tee'd into the run directory")
    resume(run_dir)
    entries = json.loads((run_dir / "provenance.json").read_text())
    assert entries[:1] == started and [entry["command"] for entry in entries] == ["run", "resume"]
    assert (run_dir / "out.log").read_text() == "the user's own log, tee'd into the run directory"


def first_leads_for_good(context, task):
    """g000-000 scores 0.9 and every other member 0.1; each checkpoint a stand-in for trained weights."""
    torch.save({"stand_in": torch.zeros(1)}, task.output_checkpoint)
    fitness = 0.9 if task.uid == "g000-000" else 0.1
    return EvalResult(task.uid, fitness, fitness, 1.0, task.start_epoch + task.epochs, task.output_checkpoint,
                      "ok", 0.0)


def stops_in_generation_2(context, task):
    if task.uid.startswith("g002"):
        raise RuntimeError("stopped")
    return first_leads_for_good(context, task)


def test_a_resume_rewrites_best_pt_that_a_stop_before_the_state_left_from_a_lost_generation(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(WorkerError):
        run(tiny(), run_dir, evaluate=stops_in_generation_2)
    stale = load_checkpoint(run_dir / "best.pt")
    save_checkpoint({**stale, "uid": "g002-lost"}, run_dir / "best.pt")  # as if stopped after best.pt, before state.pkl
    resume(run_dir, evaluate=first_leads_for_good)
    assert load_checkpoint(run_dir / "best.pt")["uid"] == "g000-000"


def test_an_unreadable_provenance_is_kept_aside_and_a_new_one_started(tmp_path, caplog):
    run_dir = tmp_path / "run"
    run(tiny(ONE_GENERATION), run_dir)
    for damage in ("[{damaged", "[{again"):  # each damaged file is kept, in turn
        (run_dir / "state.pkl").unlink()
        (run_dir / "provenance.json").write_text(damage)
        resume(run_dir)
    assert (run_dir / "provenance.damaged.json").read_text() == "[{damaged[{again"
    assert [entry["command"] for entry in json.loads((run_dir / "provenance.json").read_text())] == ["resume"]
    assert "kept in provenance.damaged.json" in caplog.text
    assert LossSchedule.from_run(run_dir).num_classes == 4  # the schedule still reads
    (run_dir / "provenance.json").write_text("[{damaged")
    assert LossSchedule.from_run(run_dir).num_classes == 4  # from the config where provenance cannot tell
    check_run_dir(RunLayout.at(run_dir), overwrite=True)  # --overwrite may replace it: a file runs write


@pytest.mark.slow
@pytest.mark.parametrize("name, end, message", [
    ("state.pkl", lambda content: 100, " is truncated or corrupt"),
    ("config.yaml", lambda content: content.index(b"evolution:"),  # whole lines: the defaults must not fill them
     ": damaged or cut short, it lacks evolution, resources"),
])
def test_a_truncated_state_or_config_is_a_one_line_error_and_nothing_changes(tmp_path, name, end, message):
    run_dir = tmp_path / "run"
    run(tiny(), run_dir)
    cut = run_dir / name
    content = cut.read_bytes()
    cut.write_bytes(content[:end(content)])
    before = run_files(run_dir)
    result = CliRunner().invoke(main, ["resume", str(run_dir)])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {cut}{message}") and len(result.output.strip().splitlines()) == 1
    assert run_files(run_dir) == before


@pytest.mark.slow
def test_checkpoints_stay_bounded_after_every_generation(tmp_path):
    counts = []
    count_files = RowObserver(lambda row: counts.append(len(list((tmp_path / "run" / "checkpoints").iterdir()))))
    run(tiny(LONGER), tmp_path / "run", observer=count_files)
    assert len(counts) == tiny(LONGER).evolution.generations
    assert all(count <= tiny().evolution.population + 1 for count in counts)


@pytest.mark.parametrize("damage", [b"junk\n", b"J", b"not a checkpoint", b"\0" * 64, b""])
def test_any_damaged_checkpoint_is_one_checkpoint_error(tmp_path, damage):
    path = tmp_path / "g000-000.pt"
    save_checkpoint({"epochs": 1}, path)
    path.write_bytes(damage)
    with pytest.raises(CheckpointError, match=rf"^checkpoint {re.escape(str(path))} is unreadable \(\w+\)$"):
        load_checkpoint(path)


@pytest.mark.slow
def test_a_corrupt_checkpoint_is_found_before_resuming(tmp_path):
    run_dir = tmp_path / "run"
    run(tiny(), run_dir)
    victim = sorted((run_dir / "checkpoints").glob("*.pt"))[0]
    victim.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(main, ["resume", str(run_dir)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: checkpoint {victim} is unreadable (UnpicklingError)"
