"""The paper's tables and figures (Sections 4-5) from run directories.

- :mod:`~epbt_deap.report.runs`: reading run directories and grouping their runs into methods.
- :mod:`~epbt_deap.report.tables`: Table 1 (final accuracy), Table 2 (epochs to exceed), as text and CSV.
- :mod:`~epbt_deap.report.figures`: the accuracy, loss-ancestry and genes figures (matplotlib, imported lazily).
- :mod:`~epbt_deap.report.writer`: ``write_report``, all of them for some runs into one folder.
"""
from __future__ import annotations

from epbt_deap.errors import EpbtError


class ReportError(EpbtError):
    """A run directory or file that cannot be reported on; the message is one line."""
