"""The seam between the EA loop and the workers, torch-free: the run directory's layout.

A run directory is self-contained: every path stored in it (an individual's checkpoint
in the pickled state, ...) is relative to it, and :class:`RunLayout` resolves such a path
against wherever the directory is now. So a run resumes from any working directory, and
after its directory was moved or copied.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath

CONFIG_FILE = "config.yaml"
STATE_FILE = "state.pkl"
LOGBOOK_FILE = "logbook.jsonl"
LINEAGE_FILE = "lineage.jsonl"
BEST_FILE = "best.pt"
CHECKPOINT_DIR = "checkpoints"


@dataclass(frozen=True)
class RunLayout:
    """Where each file of one run directory lives, by absolute path."""

    root: Path

    @classmethod
    def at(cls, run_dir: str | Path) -> RunLayout:
        """The layout of ``run_dir``, made absolute against the current working directory now."""
        return cls(Path(os.path.abspath(Path(run_dir).expanduser())))

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def state(self) -> Path:
        return self.root / STATE_FILE

    @property
    def logbook(self) -> Path:
        return self.root / LOGBOOK_FILE

    @property
    def lineage(self) -> Path:
        return self.root / LINEAGE_FILE

    @property
    def best(self) -> Path:
        return self.root / BEST_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_DIR

    @staticmethod
    def checkpoint_of(uid: str) -> str:
        """The stored (run-directory-relative) path of the checkpoint that ``uid``'s evaluation writes."""
        return f"{CHECKPOINT_DIR}/{uid}.pt"

    @staticmethod
    def stored_checkpoint(path: str) -> str:
        """``path`` as the run directory stores it: ``checkpoints/<file name>``.

        Every checkpoint lives in the run directory's ``checkpoints/`` folder, so this also
        maps the absolute or launch-relative paths (``runs/q/checkpoints/g002-007.pt``) that
        runs written before paths were stored relative hold in their state.
        """
        return f"{CHECKPOINT_DIR}/{PurePath(path).name}"

    def resolve(self, stored: str) -> Path:
        """The absolute path of a path stored relative to the run directory."""
        return self.root / stored
