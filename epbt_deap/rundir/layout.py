"""Where each file of a run directory lives: its names and :class:`RunLayout`.

A run directory is self-contained: every path stored in it (an individual's checkpoint
in the pickled state) is relative to it, and :class:`RunLayout` resolves such a path
against wherever the directory is now. So a run resumes from any working directory, and
after its directory was moved or copied.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path, PurePath

CONFIG_FILE = "config.yaml"
STATE_FILE = "state.pkl"
LOGBOOK_FILE = "logbook.jsonl"
LINEAGE_FILE = "lineage.jsonl"
BEST_FILE = "best.pt"
CHECKPOINT_DIR = "checkpoints"
PROVENANCE_FILE = "provenance.json"
DAMAGED_PROVENANCE_FILE = "provenance.damaged.json"  # an unreadable provenance.json, kept aside
TENSORBOARD_DIR = "tensorboard"
LABEL_NOISE_FILE = "label_noise.json"
LOCK_FILE = ".lock"
#: Every name a run writes at the top of its directory; atomic writes add ``.<name>.*.tmp`` beside them.
RUN_FILES = (CONFIG_FILE, STATE_FILE, LOGBOOK_FILE, LINEAGE_FILE, BEST_FILE, CHECKPOINT_DIR, PROVENANCE_FILE,
             DAMAGED_PROVENANCE_FILE, TENSORBOARD_DIR, LABEL_NOISE_FILE, LOCK_FILE)
#: The files that, beside config.yaml, mark a folder as a run directory (config.yaml alone does not).
RUN_MARKERS = (LOCK_FILE, PROVENANCE_FILE, LOGBOOK_FILE, STATE_FILE)


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

    @property
    def provenance(self) -> Path:
        return self.root / PROVENANCE_FILE

    @property
    def damaged_provenance(self) -> Path:
        return self.root / DAMAGED_PROVENANCE_FILE

    @property
    def tensorboard(self) -> Path:
        return self.root / TENSORBOARD_DIR

    @property
    def label_noise(self) -> Path:
        return self.root / LABEL_NOISE_FILE

    @staticmethod
    def written_by_run(name: str) -> bool:
        """Whether ``name``, at the top of a run directory, is a file or folder a run writes."""
        if name in RUN_FILES:
            return True
        return name.endswith(".tmp") and any(name.startswith(f".{known}.") for known in RUN_FILES)

    def foreign_entries(self) -> list[str]:
        """The names at the top of the directory that no run writes, sorted ([] when it does not exist)."""
        if not self.root.is_dir():
            return []
        return sorted(path.name for path in self.root.iterdir() if not self.written_by_run(path.name))

    def holds_run(self) -> bool:
        """Whether the directory holds a run: its config and one more file that only a run writes."""
        return self.config.is_file() and any((self.root / marker).exists() for marker in RUN_MARKERS)

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


def utc_now() -> str:
    """The time now in UTC, ISO 8601 to the millisecond, as the run's files record times."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
