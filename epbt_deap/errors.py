"""The one family of user-facing errors: the command line turns any of them into one line.

Torch-free, so that every module (and the command line before it imports torch) can use it.
"""
from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator


class EpbtError(Exception):
    """A problem the user can fix or act on; the message is one line.

    ``exit_code`` is the command line's exit status; ``resumable`` says that the run directory
    was left usable, so the command line adds what to do next (``epbt-deap resume``, or the
    same command again when the run had not started).
    """

    exit_code = 2
    resumable = False


class ConfigError(EpbtError):
    """A configuration mistake; the message is one line naming the key."""


class RunDirError(EpbtError):
    """A run directory that cannot be used or read (missing, holding another run, malformed files)."""


class RunDirBusyError(RunDirError):
    """Another live process holds the run directory's lock: it is that run's to write."""


WRONG_PATH_ERRNOS = (errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG)


class RunWriteError(EpbtError):
    """A file of the run directory could not be written (a full disk, an I/O error).

    Every writer keeps the last completed generation intact, so ``epbt-deap resume``
    continues the run once the cause is fixed.
    """

    exit_code = 1
    resumable = True

    @classmethod
    def of(cls, path: object, error: OSError) -> RunWriteError:
        """'cannot write <path>: <cause>', the cause as the OS names it ("no space left on device").

        A path that cannot be a file or folder there (under a file, a folder in a file's place,
        too long) is an :class:`UnwritablePathError`, which gets no hint to resume or rerun."""
        cause = error.strerror or str(error)
        kind = UnwritablePathError if error.errno in WRONG_PATH_ERRNOS else cls
        return kind(f"cannot write {path}: {cause[:1].lower()}{cause[1:]}")


class UnwritablePathError(RunWriteError):
    """A path that cannot be a file or folder there: the same command would fail the same way."""

    resumable = False


class WorkerError(EpbtError):
    """An evaluation failed in a worker; the message names the item. The completed generations are kept."""

    exit_code = 1
    resumable = True

    @classmethod
    def of(cls, item: object, reason: str | BaseException) -> WorkerError:
        """'evaluation of <uid> failed: <reason>', on one line (see :func:`one_line`).

        A list of items (a vectorised group) is named by its items' uids.
        """
        items = item if isinstance(item, list) else [item]
        names = ", ".join(str(getattr(one, "uid", one)) for one in items)
        return cls(f"evaluation of {names} failed: {one_line(reason)}")


class WorkerStartError(EpbtError):
    """A worker could not set itself up (its device, its copy of the data): no evaluation can run there."""

    exit_code = 1
    resumable = True

    @classmethod
    def of(cls, device: str, error: BaseException) -> WorkerStartError:
        """'a worker could not start on <device>: Type: message', on one line."""
        return cls(f"a worker could not start on {device}: {one_line(error)}")


def one_line(reason: str | BaseException) -> str:
    """``reason`` on one line, an exception as 'Type: message' (torch's messages span several lines)."""
    text = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else reason
    return " ".join(text.split())


def message_of(error: BaseException) -> str:
    """An exception's message on one line, without its type (the type's name where it has no message)."""
    return " ".join(str(error).split()) or type(error).__name__


@contextlib.contextmanager
def write_errors_named(path: object) -> Iterator[None]:
    """Turn an OS error raised while writing ``path`` into a one-line RunWriteError naming it."""
    try:
        yield
    except OSError as error:
        raise RunWriteError.of(path, error) from None


def raised_by_worker(item: object, error: BaseException) -> EpbtError:
    """What the main process raises for ``error`` raised while a worker evaluated ``item``.

    A write error stays itself: it is the run directory's failure, not the child's; so do a
    worker's failure to start, which is no item's, and a broken contract of ``evaluate``, whose
    message names its task.
    """
    return error if isinstance(error, PASSED_THROUGH) else WorkerError.of(item, error)


class GenerationFailedError(EpbtError):
    """No evaluation of a generation succeeded: the run stops rather than go on at fitness 0."""

    exit_code = 1
    resumable = True


class EvaluateContractError(EpbtError):
    """An ``evaluate`` function (a user's) returned something other than one EvalResult per task, each of
    its own task; rerunning would repeat it."""

    exit_code = 1


#: Errors a worker raises that the main process raises as they are (see :func:`raised_by_worker`).
PASSED_THROUGH = (RunWriteError, WorkerStartError, EvaluateContractError)


class GenerationDivergedError(GenerationFailedError):
    """Every evaluation of a generation diverged. Resuming would repeat the same seeded
    training, so the hint is not to resume but to change what blows up."""

    resumable = False
