"""One writer per run directory: an exclusive ``flock`` on the run's ``.lock`` file.

- **Writers** (evolve, resume, replay) hold the lock for as long as they write. The
  kernel drops it when the process dies, however it dies, so a killed run never needs
  cleaning up by hand. The lock file is never deleted: a deleted lock file would let two
  writers lock two different files.
- **The holder** writes who it is (pid, host, start time, command) into the file, for the
  one-line refusal a second writer gets and for ``show`` (a released lock's record is stale,
  and is read only while the lock is held).
- **Readers** (show, report, export) take no lock. :func:`lock_holder` probes with a
  shared lock held for an instant, and a writer retries for a moment before it concludes
  that the lock is taken, so a probe never makes a writer fail.
- **File systems without flock** (some network and FUSE mounts answer ENOLCK or
  EOPNOTSUPP): the writer logs a warning and runs unlocked, since refusing would make
  the tool unusable there; nothing then stops a second writer.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from epbt_deap.errors import RunDirBusyError, write_errors_named
from epbt_deap.rundir.layout import LOCK_FILE, utc_now

logger = logging.getLogger("epbt_deap")

TAKEN = (errno.EWOULDBLOCK, errno.EAGAIN)
UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)
ACQUIRE_PATIENCE_S = 0.25  # how long a writer retries a taken lock: far longer than a reader's probe holds it
RETRY_INTERVAL_S = 0.01


@dataclass(frozen=True)
class Holder:
    """The process that holds (or last held) a run directory's lock."""

    pid: int
    host: str
    started: str
    command: str

    @classmethod
    def this_process(cls) -> Holder:
        return cls(os.getpid(), socket.gethostname(), utc_now(), shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]))

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.started}: {self.command}"


def _try_lock(descriptor: int, operation: int) -> bool | None:
    """``flock`` without blocking: True when taken by us, False when another holds it, None where unsupported."""
    try:
        fcntl.flock(descriptor, operation | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in TAKEN:
            return False
        if error.errno in UNSUPPORTED:
            return None
        raise
    return True


def _read_holder(path: Path) -> Holder | None:
    """The holder recorded in the lock file at ``path``; None when it is absent, empty or unreadable."""
    try:
        return Holder(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


@contextlib.contextmanager
def lock_run_dir(root: Path) -> Iterator[None]:
    """Hold the lock of the existing directory ``root`` for the ``with`` block.

    Raises a one-line RunDirBusyError (exit code 2) naming the holder when another live
    process has it; then nothing was written.
    """
    path = root / LOCK_FILE
    with write_errors_named(path):
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        taken = _try_lock(descriptor, fcntl.LOCK_EX)
        deadline = time.monotonic() + ACQUIRE_PATIENCE_S
        while taken is False and time.monotonic() < deadline:
            time.sleep(RETRY_INTERVAL_S)
            taken = _try_lock(descriptor, fcntl.LOCK_EX)
        if taken is False:
            raise busy(root, _read_holder(path))
        if taken is None:
            logger.warning("the file system of %s does not support locks; nothing stops a second process "
                           "from writing this run directory", root)
        with write_errors_named(path):
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, json.dumps(asdict(Holder.this_process())).encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def describe_holder(holder: Holder | None) -> str:
    """Who holds a lock, or 'holder unknown' where its file could not tell."""
    return holder.describe() if holder else "holder unknown"


def busy(root: Path, holder: Holder | None) -> RunDirBusyError:
    """The one-line refusal a second writer gets."""
    return RunDirBusyError(f"{root} is in use by another epbt-deap process "
                           f"({describe_holder(holder)}); wait for it to finish or stop it")


def refuse_if_locked(root: Path) -> None:
    """Raise :func:`busy` at once, touching nothing, when a live process holds ``root``'s lock."""
    held, holder = lock_holder(root)
    if held:
        raise busy(root, holder)


def lock_holder(root: Path) -> tuple[bool | None, Holder | None]:
    """Whether a live process holds ``root``'s lock (None: this file system cannot tell), and who.

    The probe never blocks: it takes a shared lock for an instant, which a writer's
    retries outlast.
    """
    path = root / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return False, None
    except PermissionError:  # another user's run, its lock file unreadable here (umask 077)
        return None, None
    try:
        free = _try_lock(descriptor, fcntl.LOCK_SH)
    finally:
        os.close(descriptor)
    held = None if free is None else not free
    return held, _read_holder(path) if held else None
