"""The one family of user-facing errors: the command line turns any of them into one line.

Torch-free, so that every module (and the command line before it imports torch) can use it.
"""
from __future__ import annotations


class EpbtError(Exception):
    """A problem the user can fix or act on; the message is one line.

    ``exit_code`` is the command line's exit status; ``resumable`` says that completed
    generations were kept and ``epbt-deap resume`` continues the run.
    """

    exit_code = 2
    resumable = False


class RunDirError(EpbtError):
    """A run directory that cannot be used or read (missing, holding another run, malformed files)."""


class WorkerError(EpbtError):
    """An evaluation failed in a worker; the message names the item. The completed generations are kept."""

    exit_code = 1
    resumable = True

    @classmethod
    def of(cls, item: object, reason: str | BaseException) -> WorkerError:
        """'evaluation of <uid> failed: <reason>', an exception given as 'Type: message'.

        A list of items (a vectorised group) is named by its items' uids.
        """
        if isinstance(reason, BaseException):
            reason = f"{type(reason).__name__}: {reason}"
        items = item if isinstance(item, list) else [item]
        names = ", ".join(str(getattr(one, "uid", one)) for one in items)
        return cls(f"evaluation of {names} failed: {reason}")


class GenerationFailedError(EpbtError):
    """No evaluation of a generation succeeded: the run stops rather than go on at fitness 0."""

    exit_code = 1
    resumable = True


class GenerationDivergedError(GenerationFailedError):
    """Every evaluation of a generation diverged. Resuming would repeat the same seeded
    training, so the hint is not to resume but to change what blows up."""

    resumable = False
