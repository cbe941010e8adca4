"""The paper's figures from grouped runs: test accuracy (Figures 2-4), the best individual's
loss ancestry (Figure 5) and its genes.

matplotlib is imported only when a figure is drawn (it is the optional ``plots`` extra);
its absence is a :class:`~epbt_deap.report.ReportError`. Error bars are the standard
error over seeds.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from epbt_deap.evolution.eq1 import binary_loss_curve
from epbt_deap.evolution.space import PARAMETER_NAMES
from epbt_deap.report import ReportError
from epbt_deap.report.runs import RunRecord, mean_curve
from epbt_deap.report.tables import PERCENT

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger("epbt_deap")

ANCESTRY_PANELS = 5  # runs shown in loss_ancestry.png, beside the cross-entropy panel
GRID_COLUMNS = 3


def _theta(row: dict[str, Any]) -> list[float] | None:
    genes = row["genes"]
    return [genes[name] for name in PARAMETER_NAMES] if all(name in genes for name in PARAMETER_NAMES) else None


def figure_class() -> type[Figure]:
    """matplotlib's Figure; a ReportError where the optional ``plots`` extra is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ReportError("matplotlib is not installed: pip install epbt-deap[plots]") from error
    return Figure


def _new_figure(width: float, height: float) -> Figure:
    return figure_class()(figsize=(width, height), layout="constrained")


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
            ax.plot(*binary_loss_curve(_theta(row), zero_at_perfect=True), color=colours.to_rgba(row["epochs"]))
        ax.set_title(f"{run.title}: {len(rows)} ancestors", fontsize=10)
    y = np.linspace(0.01, 1.0, 100)
    axes[-1].plot(y, -np.log(y), color="black")
    axes[-1].set_title("cross-entropy: -log(y)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("y (predicted probability of the true class)")
        ax.set_ylabel("loss - loss at y = 1")
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
