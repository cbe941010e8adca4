"""Per-generation population statistics for the logbook."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class PopulationStatistics:
    """Like ``deap.tools.Statistics``: ``compile(population)`` gives one logbook row.

    Fitness ``avg``/``std``/``min``/``max``, plus ``best_test`` (test accuracy of the
    best-fitness individual, when recorded) and ``epochs``, the run's clock: epochs of
    training per lineage so far, (newest generation + 1) x epochs per generation.
    """

    fields = ["avg", "std", "min", "max", "best_test", "epochs"]

    def __init__(self, epochs_per_generation: int) -> None:
        self.epochs_per_generation = epochs_per_generation

    def compile(self, population: Sequence[Any]) -> dict[str, float | int | None]:
        fitness = np.array([ind.fitness.values[0] for ind in population], dtype=float)
        best = population[int(np.argmax(fitness))]
        return {
            "avg": float(fitness.mean()),
            "std": float(fitness.std()),
            "min": float(fitness.min()),
            "max": float(fitness.max()),
            "best_test": best.metrics.get("test_accuracy"),
            "epochs": (max(ind.generation for ind in population) + 1) * self.epochs_per_generation,
        }
