"""Run directories read for the report, and grouped into methods.

Grouping: runs whose resolved configs are equal once ``name``, ``seed``, ``resources``,
``data.dir``, ``data.download``, ``replay_of`` and ``extensions`` (a run extended to N
generations is one run of N generations) are left out are seeds of one method. A
method is labelled by its algorithm (``evolution.algorithm``, absent meaning ``epbt``; a
replay of a best lineage is ``replay``, whatever its source evolved with) followed by
those of loss, model and dataset that differ between the methods, e.g.
``EPBT (taylorglo)`` against ``no PBT (cross_entropy)``. Methods that this leaves with
the same label get their run name (a ``_seed<N>``/``-s<N>`` suffix stripped) appended,
and then, if still equal, a number.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from epbt_deap.rundir.logs import RunLogs, read_run_logs

DEFAULT_ALGORITHM = "epbt"
ALGORITHM_LABELS = {"epbt": "EPBT", "pbt": "PBT", "none": "no PBT", "replay": "replay"}
NOT_METHOD_KEYS = ("name", "seed", "resources", "data.dir", "data.download", "replay_of",
                  "extensions")
DESCRIPTIVE_KEYS = ("train.loss", "train.model", "data.dataset")
SEED_SUFFIX = re.compile(r"[-_](seed|s)\d+$")


@dataclass(frozen=True)
class RunRecord(RunLogs):
    """One run directory's logs, with what grouping runs into methods needs."""

    @property
    def algorithm(self) -> str:
        if self.setting("replay_of"):
            return "replay"
        return self.setting("evolution.algorithm") or DEFAULT_ALGORITHM

    @property
    def method_key(self) -> str:
        """The config with what varies between seeds of one method left out.

        Unset (null) keys are dropped, so a run written before a key existed matches one
        written after, where the key holds its default of null.
        """
        settings = json.loads(json.dumps(self.config, default=str))
        settings.setdefault("evolution", {})["algorithm"] = self.algorithm
        for key in NOT_METHOD_KEYS:
            section, _, leaf = key.rpartition(".")
            ((settings.get(section) or {}) if section else settings).pop(leaf, None)
        return json.dumps(_without_nulls(settings), sort_keys=True)

    @property
    def test_curve(self) -> list[tuple[float, float]]:
        """(epochs, test accuracy of the best individual) for every logbook row that has one."""
        return [(row["epochs"], row["best_test"]) for row in self.logbook if row["best_test"] is not None]

    @property
    def base_name(self) -> str:
        """The run name without a ``_seed<N>``/``-s<N>`` suffix."""
        return SEED_SUFFIX.sub("", self.name)

    @property
    def title(self) -> str:
        return f"{self.base_name}, seed {self.seed}"


def _without_nulls(tree: Any) -> Any:
    """``tree`` with every null-valued mapping entry removed, recursively."""
    if isinstance(tree, dict):
        return {key: _without_nulls(value) for key, value in tree.items() if value is not None}
    return tree


def load_run(run_dir: Path) -> RunRecord:
    """Read the run directory's config, logbook and lineage; a run in progress reads as far as it is written."""
    return RunRecord(**vars(read_run_logs(run_dir, live=True)))


def _disambiguate(labels: list[str], suffixes: list[str]) -> list[str]:
    """Append its suffix to every label that occurs more than once."""
    counts = Counter(labels)
    return [f"{label} {suffix}" if counts[label] > 1 else label for label, suffix in zip(labels, suffixes)]


def group_runs(runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """Method label -> its runs (seeds, sorted); see the module docstring for the rule."""
    by_key: dict[str, list[RunRecord]] = defaultdict(list)
    for run in runs:
        by_key[run.method_key].append(run)
    methods = [sorted(group, key=lambda run: run.seed) for group in by_key.values()]
    firsts = [group[0] for group in methods]
    varying = [key for key in DESCRIPTIVE_KEYS if len({str(run.setting(key)) for run in firsts}) > 1]
    labels = [
        ALGORITHM_LABELS.get(run.algorithm, run.algorithm)
        + (f" ({', '.join(str(run.setting(key)) for key in varying)})" if varying else "")
        for run in firsts
    ]
    labels = _disambiguate(labels, [run.base_name for run in firsts])
    labels = _disambiguate(labels, [f"#{number}" for number in range(1, len(labels) + 1)])
    return dict(zip(labels, methods))


def mean_curve(runs: list[RunRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, standard error) over seeds of the best individual's test accuracy.

    Each epoch averages the runs that recorded it, so a longer seed extends the curve alone.
    """
    by_epoch: dict[float, list[float]] = defaultdict(list)
    for run in runs:
        for epochs, accuracy in run.test_curve:
            by_epoch[epochs].append(accuracy)
    epochs = np.array(sorted(by_epoch), dtype=float)
    values = [np.array(by_epoch[epoch]) for epoch in sorted(by_epoch)]
    mean = np.array([v.mean() for v in values])
    sem = np.array([v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else 0.0 for v in values])
    return epochs, mean, sem
