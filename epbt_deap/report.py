"""The paper's tables and figures (Sections 4-5) from run directories.

Grouping: runs whose resolved configs are equal once ``name``, ``seed``, ``resources``,
``data.dir`` and ``data.download`` are left out are seeds of one method. A method is
labelled by its algorithm (``evolution.algorithm``, absent meaning ``epbt``) followed by
those of loss, model and dataset that differ between the methods, e.g.
``EPBT (taylorglo)`` against ``no PBT (cross_entropy)``. Methods that this leaves with
the same label get their run name (a ``_seed<N>``/``-s<N>`` suffix stripped) appended,
and then, if still equal, a number.

Accuracies in the tables are percentages, like the paper's; ``std`` is the sample
standard deviation over seeds, the figures' error bars the standard error.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from epbt_deap.contract import RunLogs, best_ancestry, read_run_logs
from epbt_deap.errors import EpbtError
from epbt_deap.space import PARAMETER_NAMES
from epbt_deap.taylorglo import binary_loss_curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger("epbt_deap")

DEFAULT_ALGORITHM = "epbt"
ALGORITHM_LABELS = {"epbt": "EPBT", "pbt": "PBT", "none": "no PBT"}
NOT_METHOD_KEYS = ("name", "seed", "resources", "data.dir", "data.download")
DESCRIPTIVE_KEYS = ("train.loss", "train.model", "data.dataset")
TABLE1_COLUMNS = ("method", "runs", "epochs", "mean", "std")
TABLE2_COLUMNS = ("method", "baseline", "baseline_mean", "baseline_epochs", "epochs_to_exceed")
SEED_SUFFIX = re.compile(r"[-_](seed|s)\d+$")
PERCENT = 100.0
ANCESTRY_PANELS = 5  # runs shown in loss_ancestry.png, beside the cross-entropy panel
GRID_COLUMNS = 3


class ReportError(EpbtError):
    """A run directory or file that cannot be reported on; the message is one line."""


@dataclass(frozen=True)
class RunRecord(RunLogs):
    """One run directory's logs, with what grouping runs into methods needs."""

    @property
    def algorithm(self) -> str:
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


@dataclass(frozen=True)
class Report:
    """What ``write_report`` produced: the two tables and the files, by name."""

    table1: list[dict[str, Any]]
    table2: list[dict[str, Any]]
    files: dict[str, Path]


def _without_nulls(tree: Any) -> Any:
    """``tree`` with every null-valued mapping entry removed, recursively."""
    if isinstance(tree, dict):
        return {key: _without_nulls(value) for key, value in tree.items() if value is not None}
    return tree


def load_run(run_dir: Path) -> RunRecord:
    """Read the run directory's config, logbook and lineage."""
    return RunRecord(**vars(read_run_logs(run_dir)))


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


def _theta(row: dict[str, Any]) -> list[float] | None:
    genes = row["genes"]
    return [genes[name] for name in PARAMETER_NAMES] if all(name in genes for name in PARAMETER_NAMES) else None


def _new_figure(width: float, height: float) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ReportError("matplotlib is not installed: pip install epbt-deap[plots]") from error
    return Figure(figsize=(width, height), layout="constrained")


def _grid(figure: Figure, panels: int, columns: int) -> list[Any]:
    """``panels`` axes in rows of ``columns``; the grid's unused cells removed."""
    rows = max(1, math.ceil(panels / columns))
    axes = list(figure.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes[panels:]:
        ax.remove()
    return axes[:panels]


def _zoom_to_second_half(ax: Any, curves: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """Limit ``ax`` to the second half of the epochs and the error bars drawn there."""
    last = max((epochs[-1] for epochs, _, _ in curves if epochs.size), default=None)
    if last is None:
        return
    low, high = math.inf, -math.inf
    for epochs, mean, sem in curves:
        tail = epochs >= last / 2
        if tail.any():
            low = min(low, PERCENT * (mean - sem)[tail].min())
            high = max(high, PERCENT * (mean + sem)[tail].max())
    pad = max(0.5, 0.1 * (high - low))
    ax.set_xlim(0.48 * last, 1.02 * last)
    ax.set_ylim(low - pad, high + pad)


def plot_accuracy(groups: dict[str, list[RunRecord]], path: Path) -> None:
    """Figures 2-4: the best individual's test accuracy against epochs, mean and standard
    error over seeds; the top panel zooms in on the second half of training."""
    figure = _new_figure(7.5, 8.0)
    zoom, full = figure.subplots(2, 1)
    curves = {f"{label} ({len(runs)} run{'s' if len(runs) > 1 else ''})": mean_curve(runs)
              for label, runs in groups.items()}
    for ax in (zoom, full):
        for label, (epochs, mean, sem) in curves.items():
            ax.errorbar(epochs, PERCENT * mean, yerr=PERCENT * sem, label=label, marker=".", capsize=2)
        ax.set_xlabel("training epochs")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    full.set_title("full run")
    full.legend(loc="lower right")
    _zoom_to_second_half(zoom, list(curves.values()))
    zoom.set_title("zoomed in: second half of training")
    figure.suptitle("Test accuracy of the best individual (mean ± standard error over seeds)")
    figure.savefig(path, dpi=120)


def plot_loss_ancestry(ancestries: list[tuple[RunRecord, list[dict[str, Any]]]], path: Path) -> None:
    """Figure 5: each run's best-individual ancestry of TaylorGLO losses in the 2-D binary
    modality, dark (early) to light (late), beside cross-entropy."""
    shown = []
    for run, rows in ancestries:
        if rows and all(_theta(row) for row in rows):
            shown.append((run, rows))
        else:
            logger.info("%s: no TaylorGLO ancestry (cross-entropy or no lineage), not in %s", run.run_dir, path.name)
    if len(shown) > ANCESTRY_PANELS:
        logger.info("%s shows the first %d of %d runs with TaylorGLO genes", path.name, ANCESTRY_PANELS, len(shown))
        shown = shown[:ANCESTRY_PANELS]
    figure = _new_figure(4.0 * GRID_COLUMNS, 3.4 * math.ceil((len(shown) + 1) / GRID_COLUMNS))
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    axes = _grid(figure, len(shown) + 1, GRID_COLUMNS)
    colours = ScalarMappable(Normalize(0, max((rows[-1]["epochs"] for _, rows in shown), default=1)),
                             colormaps["viridis"])
    for ax, (run, rows) in zip(axes, shown):
        for row in rows:
            ax.plot(*binary_loss_curve(_theta(row)), color=colours.to_rgba(row["epochs"]))
        ax.set_title(f"{run.title}: {len(rows)} ancestors", fontsize=10)
    y = np.linspace(0.01, 1.0, 100)
    axes[-1].plot(y, -np.log(y), color="black")
    axes[-1].set_title("cross-entropy: -log(y)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("y (predicted probability of the true class)")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    if shown:
        figure.colorbar(colours, ax=axes, label="epochs trained by the ancestor")
    figure.suptitle("Loss-function ancestry of the best individual (2-D binary modality: label (1, 0), prediction (y, 1 - y))")
    figure.savefig(path, dpi=120)


def plot_genes(ancestries: list[tuple[RunRecord, list[dict[str, Any]]]], path: Path) -> None:
    """Every gene along each run's best-individual ancestry: one panel per gene, each value
    drawn over the epochs its individual trained with it (from its parent's epochs to its own)."""
    shown = [(run, rows) for run, rows in ancestries if rows and rows[-1]["genes"]]
    names = list(dict.fromkeys(name for _, rows in shown for row in rows for name in row["genes"]))
    figure = _new_figure(3.2 * 4, 2.6 * max(1, math.ceil(len(names) / 4)) + 0.8)
    axes = _grid(figure, len(names), 4)
    for ax, name in zip(axes, names):
        for run, rows in shown:
            values = [row["genes"].get(name, math.nan) for row in rows]
            ax.plot([0] + [row["epochs"] for row in rows], values + values[-1:], drawstyle="steps-post",
                    label=run.title)
            if run.setting(f"evolution.genes.{name}.scale") == "log":
                ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epochs trained along the ancestry")
        ax.grid(alpha=0.3)
    if axes:
        figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
                      ncols=min(4, len(shown)), fontsize=9)
    figure.suptitle("Genes along the best individual's ancestry")
    figure.savefig(path, dpi=120)


def _write_csv(rows: list[dict[str, Any]], columns: Sequence[str], path: Path) -> None:
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def write_report(run_dirs: list[Path], out_dir: Path) -> Report:
    """Write ``table1.csv``, ``table2.csv``, ``accuracy.png``, ``loss_ancestry.png`` and
    ``genes.png`` for the runs in ``run_dirs`` into ``out_dir``."""
    if not run_dirs:
        raise ReportError("no run directories given")
    groups = group_runs([load_run(run_dir) for run_dir in run_dirs])
    for label, runs in groups.items():
        logger.info("method %s: %d runs (%s)", label, len(runs), ", ".join(str(run.run_dir) for run in runs))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {name: out_dir / name for name in
             ("table1.csv", "table2.csv", "accuracy.png", "loss_ancestry.png", "genes.png")}
    report = Report(final_accuracy_table(groups), epochs_to_exceed_table(groups), files)
    _write_csv(report.table1, TABLE1_COLUMNS, files["table1.csv"])
    _write_csv(report.table2, TABLE2_COLUMNS, files["table2.csv"])
    ancestries = [(run, best_ancestry(run.lineage)) for runs in groups.values() for run in runs]
    plot_accuracy(groups, files["accuracy.png"])
    plot_loss_ancestry(ancestries, files["loss_ancestry.png"])
    plot_genes(ancestries, files["genes.png"])
    logger.info("report written to %s", out_dir)
    return report
