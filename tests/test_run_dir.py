"""A run directory is self-contained: it resumes, replays and reports from any working
directory, after it was moved or copied, and a run written with launch-relative paths
(before paths were stored relative to the run directory) still resumes."""
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from epbt_deap.run import resume, run
from tests.helpers import read_logbook, tiny, tiny_yaml

REPOSITORY = Path(__file__).resolve().parents[1]
RUN = Path("runs") / "q"  # launch-relative, as `--run-dir runs/q` gives it


def cli(*args, cwd):
    """The command line, run as a user would from ``cwd``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The run, never interrupted: its logbook and its directory."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run(tiny(), run_dir)
    return read_logbook(run_dir / "logbook.jsonl"), run_dir


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A launch directory holding ``runs/q``: a run of 3 generations killed once generation 0 is saved."""
    launch = tmp_path_factory.mktemp("launch")
    tiny_yaml(launch / "tiny.yaml")
    process = cli("evolve", "--config", "tiny.yaml", "--run-dir", str(RUN), cwd=launch)
    deadline = time.monotonic() + 300
    while not (launch / RUN / "state.pkl").exists():  # generation 0 recorded
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)
    process.kill()
    process.wait()
    assert 1 <= len(read_logbook(launch / RUN / "logbook.jsonl")) < tiny().evolution.generations
    return launch


def stored_checkpoints(run_dir):
    with open(run_dir / "state.pkl", "rb") as stream:
        state = pickle.load(stream)
    return [ind.checkpoint for ind in [*state.population, *state.halloffame]]


def test_the_state_stores_checkpoints_relative_to_the_run_directory(interrupted):
    paths = stored_checkpoints(interrupted / RUN)
    assert paths and all(re.fullmatch(r"checkpoints/g\d{3}-\d{3}\.pt", path) for path in paths)
    assert all((interrupted / RUN / path).is_file() for path in paths)


def test_resume_from_another_working_directory(interrupted, reference, tmp_path):
    launch = tmp_path / "exp"
    shutil.copytree(interrupted, launch)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    process = cli("resume", str(launch / RUN), cwd=elsewhere)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert read_logbook(launch / RUN / "logbook.jsonl") == reference[0]
    assert not list(elsewhere.iterdir())  # nothing written where the command was run


@pytest.mark.parametrize("relocate", [shutil.move, shutil.copytree], ids=["moved", "copied"])
def test_a_relocated_unfinished_run_resumes_to_the_uninterrupted_result(interrupted, reference, tmp_path,
                                                                         monkeypatch, relocate):
    original = tmp_path / "exp" / RUN
    shutil.copytree(interrupted / RUN, original)
    relocated = tmp_path / "elsewhere" / "q2"
    relocated.parent.mkdir()
    relocate(original, relocated)
    shutil.rmtree(tmp_path / "exp")  # the original is gone, whether moved or copied
    monkeypatch.chdir(relocated.parent)
    summary = resume(Path("q2"))
    assert read_logbook(relocated / "logbook.jsonl") == reference[0]
    assert (relocated / "checkpoints" / f"{summary.best_uid}.pt").is_file()
    assert all((relocated / path).is_file() for path in stored_checkpoints(relocated))


def test_a_state_with_launch_relative_paths_still_resumes(interrupted, reference, tmp_path, monkeypatch):
    run_dir = tmp_path / "moved"
    shutil.copytree(interrupted / RUN, run_dir)
    with open(run_dir / "state.pkl", "rb") as stream:
        state = pickle.load(stream)
    for individual in [*state.population, *state.halloffame]:  # as the version before stored them
        individual.checkpoint = str(RUN / individual.checkpoint)
    with open(run_dir / "state.pkl", "wb") as stream:
        pickle.dump(state, stream)
    monkeypatch.chdir(tmp_path)
    resume(run_dir)
    assert read_logbook(run_dir / "logbook.jsonl") == reference[0]
    assert all(path.startswith("checkpoints/") for path in stored_checkpoints(run_dir))


def test_replay_and_report_of_a_copied_run_from_another_working_directory(reference, tmp_path, monkeypatch):
    _, run_dir = reference
    shutil.copytree(run_dir, tmp_path / "copied" / "run")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    replayed = CliRunner().invoke(main, ["replay", "../copied/run"])
    assert replayed.exit_code == 0, replayed.output
    assert len(read_logbook(tmp_path / "copied" / "run_replay" / "logbook.jsonl")) >= 1
    reported = CliRunner().invoke(main, ["report", "../copied/run", "../copied/run_replay", "--out", "../out"])
    assert reported.exit_code == 0, reported.output
    assert (tmp_path / "out" / "table1.csv").read_text().count("\n") == 3  # header, the run and its replay
    assert sorted(path.name for path in (tmp_path / "cwd").iterdir()) == []
