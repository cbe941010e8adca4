"""A full disk or an I/O error in any writer of the run directory is one line naming the path and
the cause, exit code 1, and the run resumes to the uninterrupted logbook once space is free."""
import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from cli.main import main
from epbt_deap.errors import RunWriteError, UnwritablePathError, raised_by_worker
from epbt_deap.execution.pool import InProcessPool
from epbt_deap.run import resume, run
from epbt_deap.rundir import checkpoints, recorder
from epbt_deap.rundir.checkpoints import remove_unreferenced
from epbt_deap.rundir.tensorboard import TensorBoardScalars
from tests.helpers import read_jsonl, read_logbook, tiny, tiny_yaml


def evolve_on_the_command_line(overrides, run_dir, tmp_path):
    """``epbt-deap evolve`` of the tiny run with ``overrides`` into ``run_dir``, in this process (so that
    patched writers apply)."""
    path = tiny_yaml(tmp_path / "config.yaml", overrides)
    return CliRunner().invoke(main, ["evolve", "--config", str(path), "--run-dir", str(run_dir)])


FULL_DEVICE = Path("/dev/full")  # every write to it fails with ENOSPC, as on a full disk
needs_full_device = pytest.mark.skipif(not FULL_DEVICE.exists(), reason="the injected full disk is /dev/full, absent")


def untimed_lineage(run_dir):
    """The lineage rows without how long each evaluation took, which no two runs share."""
    rows = read_jsonl(run_dir / "lineage.jsonl")
    return [{key: value for key, value in row.items() if key != "seconds"} for row in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run(tiny(), run_dir)
    return read_logbook(run_dir / "logbook.jsonl"), untimed_lineage(run_dir)


class FullOnce:
    """Counts the writes whose file name starts with ``name``; the ``nth`` of them finds the disk full."""

    def __init__(self, name, nth):
        self.name, self.nth, self.seen = name, nth, 0

    def hits(self, file_name):
        if not file_name.startswith(self.name):
            return False
        self.seen += 1
        return self.seen == self.nth


def fill_atomic_writes(monkeypatch, full):
    """Temporary files of atomic writes (checkpoints, state, best.pt) that ``full`` picks write to /dev/full."""
    def mkstemp(dir, prefix, suffix):
        handle, path = tempfile.mkstemp(dir=dir, prefix=prefix, suffix=suffix)
        if full.hits(prefix[1:]):
            device = os.open(FULL_DEVICE, os.O_WRONLY)
            os.dup2(device, handle)
            os.close(device)
        return handle, path

    monkeypatch.setattr(checkpoints, "tempfile", SimpleNamespace(mkstemp=mkstemp))


def fill_appends(monkeypatch, full):
    """Appends to the logs (logbook, lineage) that ``full`` picks write to /dev/full."""
    def open_for_append(path, mode):
        return open(FULL_DEVICE if full.hits(Path(path).name) else path, mode)

    monkeypatch.setattr(recorder, "open", open_for_append, raising=False)


def fill_tensorboard(monkeypatch, full):
    add = TensorBoardScalars._add

    def add_unless_full(self, row, genes):
        if full.hits("tensorboard"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        add(self, row, genes)

    monkeypatch.setattr(TensorBoardScalars, "_add", add_unless_full)


WRITERS = {  # writer: (how the disk fills, the name its write starts with, which write fails, the path named)
    "checkpoint": (fill_atomic_writes, "g001-", 2, "checkpoints/g001-"),
    "state": (fill_atomic_writes, "state.pkl", 2, "state.pkl"),
    "best.pt": (fill_atomic_writes, "best.pt", 2, "best.pt"),
    "logbook": (fill_appends, "logbook.jsonl", 2, "logbook.jsonl"),
    "lineage": (fill_appends, "lineage.jsonl", 2, "lineage.jsonl"),
    "tensorboard": (fill_tensorboard, "tensorboard", 2, "tensorboard"),
}


@needs_full_device
@pytest.mark.parametrize("writer", WRITERS)
def test_a_full_disk_in_any_writer_is_named_and_the_run_resumes_once_space_is_free(
        tmp_path, monkeypatch, reference, writer):
    fill, name, nth, named = WRITERS[writer]
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patches:
        full = FullOnce(name, nth)
        fill(patches, full)
        exited = evolve_on_the_command_line({}, run_dir, tmp_path)
        assert full.seen >= nth, f"the {writer} was written fewer than {nth} times"
    stderr = exited.stderr
    assert exited.exit_code == 1
    assert stderr.startswith(f"error: cannot write {run_dir}/{named}") and len(stderr.strip().splitlines()) == 1
    assert ": no space left on device; the completed generations are kept; continue with: epbt-deap resume" in stderr
    assert all(row.get("status", "ok") == "ok" for row in read_jsonl(run_dir / "lineage.jsonl"))
    resume(run_dir)
    assert (read_logbook(run_dir / "logbook.jsonl"), untimed_lineage(run_dir)) == reference
    assert tensorboard_steps(run_dir) == {1, 2, 3}  # no generation missing, whichever writer failed


def tensorboard_steps(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {event.step for event in events.Scalars("fitness/max")}


def test_an_os_error_in_a_worker_stays_a_write_error_not_a_failed_evaluation(tmp_path):
    error = RunWriteError.of(tmp_path / "checkpoints" / "g001-000.pt", OSError(errno.EIO, os.strerror(errno.EIO)))
    assert raised_by_worker("g001-000", error) is error
    assert str(error) == f"cannot write {tmp_path}/checkpoints/g001-000.pt: input/output error"

    def write_fails(context, item):
        raise error

    with InProcessPool(lambda device: None, ()) as pool, pytest.raises(RunWriteError):
        pool.map(write_fails, ["g001-000"], on_failure=lambda item, reason: pytest.fail("recorded as failed"))


def can_mount_tmpfs(folder):
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode:
        return False
    subprocess.run(["umount", str(folder)], check=True)
    return True


WORKERS = {"resources.cpu_workers": 1, "resources.threads_per_worker": 1}


@pytest.mark.slow
def test_a_real_full_tmpfs_stops_the_run_with_one_line_and_resume_finishes_it(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None or not can_mount_tmpfs(disk):
        pytest.skip("this machine does not let the tests mount a tmpfs (it needs root, outside a container's limits)")
    reference = tmp_path / "reference"
    run(tiny({**WORKERS, "resources.cpu_workers": 0}), reference)  # the same run in-process
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)  # generation 0 fits
    try:
        run_dir = disk / "run"
        exited = evolve_on_the_command_line(WORKERS, run_dir, tmp_path)  # a worker writes
        stderr = exited.stderr
        assert exited.exit_code == 1
        assert stderr.startswith(f"error: cannot write {run_dir}/") and len(stderr.strip().splitlines()) == 1
        assert ": no space left on device; the completed generations are kept" in stderr
        assert all(row.get("status", "ok") == "ok" for row in read_jsonl(run_dir / "lineage.jsonl"))
        subprocess.run(["mount", "-o", "remount,size=32m", str(disk)], check=True)  # space freed
        resume(run_dir)
        assert read_logbook(run_dir / "logbook.jsonl") == read_logbook(reference / "logbook.jsonl")
        assert untimed_lineage(run_dir) == untimed_lineage(reference)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_checkpoint_that_cannot_be_removed_is_one_line(tmp_path, monkeypatch):
    """Cleaning up runs after the state is saved: a read-only file system then costs nothing computed."""
    (tmp_path / "old.pt").write_bytes(b"")
    (tmp_path / "live.pt").write_bytes(b"")

    def read_only(path, missing_ok=False):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(RunWriteError, match=r"^cannot write .*old\.pt: read-only file system$"):
        remove_unreferenced(tmp_path, [tmp_path / "live.pt"])


def test_the_logs_of_a_generation_are_on_disk_before_its_state(tmp_path, monkeypatch):
    """After a power cut, a state that counts a generation finds its log rows (both are fsynced, logs first)."""
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}")).name))
                        or fsync(fd))
    monkeypatch.setattr(os, "replace", lambda source, target: events.append(("replace", Path(target).name))
                        or replace(source, target))
    run(tiny({"evolution.generations": 1}), tmp_path / "run")
    state = events.index(("replace", "state.pkl"))
    assert {("fsync", "lineage.jsonl"), ("fsync", "logbook.jsonl")} <= set(events[:state])


def test_a_run_directory_that_cannot_exist_there_gets_no_hint_to_rerun_or_resume(tmp_path):
    (tmp_path / "afile").write_text("")
    result = evolve_on_the_command_line({}, tmp_path / "afile" / "run", tmp_path)
    assert result.exit_code == 1
    assert result.output == f"error: cannot write {tmp_path / 'afile' / 'run'}: not a directory\n"
    full = RunWriteError.of("x", OSError(errno.ENOSPC, "No space left on device"))
    folder = RunWriteError.of("x", OSError(errno.EISDIR, "Is a directory"))
    assert full.resumable and type(full) is RunWriteError
    assert not folder.resumable and isinstance(folder, UnwritablePathError)
