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

TABLE1_COLUMNS = ("method", "runs", "epochs", "mean", "std", "test_nll", "test_ece", "train", "memorised")
#: Table 1's columns beside accuracy: the best individual's last logbook value, mean over runs (True: as %).
FINAL_MEASURES = {"test_nll": ("best_test_nll", False), "test_ece": ("best_test_ece", False),
                  "train": ("best_train_accuracy", True), "memorised": ("best_memorised", True)}
TABLE2_COLUMNS = ("method", "baseline", "baseline_mean", "baseline_epochs", "epochs_to_exceed")
PERCENT = 100.0


def _final_tests(runs: list[RunRecord]) -> list[float]:
    """Each run's last recorded test accuracy of the best individual (runs without one skipped)."""
    return [run.test_curve[-1][1] for run in runs if run.test_curve]


def _final_epochs(runs: list[RunRecord]) -> int:
    return max(run.logbook[-1]["epochs"] for run in runs)


def _final_mean(runs: list[RunRecord], key: str) -> float | None:
    """The mean over runs of the last logbook row's ``key``; None where no run recorded it."""
    values = [run.logbook[-1].get(key) for run in runs]
    values = [value for value in values if value is not None]
    return float(np.mean(values)) if values else None


def _percent(value: float | None) -> float | None:
    return None if value is None else PERCENT * value


def final_accuracy_table(groups: dict[str, list[RunRecord]]) -> list[dict[str, Any]]:
    """Table 1: per method, runs with a test accuracy, epochs, mean and std of the final one (%),
    and the mean of the best individual's final test NLL, test ECE, training accuracy (%) and
    memorised noisy labels (%)."""
    rows = []
    for label, runs in groups.items():
        finals = _final_tests(runs)
        measures = {column: _final_mean(runs, key) for column, (key, _) in FINAL_MEASURES.items()}
        rows.append({
            "method": label,
            "runs": len(finals),
            "epochs": _final_epochs(runs),
            "mean": _percent(float(np.mean(finals))) if finals else None,
            "std": _percent(float(np.std(finals, ddof=1))) if len(finals) > 1 else None,
            **{column: _percent(value) if FINAL_MEASURES[column][1] else value for column, value in measures.items()},
        })
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
    """``rows`` as a CSV file with a header of ``columns``, its folder made where missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
