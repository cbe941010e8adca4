"""TensorBoard scalars for a run, when the ``tensorboard`` package is installed."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from epbt_deap.errors import write_errors_named

logger = logging.getLogger("epbt_deap")


class TensorBoardScalars:
    """Writes fitness statistics, the best's test accuracy and the best's genes per generation.

    The x axis is the run's epoch clock. Without tensorboard installed it does nothing.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.debug("tensorboard is not installed; no TensorBoard scalars")
            self.writer = None
        else:
            with write_errors_named(log_dir):
                self.writer = SummaryWriter(log_dir=str(log_dir))

    def write(self, row: Mapping[str, Any], best_genes: Mapping[str, float]) -> None:
        """Add one generation's scalars; a failed write is a one-line RunWriteError naming the folder."""
        if self.writer is not None:
            with write_errors_named(self.log_dir):
                self._add(row, best_genes)

    def _add(self, row: Mapping[str, Any], best_genes: Mapping[str, float]) -> None:
        step = row["epochs"]
        for key in ("max", "avg", "min", "std"):
            if row[key] is not None:  # None: no validation set
                self.writer.add_scalar(f"fitness/{key}", row[key], step)
        if row.get("best_test") is not None:
            self.writer.add_scalar("test_accuracy/best", row["best_test"], step)
        for name, value in best_genes.items():
            self.writer.add_scalar(f"genes_of_best/{name}", value, step)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file, and stop its writer thread."""
        if self.writer is not None:
            with write_errors_named(self.log_dir):
                self.writer.close()
            self.writer = None
