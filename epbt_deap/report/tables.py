"""Table 1 (final test accuracy) and Table 2 (epochs to exceed a baseline), as text and CSV.

Accuracies are percentages, like the paper's; ``std`` is the sample standard deviation
over seeds.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from epbt_deap.report.runs import RunRecord, mean_curve

TABLE1_COLUMNS = ("method", "runs", "epochs", "mean", "std")
TABLE2_COLUMNS = ("method", "baseline", "baseline_mean", "baseline_epochs", "epochs_to_exceed")
PERCENT = 100.0


def _final_tests(runs: list[RunRecord]) -> list[float]:
    """Each run's last recorded test accuracy of the best individual (runs without one skipped)."""
    return [run.test_curve[-1][1] for run in runs if run.test_curve]


def _final_epochs(runs: list[RunRecord]) -> int:
    return max(run.logbook[-1]["epochs"] for run in runs)


def _percent(value: float | None) -> float | None:
    return None if value is None else PERCENT * value


def final_accuracy_table(groups: dict[str, list[RunRecord]]) -> list[dict[str, Any]]:
    """Table 1: per method, runs with a test accuracy, epochs, mean and std of the final one (%)."""
    rows = []
    for label, runs in groups.items():
        finals = _final_tests(runs)
        rows.append(dict(zip(TABLE1_COLUMNS, (
            label,
            len(finals),
            _final_epochs(runs),
            _percent(float(np.mean(finals))) if finals else None,
            _percent(float(np.std(finals, ddof=1))) if len(finals) > 1 else None,
        ))))
    return rows


def epochs_to_exceed_table(groups: dict[str, list[RunRecord]]) -> list[dict[str, Any]]:
    """Table 2: for each method and each other method as baseline, the first epoch at which the
    method's mean test-accuracy curve exceeds the baseline's mean final test accuracy (None: never)."""
    curves = {label: mean_curve(runs) for label, runs in groups.items()}
    targets = {label: _final_tests(runs) for label, runs in groups.items()}
    rows = []
    for label, (epochs, mean, _) in curves.items():
        for baseline, finals in targets.items():
            if label == baseline:
                continue
            target = float(np.mean(finals)) if finals else math.inf
            above = np.flatnonzero(mean > target)
            rows.append(dict(zip(TABLE2_COLUMNS, (
                label,
                baseline,
                _percent(target) if finals else None,
                _final_epochs(groups[baseline]),
                int(epochs[above[0]]) if above.size else None,
            ))))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as aligned plain text: a header, a rule, numbers right-aligned, None as '-'."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    numeric = [all(isinstance(row.get(column), (int, float, type(None))) for row in rows) for column in columns]

    def line(values: list[str]) -> str:
        return "  ".join(value.rjust(width) if right else value.ljust(width)
                         for value, width, right in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * width for width in widths]), *map(line, cells)])


def write_csv(rows: list[dict[str, Any]], columns: Sequence[str], path: Path) -> None:
    """``rows`` as a CSV file with a header of ``columns``."""
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
