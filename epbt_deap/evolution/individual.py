"""DEAP fitness and individual classes, defined at module level so they pickle into worker processes.

``creator.create`` builds classes at run time inside ``deap.creator``; a worker process
(spawned, or forked from the forkserver before any was built) does not have them. These
plain classes behave the same and always import.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from deap import base


def best_rank(fitness: float | None, status: str, generation: int, uid: str) -> tuple[bool, float, int, int]:
    """The order of "best", largest first: a trained model (status ok) before a failed one, then the
    highest fitness; among equally fit ones the newest generation, then the later-made individual,
    which trained longest. No fitness (None or nan: no validation set) ranks below any fitness.

    The one tie rule of the run's best (best.pt, the summary), its logbook rows and the best lineage
    that ``show``, ``export`` and ``replay`` read.
    """
    scored = fitness is not None and not math.isnan(fitness)
    index = uid.rpartition("-")[2]
    return status == "ok", fitness if scored else -math.inf, generation, int(index) if index.isdigit() else -1


class FitnessMax(base.Fitness):
    """A single objective to maximise (validation accuracy)."""

    weights = (1.0,)


class Individual(list):
    """A list of gene values with a fitness and the bookkeeping EPBT needs.

    ``checkpoint`` is the path of the model weights this individual stands for (a child
    starts from its parent's); ``epochs`` counts the epochs those weights were trained.
    ``metrics`` holds what the evaluation reported beside the fitness (test accuracy, ...).
    """

    def __init__(
        self,
        genes: Iterable[float] = (),
        *,
        uid: str | None = None,
        parent_uid: str | None = None,
        partner_uid: str | None = None,
        generation: int = 0,
        checkpoint: str | None = None,
        epochs: int = 0,
    ) -> None:
        super().__init__(genes)
        self.fitness = FitnessMax()
        self.uid = uid
        self.parent_uid = parent_uid
        self.partner_uid = partner_uid
        self.generation = generation
        self.checkpoint = checkpoint
        self.epochs = epochs
        self.metrics: dict[str, Any] = {}

    @property
    def validation(self) -> float | None:
        """The fitness as the run records it: validation accuracy, None without a validation set (nan)."""
        fitness = self.fitness.values[0]
        return None if math.isnan(fitness) else fitness

    @property
    def best_rank(self) -> tuple[bool, float, int, int]:
        """This evaluated individual's place in the order of "best" (:func:`best_rank`)."""
        return best_rank(self.fitness.values[0], self.metrics.get("status", "ok"), self.generation, self.uid or "")

    def __repr__(self) -> str:
        fitness = self.fitness.values[0] if self.fitness.valid else None
        return f"Individual(uid={self.uid!r}, fitness={fitness}, genes={list(self)})"
