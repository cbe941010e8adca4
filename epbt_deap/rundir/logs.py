"""The run directory read back, torch-free: its config, logbook, lineage and provenance (for report,
replay and show), and the best individual's ancestry."""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from epbt_deap.config import Config, build_config
from epbt_deap.errors import RunDirError, message_of
from epbt_deap.evolution.individual import best_rank
from epbt_deap.rundir.layout import RunLayout


def _of(*types: type) -> Callable[[Any], bool]:
    """Whether a JSON value is one of ``types`` (true and false are not numbers here)."""
    return lambda value: isinstance(value, types) and not isinstance(value, bool)


is_count = _of(int)
is_real = _of(int, float)
_NUMBER = _of(int, float, type(None))  # null: no validation set, or no test


def _genes(value: Any) -> bool:
    return isinstance(value, dict) and all(is_real(gene) for gene in value.values())


# each required key and the check its value must pass
LOGBOOK_KEYS: dict[str, Callable[[Any], bool]] = {"gen": is_count, "epochs": is_count, "best_test": _NUMBER}
LINEAGE_KEYS: dict[str, Callable[[Any], bool]] = {"uid": _of(str), "generation": is_count,
                                                  "parent": _of(str, type(None)), "genes": _genes,
                                                  "fitness": _NUMBER, "epochs": is_count}
#: The top-level keys of every run's config.yaml, the oldest runs' included.
RUN_CONFIG_KEYS = ("name", "seed", "data", "train", "evolution", "resources")


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

    @property
    def generation(self) -> int:
        """The last completed generation (-1 while generation 0 trains)."""
        return int(self.logbook[-1]["gen"]) if self.logbook else -1

    @property
    def generations(self) -> int:
        """The generations the run is set to, generation 0 included."""
        return int(self.setting("evolution.generations") or self.generation + 1)

    @property
    def finished(self) -> bool:
        return self.generation >= self.generations - 1


def read_text(path: Path) -> str:
    """A run file's text, or a one-line RunDirError (unreadable, or not UTF-8 text)."""
    try:
        return path.read_text()
    except OSError as error:
        raise RunDirError(f"{path}: cannot read ({error.strerror})") from error
    except UnicodeDecodeError:
        raise RunDirError(f"{path}: not a text file (not UTF-8)") from None


def read_jsonl(path: Path, required: Mapping[str, Callable[[Any], bool]], live: bool = False) -> list[dict[str, Any]]:
    """The JSON object on each line of ``path``, each holding the ``required`` keys with values that pass
    their checks.

    With ``live`` (a run that may be writing the file now) a last line without its newline
    is left out: it is a row still being written.
    """
    rows = []
    text = read_text(path)
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
        wrong = [key for key, valid in required.items() if not valid(row[key])]
        if wrong:
            raise RunDirError(f"{path}:{number}: {', '.join(wrong)} has a value of the wrong type")
        rows.append(row)
    return rows


def read_config_mapping(path: Path) -> dict[str, Any]:
    """A run's ``config.yaml`` as a plain mapping (unvalidated: runs of older versions read too).

    Every top-level key a run writes must be there: a cut file would otherwise be completed
    with the defaults (the paper's CIFAR-10 setup) and taken for another run.
    """
    try:
        config = yaml.safe_load(read_text(path))
    except yaml.YAMLError as error:
        raise RunDirError(f"{path}: not valid YAML ({message_of(error)})") from error
    if not isinstance(config, dict):
        raise RunDirError(f"{path}: expected a mapping of config keys")
    missing = [key for key in RUN_CONFIG_KEYS if key not in config]
    if missing:
        raise RunDirError(f"{path}: damaged or cut short, it lacks {', '.join(missing)}")
    return config


def read_run_config(layout: RunLayout) -> Config:
    """The run's validated config, read from its ``config.yaml`` as :func:`read_config_mapping` checks it."""
    return build_config(read_config_mapping(layout.config))


def read_run_logs(run_dir: str | Path, live: bool = False) -> RunLogs:
    """Read ``config.yaml``, ``logbook.jsonl`` and (when present) ``lineage.jsonl`` of ``run_dir``.

    ``live``: the run may be in progress, so a half-written last line of either log is left
    out, and an empty or missing logbook (generation 0 still training) is no error.
    """
    run_dir = Path(run_dir)
    layout = RunLayout.at(run_dir)
    if not layout.root.is_dir():
        raise RunDirError(f"{run_dir}: {'a file, not a' if layout.root.exists() else 'no such'} run directory")
    training_generation_0 = live and layout.holds_run()  # no logbook yet: its first row ends generation 0
    for required in (layout.config, *([] if training_generation_0 else [layout.logbook])):
        if not required.is_file():
            raise RunDirError(f"{run_dir}: not a run directory (no {required.name})")
    logbook = read_jsonl(layout.logbook, LOGBOOK_KEYS, live) if layout.logbook.is_file() else []
    if not logbook and not live:
        raise RunDirError(f"{layout.logbook}: empty, the run finished no generation")
    lineage = read_jsonl(layout.lineage, LINEAGE_KEYS, live) if layout.lineage.is_file() else []
    return RunLogs(run_dir, read_config_mapping(layout.config), logbook, lineage)


def read_json(path: Path) -> Any:
    """A JSON file of the run directory, or a one-line RunDirError where it is damaged."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise RunDirError(f"{path}: unreadable ({error})") from error


def read_provenance(layout: RunLayout) -> list[dict[str, Any]]:
    """The entries of ``provenance.json``, one per start, resume or replay, oldest first ([] when absent)."""
    if not layout.provenance.exists():
        return []
    entries = read_json(layout.provenance)
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise RunDirError(f"{layout.provenance}: expected a list of entries")
    return entries


def best_ancestry(lineage_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The best individual's ancestry, generation 0 first: the best row by
    :func:`~epbt_deap.evolution.individual.best_rank` (the run's hall of fame ranks the same way,
    so this is best.pt's lineage) and its ``parent`` links back. Without validation (``data.val_size:
    0``, fitness null), the best is the newest individual that trained."""
    if not lineage_rows:
        return []
    by_uid = {row["uid"]: row for row in lineage_rows}
    chain = [max(lineage_rows, key=lambda row: best_rank(row["fitness"], row.get("status", "ok"), row["generation"],
                                                         row["uid"]))]
    while (parent := chain[-1]["parent"]) is not None:
        if parent not in by_uid:
            raise RunDirError(f"lineage: parent {parent} of {chain[-1]['uid']} is missing")
        chain.append(by_uid[parent])
    return chain[::-1]


def trained_ancestry(lineage_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`best_ancestry` without the ancestors whose evaluation failed or diverged: they trained
    nothing their children kept (the schedule that ``export`` writes and ``report`` draws)."""
    return [row for row in best_ancestry(lineage_rows) if row.get("status", "ok") == "ok"]
