"""A progress bar per generation, counting its models as they finish: the command line's and the notebook's.

``tqdm.auto`` draws a widget in Jupyter and text in a terminal, so one observer serves both.
"""
from __future__ import annotations

import math
from typing import Any

from epbt_deap.execution.protocol import EvalResult


class GenerationProgress:
    """An :class:`~epbt_deap.execution.protocol.Observer` that shows a generation's progress and the last
    fitness; ``label`` names the bar ("generation 3") and ``bar_options`` go to ``tqdm``."""

    def __init__(self, label: str = "generation", **bar_options: Any) -> None:
        self.label = label
        self.bar_options = bar_options
        self.bar: Any = None

    def generation_started(self, generation: int, evaluations: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=evaluations, desc=f"{self.label} {generation}", unit="model", leave=False,
                        **self.bar_options)

    def evaluation_finished(self, result: EvalResult) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(last="n/a" if math.isnan(result.fitness) else f"{result.fitness:.3f}")

    def generation_finished(self, row: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
