"""Per-generation population statistics for the logbook."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: The best individual's measures (:func:`epbt_deap.execution.training.measure`) that its logbook row
#: carries as ``best_<name>``.
BEST_MEASURES = ("val_nll", "test_nll", "test_ece", "train_accuracy", "memorised")


class PopulationStatistics:
    """Like ``deap.tools.Statistics``: ``compile(population)`` gives one logbook row.

    Fitness ``avg``/``std``/``min``/``max``, plus ``best_test`` (test accuracy of the best
    individual, by :attr:`~epbt_deap.evolution.individual.Individual.best_rank`, when recorded),
    its ``best_<measure>`` (NLL, ECE, training accuracy, memorised noisy labels; None where not
    recorded) and ``epochs``, the run's clock: epochs of training per lineage so far, (newest
    generation + 1) x epochs per generation. Without a validation set (fitness nan) the fitness
    statistics are None.
    """

    fields = ["avg", "std", "min", "max", "best_test", *(f"best_{name}" for name in BEST_MEASURES), "epochs"]

    def __init__(self, epochs_per_generation: int) -> None:
        self.epochs_per_generation = epochs_per_generation

    def compile(self, population: Sequence[Any]) -> dict[str, float | int | None]:
        fitness = np.array([ind.fitness.values[0] for ind in population], dtype=float)
        best = max(population, key=lambda individual: individual.best_rank)
        summaries = {"avg": np.mean, "std": np.std, "min": np.min, "max": np.max}
        validated = not np.isnan(fitness).all()
        return {
            **{key: float(summary(fitness)) if validated else None for key, summary in summaries.items()},
            "best_test": best.metrics.get("test_accuracy"),
            **{f"best_{name}": best.metrics.get(name) for name in BEST_MEASURES},
            "epochs": (max(ind.generation for ind in population) + 1) * self.epochs_per_generation,
        }
