"""``write_report``: the tables and figures of some runs, written into one folder."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from epbt_deap.errors import write_errors_named
from epbt_deap.report import ReportError
from epbt_deap.report.figures import figure_class, plot_accuracy, plot_genes, plot_loss_ancestry
from epbt_deap.report.runs import RunRecord, group_runs, load_run
from epbt_deap.report.tables import (TABLE1_COLUMNS, TABLE2_COLUMNS, epochs_to_exceed_table, final_accuracy_table,
                                     write_csv)
from epbt_deap.rundir.lock import describe_holder, lock_holder
from epbt_deap.rundir.logs import trained_ancestry

logger = logging.getLogger("epbt_deap")


@dataclass(frozen=True)
class Report:
    """What ``write_report`` produced: the two tables and the files, by name."""

    table1: list[dict[str, Any]]
    table2: list[dict[str, Any]]
    files: dict[str, Path]


def unfinished(record: RunRecord) -> str:
    """Why ``record`` cannot be reported yet: it is still training, or it stopped before its end."""
    where = (f"after generation {record.generation} of 0 to {record.generations - 1}" if record.logbook
             else f"in generation 0 of 0 to {record.generations - 1}")
    held, holder = lock_holder(record.run_dir)
    if held:
        return (f"{record.run_dir} is still running ({describe_holder(holder)}), "
                f"{where}: report it when it ends, or leave it out of the report")
    return f"{record.run_dir} stopped {where}: resume it, or leave it out of the report"


def write_report(run_dirs: list[Path], out_dir: Path) -> Report:
    """Write ``table1.csv``, ``table2.csv``, ``accuracy.png``, ``loss_ancestry.png`` and
    ``genes.png`` for the runs in ``run_dirs`` into ``out_dir``."""
    if not run_dirs:
        raise ReportError("no run directories given")
    figure_class()  # the figures need the plots extra: say so before any work
    first_named: dict[Path, Path] = {}
    for run_dir in run_dirs:  # a run named twice would count as one more seed of its method
        resolved = Path(run_dir).resolve()
        if resolved in first_named:
            raise ReportError(f"{first_named[resolved]} and {run_dir} are the same run: name each run once")
        first_named[resolved] = Path(run_dir)
    records = [load_run(run_dir) for run_dir in run_dirs]
    for record in records:  # its "final" accuracy would stand beside others' at more epochs
        if not record.finished:
            raise ReportError(unfinished(record))
    groups = group_runs(records)
    for label, runs in groups.items():
        logger.info("method %s: %d runs (%s)", label, len(runs), ", ".join(str(run.run_dir) for run in runs))
    out_dir = Path(out_dir)
    files = {name: out_dir / name for name in
             ("table1.csv", "table2.csv", "accuracy.png", "loss_ancestry.png", "genes.png")}
    report = Report(final_accuracy_table(groups), epochs_to_exceed_table(groups), files)
    ancestries = [(run, trained_ancestry(run.lineage)) for runs in groups.values() for run in runs]
    with write_errors_named(out_dir):  # a folder that cannot be made or written: one line
        out_dir.mkdir(parents=True, exist_ok=True)
        write_csv(report.table1, TABLE1_COLUMNS, files["table1.csv"])
        write_csv(report.table2, TABLE2_COLUMNS, files["table2.csv"])
        plot_accuracy(groups, files["accuracy.png"])
        plot_loss_ancestry(ancestries, files["loss_ancestry.png"])
        plot_genes(ancestries, files["genes.png"])
    logger.info("report written to %s", out_dir)
    return report
