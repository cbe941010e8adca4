"""A run directory has one writer: a second one is refused, touching nothing; --overwrite deletes
only runs; readers work while a run trains; workers die with their main process."""
import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from epbt_deap.errors import RunDirBusyError, RunDirError
from epbt_deap.run import check_run_dir, resume, run
from epbt_deap.rundir import lock as lock_module
from epbt_deap.rundir.layout import RunLayout
from epbt_deap.rundir.lock import lock_holder, lock_run_dir
from epbt_deap.rundir.show import describe, read_view
from tests.helpers import read_jsonl, run_files, tiny, tiny_yaml

LONGER = {"evolution.generations": 5}


def cli(*args):
    return CliRunner().invoke(main, list(args))


def one_line_error(result, code=2):
    assert result.exit_code == code, result.output
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1, result.output
    return result.output


def test_a_held_lock_refuses_a_second_writer_naming_the_holder(tmp_path):
    with lock_run_dir(tmp_path):
        held, holder = lock_holder(tmp_path)
        assert held and (holder.pid, holder.host) == (os.getpid(), socket.gethostname())
        with pytest.raises(RunDirBusyError, match=f"in use by another epbt-deap process \\(pid {os.getpid()} on "):
            with lock_run_dir(tmp_path):
                pass
    assert lock_holder(tmp_path) == (False, None)
    with lock_run_dir(tmp_path):  # released: the next writer takes it
        pass


def test_a_readers_probe_never_makes_a_writer_fail(tmp_path):
    with lock_run_dir(tmp_path):
        pass
    reader = os.open(tmp_path / ".lock", os.O_RDONLY)
    fcntl.flock(reader, fcntl.LOCK_SH)  # a probe caught holding its shared lock for 50 ms
    threading.Timer(0.05, os.close, [reader]).start()
    with lock_run_dir(tmp_path):
        assert lock_holder(tmp_path)[0]


def test_where_the_file_system_has_no_flock_the_run_goes_on_unlocked_and_says_so(tmp_path, monkeypatch, caplog):
    def no_locks(descriptor, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock_module.fcntl, "flock", no_locks)
    with lock_run_dir(tmp_path):
        assert lock_holder(tmp_path) == (None, None)
    assert "does not support locks; nothing stops a second process" in caplog.text


def test_a_lock_file_this_user_cannot_read_tells_nothing_rather_than_crash(tmp_path, monkeypatch):
    """Another user's run under umask 077 (root, who runs these tests, reads anything: so a stand-in)."""
    (tmp_path / ".lock").write_text("")

    def refused(path, flags, *mode):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(lock_module.os, "open", refused)
    assert lock_holder(tmp_path) == (None, None)


def test_a_run_refuses_a_locked_run_directory_and_touches_nothing(tmp_path):
    run_dir = tmp_path / "run"
    run(tiny(), run_dir)
    before = run_files(run_dir)
    with lock_run_dir(run_dir):
        for attempt in (lambda: run(tiny(), run_dir, overwrite=True), lambda: resume(run_dir)):
            with pytest.raises(RunDirBusyError):
                attempt()
    assert run_files(run_dir) == before


@pytest.mark.slow
def test_while_a_run_trains_writers_are_refused_and_readers_work(tmp_path):
    config = tiny_yaml(tmp_path / "longer.yaml", LONGER)
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "evolve", "--config", str(config),
                                "--run-dir", str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while len(read_jsonl(run_dir / "logbook.jsonl")) < 1:
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    second = [cli("resume", str(run_dir)), cli("resume", str(run_dir), "--generations", "9"),
              cli("evolve", "--config", str(config), "--run-dir", str(run_dir), "--overwrite")]
    shown, exported = cli("show", str(run_dir)), cli("export", str(run_dir), "--out", str(tmp_path / "s.json"))
    assert process.poll() is None, "the run ended before the second writers were tried"
    for result in second:
        assert f"in use by another epbt-deap process (pid {process.pid} on {socket.gethostname()}, since " \
               in one_line_error(result)
        assert "evolve --config" in result.output
    assert shown.exit_code == 0 and f"running, pid {process.pid} on " in shown.output
    assert exported.exit_code == 0, exported.output
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert [row["gen"] for row in read_jsonl(run_dir / "logbook.jsonl")] == list(range(5))
    assert "stopped" not in cli("show", str(run_dir)).output


def thesis_folder(root):
    (root / "sub").mkdir(parents=True)
    (root / "thesis.tex").write_text("chapter 1")
    (root / "sub" / "data.csv").write_text("1,2")
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_folder_that_holds_no_run_is_never_deleted(tmp_path, overwrite):
    before = thesis_folder(tmp_path / "work")
    result = cli("evolve", "--config", "quickstart", "--run-dir", str(tmp_path / "work"), *overwrite)
    assert "is not empty and holds no epbt-deap run (sub, thesis.tex); nothing was deleted" in one_line_error(result)
    assert {path: path.read_bytes() for path in (tmp_path / "work").rglob("*") if path.is_file()} == before


@pytest.mark.parametrize("files", [{"config.yaml": "seed: 1"}, {"config.yaml": "seed: 1", "checkpoints/a.pt": "x"},
                                   {"config.yaml": "", "logbook.jsonl": "", "notes.txt": "mine"}])
def test_overwrite_recognises_a_run_by_what_a_run_writes_not_by_a_config_alone(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    with pytest.raises(RunDirError, match="holds no epbt-deap run"):
        check_run_dir(RunLayout.at(tmp_path), overwrite=True)
    assert all((tmp_path / name).exists() for name in files)


def test_a_run_directory_of_a_run_is_replaced_with_overwrite_and_an_empty_one_is_used(tmp_path):
    for name in ("config.yaml", "logbook.jsonl", "provenance.json", ".lock", ".state.pkl.x1.tmp"):
        (tmp_path / "run" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "run" / name).write_text("")
    (tmp_path / "run" / "checkpoints").mkdir()
    layout = RunLayout.at(tmp_path / "run")
    with pytest.raises(RunDirError, match="holds another run; pass --overwrite"):
        check_run_dir(layout, overwrite=False)
    assert [path.name for path in check_run_dir(layout, overwrite=True)] == [
        ".state.pkl.x1.tmp", "checkpoints", "config.yaml", "logbook.jsonl", "provenance.json"]  # never the lock
    (tmp_path / "empty").mkdir()
    assert check_run_dir(RunLayout.at(tmp_path / "empty"), overwrite=True) == []


def test_a_file_the_root_and_the_home_folder_are_refused(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("mine")
    assert one_line_error(cli("evolve", "--config", "quickstart", "--run-dir", str(tmp_path / "file"),
                              "--overwrite")) == f"error: run directory {tmp_path / 'file'} is a file, not a folder\n"
    assert (tmp_path / "file").read_text() == "mine"
    with pytest.raises(RunDirError, match="is the file-system root"):
        check_run_dir(RunLayout(Path("/")), overwrite=True)
    home = tmp_path / "home"
    before = thesis_folder(home)
    monkeypatch.setenv("HOME", str(home))
    result = cli("evolve", "--config", "quickstart", "--run-dir", "~", "--overwrite")
    assert f"run directory {home} is the home folder" in one_line_error(result)
    assert {path: path.read_bytes() for path in home.rglob("*") if path.is_file()} == before


def test_show_says_whether_a_process_holds_the_lock(tmp_path):
    run_dir = tmp_path / "run"
    run(tiny(), run_dir)
    assert ": finished\n" in "\n".join(describe(read_view(run_dir))) + "\n"
    with lock_run_dir(run_dir):
        assert f": running, pid {os.getpid()} on {socket.gethostname()}, since " in describe(read_view(run_dir))[0]


def child_processes(pid):
    """The pids of the live processes whose parent is ``pid``."""
    children = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            children.append(int(entry.name))
    return children


def descendants(pid):
    """The pids of the live processes below ``pid``: its children, theirs, and so on."""
    children = child_processes(pid)
    return children + [below for child in children for below in descendants(child)]


def alive(pid):
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finding a process's children here reads /proc")
def test_workers_exit_when_the_main_process_is_killed(tmp_path):
    config = tiny_yaml(tmp_path / "workers.yaml", {
        **LONGER, "evolution.population": 2, "evolution.elites": 1,
        "train.epochs_per_generation": 6,  # an evaluation (about 1 s) outlasts the check below
        "resources.cpu_workers": 1, "resources.threads_per_worker": 1})
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "evolve", "--config", str(config),
                                "--run-dir", str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not read_jsonl(run_dir / "logbook.jsonl"):  # generation 1 is training on the worker now
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    below = descendants(process.pid)  # the worker, and the server it was forked from
    assert below
    checkpoints = sorted((run_dir / "checkpoints").iterdir())
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10  # far longer than the evaluation the worker was running
    while any(alive(pid) for pid in below) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in below)
    assert sorted((run_dir / "checkpoints").iterdir()) == checkpoints  # no orphan went on writing
