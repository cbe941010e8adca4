"""The seam between the EA loop and the workers, torch-free.

- What crosses it: :class:`EvalTask` to a worker, :class:`EvalResult` back.
- Who carries it: a :class:`Pool` runs ``fn(context, item)`` on long-lived workers; an
  :class:`Observer` hears progress.
- Where it lands: the run directory, laid out by :class:`RunLayout` and read back by
  :func:`read_run_logs` (for report, replay and show).

A run directory is self-contained: every path stored in it (an individual's checkpoint
in the pickled state) is relative to it, and :class:`RunLayout` resolves such a path
against wherever the directory is now. So a run resumes from any working directory, and
after its directory was moved or copied.
"""
from __future__ import annotations

import datetime
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal, Protocol

import yaml

from epbt_deap.errors import RunDirError

Status = Literal["ok", "diverged", "failed"]


@dataclass(frozen=True)
class EvalTask:
    """Everything a worker needs to evaluate one individual; checkpoint paths are absolute."""

    uid: str
    genes: Mapping[str, float]
    parent_checkpoint: str | None
    output_checkpoint: str
    epochs: int
    start_epoch: int  # on the run's clock (generation x epochs per generation): sets the learning rate
    seed: int


@dataclass(frozen=True)
class EvalResult:
    """What a worker reports back; the main process writes it onto the individual."""

    uid: str
    fitness: float  # validation accuracy; nan for a run without a validation set (data.val_size: 0)
    test_accuracy: float
    train_loss: float
    epochs: int  # epochs the returned weights were trained in all, ancestors included
    checkpoint: str | None
    status: Status
    seconds: float
    detail: str = ""  # why an evaluation diverged or failed
    # fit and calibration (training.measure): val_nll, test_nll, test_ece, train_accuracy, and memorised with noise
    measures: dict[str, float] = field(default_factory=dict)

    @classmethod
    def failed(cls, task: EvalTask, reason: str) -> EvalResult:
        """The record of an evaluation that could not run: fitness 0, the weights unchanged."""
        return cls(task.uid, 0.0, 0.0, math.nan, 0, None, "failed", 0.0, reason)


class Pool(Protocol):
    """Runs ``fn(context, item)`` for many items on long-lived workers, one context each.

    ``on_result`` hears each result as it arrives; ``on_failure(item, reason)`` stands in
    for an item whose worker died on every try (without it, that raises). ``with pool:``
    closes the pool on the way out.
    """

    workers: int
    devices: list[str]  # one per worker
    threads_per_worker: int  # torch's intra-op threads in each worker

    def map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any],
            on_result: Callable[[Any], None] | None = None,
            on_failure: Callable[[Any, str], Any] | None = None) -> list[Any]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Observer(Protocol):
    """Receives progress events; the CLI draws them, the library only logs."""

    def generation_started(self, generation: int, evaluations: int) -> None: ...

    def evaluation_finished(self, result: EvalResult) -> None: ...

    def generation_finished(self, row: dict[str, Any]) -> None: ...

CONFIG_FILE = "config.yaml"
STATE_FILE = "state.pkl"
LOGBOOK_FILE = "logbook.jsonl"
LINEAGE_FILE = "lineage.jsonl"
BEST_FILE = "best.pt"
CHECKPOINT_DIR = "checkpoints"
PROVENANCE_FILE = "provenance.json"
TENSORBOARD_DIR = "tensorboard"
LABEL_NOISE_FILE = "label_noise.json"
LOCK_FILE = ".lock"
#: Every name a run writes at the top of its directory; atomic writes add ``.<name>.*.tmp`` beside them.
RUN_FILES = (CONFIG_FILE, STATE_FILE, LOGBOOK_FILE, LINEAGE_FILE, BEST_FILE, CHECKPOINT_DIR, PROVENANCE_FILE,
             TENSORBOARD_DIR, LABEL_NOISE_FILE, LOCK_FILE)
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


LOGBOOK_KEYS = ("epochs", "best_test")
LINEAGE_KEYS = ("uid", "generation", "parent", "genes", "fitness", "epochs")


@dataclass(frozen=True)
class RunLogs:
    """One run directory's config, logbook rows and lineage rows, as written."""

    run_dir: Path
    config: dict[str, Any]
    logbook: list[dict[str, Any]]
    lineage: list[dict[str, Any]]

    def setting(self, key: str) -> Any:
        """The config value at a dotted ``key``, None when absent."""
        value: Any = self.config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    @property
    def name(self) -> str:
        return str(self.config.get("name", self.run_dir.name))

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))


def utc_now() -> str:
    """The time now in UTC, ISO 8601 to the millisecond, as the run's files record times."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def read_jsonl(path: Path, required: Sequence[str], live: bool = False) -> list[dict[str, Any]]:
    """The JSON object on each line of ``path``, each holding the ``required`` keys.

    With ``live`` (a run that may be writing the file now) a last line without its newline
    is left out: it is a row still being written.
    """
    rows = []
    try:
        text = path.read_text()
    except OSError as error:
        raise RunDirError(f"{path}: cannot read ({error.strerror})") from error
    lines = text.splitlines()
    if live and lines and not text.endswith("\n"):
        lines.pop()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise RunDirError(f"{path}:{number}: not valid JSON ({error.msg})") from error
        if not isinstance(row, dict):
            raise RunDirError(f"{path}:{number}: expected a JSON object")
        missing = [key for key in required if key not in row]
        if missing:
            raise RunDirError(f"{path}:{number}: missing {', '.join(missing)}")
        rows.append(row)
    return rows


def read_config_mapping(path: Path) -> dict[str, Any]:
    """A run's ``config.yaml`` as a plain mapping (unvalidated: runs of older versions read too)."""
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as error:
        raise RunDirError(f"{path}: cannot read ({error.strerror})") from error
    except yaml.YAMLError as error:
        raise RunDirError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from error
    if not isinstance(config, dict):
        raise RunDirError(f"{path}: expected a mapping of config keys")
    return config


def read_run_logs(run_dir: str | Path, live: bool = False) -> RunLogs:
    """Read ``config.yaml``, ``logbook.jsonl`` and (when present) ``lineage.jsonl`` of ``run_dir``.

    ``live``: the run may be in progress, so a half-written last line of either log is left
    out, and an empty logbook (generation 0 still training) is no error.
    """
    run_dir = Path(run_dir)
    layout = RunLayout.at(run_dir)
    if not layout.root.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    for required in (layout.config, layout.logbook):
        if not required.is_file():
            raise RunDirError(f"{run_dir}: not a run directory (no {required.name})")
    logbook = read_jsonl(layout.logbook, LOGBOOK_KEYS, live)
    if not logbook and not live:
        raise RunDirError(f"{layout.logbook}: empty, the run finished no generation")
    lineage = read_jsonl(layout.lineage, LINEAGE_KEYS, live) if layout.lineage.is_file() else []
    return RunLogs(run_dir, read_config_mapping(layout.config), logbook, lineage)


def read_provenance(layout: RunLayout) -> list[dict[str, Any]]:
    """The entries of ``provenance.json``, one per start, resume or replay, oldest first ([] when absent)."""
    if not layout.provenance.exists():
        return []
    try:
        entries = json.loads(layout.provenance.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RunDirError(f"{layout.provenance}: unreadable ({error})") from error
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise RunDirError(f"{layout.provenance}: expected a list of entries")
    return entries


def best_ancestry(lineage_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The best individual's ancestry, generation 0 first: the row with the highest fitness
    (ties: the latest generation, then the latest row) and its ``parent`` links back.

    A run without validation (``data.val_size: 0``, fitness null) has no best by fitness:
    its best is the latest individual that trained (status ok).
    """
    scored = [(row["fitness"], row["generation"], index) for index, row in enumerate(lineage_rows)
              if row["fitness"] is not None and not math.isnan(row["fitness"])]
    if not scored:
        scored = [(0.0, row["generation"], index) for index, row in enumerate(lineage_rows)
                  if row["fitness"] is None and row.get("status", "ok") == "ok"]
    if not scored:
        return []
    by_uid = {row["uid"]: row for row in lineage_rows}
    chain = [lineage_rows[max(scored)[2]]]
    while (parent := chain[-1]["parent"]) is not None:
        if parent not in by_uid:
            raise RunDirError(f"lineage: parent {parent} of {chain[-1]['uid']} is missing")
        chain.append(by_uid[parent])
    return chain[::-1]
