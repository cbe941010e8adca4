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
