"""The toolbox's ``map`` for model training: individuals -> tasks -> worker pool -> results.

The loop's side of the seam with the workers (its types live in :mod:`epbt_deap.execution.protocol`):
the loop calls ``toolbox.map(toolbox.evaluate, individuals)`` and gets fitness tuples
back, as with any DEAP map; on the way, each individual's new checkpoint, epoch count and
metrics are written back in the main process (workers never mutate individuals).
"""
from __future__ import annotations

import logging
import math
import numbers
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from epbt_deap.errors import EvaluateContractError, GenerationDivergedError, GenerationFailedError
from epbt_deap.evolution.individual import Individual
from epbt_deap.evolution.space import SearchSpace
from epbt_deap.execution.protocol import EvalResult, EvalTask, Observer, Pool
from epbt_deap.rundir.layout import RunLayout

T = TypeVar("T")

logger = logging.getLogger("epbt_deap")


def task_seed(run_seed: int, uid: str) -> int:
    """A 32-bit seed for one evaluation, derived from the run seed and the individual's uid."""
    return int(np.random.SeedSequence([run_seed, zlib.crc32(uid.encode())]).generate_state(1)[0])


def split_evenly(items: Sequence[T], parts: int) -> list[list[T]]:
    """``items`` in at most ``parts`` contiguous, non-empty runs whose lengths differ by one at most."""
    parts = min(parts, len(items))
    if not parts:
        return []
    size, extra = divmod(len(items), parts)
    bounds = np.cumsum([0] + [size + (index < extra) for index in range(parts)])
    return [list(items[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])]


def finite_or_none(value: float) -> float | None:
    """``value``, or None (JSON's null) for nan and infinities."""
    return value if math.isfinite(value) else None


def check_results(tasks: Sequence[EvalTask], results: Sequence[Any], validated: bool = True) -> None:
    """A one-line EvaluateContractError unless ``results`` holds one EvalResult per task, each of its own task,
    with a fitness that is a real number: finite where the run ``validated`` (its validation accuracy), nan
    allowed only without a validation set."""
    if len(results) != len(tasks):
        raise EvaluateContractError(f"evaluate returned {len(results)} results for {len(tasks)} tasks")
    for task, result in zip(tasks, results):
        if not isinstance(result, EvalResult):
            raise EvaluateContractError(f"evaluate returned {type(result).__name__} for {task.uid}, not an EvalResult")
        if result.uid != task.uid:
            raise EvaluateContractError(f"evaluate returned the result of {result.uid!r} for {task.uid}")
        fitness = result.fitness
        if isinstance(fitness, bool) or not isinstance(fitness, numbers.Real) or (validated and not
                                                                                 math.isfinite(fitness)):
            raise EvaluateContractError(f"evaluate returned fitness {fitness!r} for {task.uid}; it must be "
                                        + ("the validation accuracy, a finite number" if validated else "a number"))


@dataclass(frozen=True)
class CheckedEvaluation:
    """``evaluate`` with its results checked where they are made, against their own tasks (:func:`check_results`):
    the observer, the pools and the run only ever see results that keep the contract.

    ``grouped``: ``evaluate`` takes a list of tasks and returns a list of results.
    """

    evaluate: Callable[[Any, Any], Any]
    validated: bool = True
    grouped: bool = False

    def __call__(self, context: Any, tasks: Any) -> Any:
        results = self.evaluate(context, tasks)
        if self.grouped:
            check_results(tasks, results, self.validated)
        else:
            check_results([tasks], [results], self.validated)
        return results


def raise_if_none_succeeded(generation: int, results: Sequence[EvalResult], carried: bool = False) -> None:
    """Stop the run with its likeliest cause when every evaluation of a generation failed or diverged.

    ``carried``: members the generation did not evaluate (elites that do not retrain) carry the run,
    so children that all diverged are only a warning: selection drops them. Failures still stop it.
    """
    if any(result.status == "ok" for result in results):
        return
    failed = [result for result in results if result.status == "failed"]
    if failed:
        raise GenerationFailedError(f"all {len(results)} evaluations of generation {generation} failed or diverged; "
                                    f"the first failure, {failed[0].uid}: {failed[0].detail}")
    if carried:
        logger.warning("all %d children of generation %d diverged; the elites carry the run", len(results), generation)
        return
    raise GenerationDivergedError(f"all {len(results)} evaluations of generation {generation} diverged: "
                                  "the loss or learning rate makes training blow up, and resuming would repeat it; "
                                  "lower train.lr or bound the loss and start again")


class EvaluationMap:
    """A DEAP ``map`` that trains individuals on a pool and returns their fitness tuples.

    With ``grouped`` the tasks are split into one group per worker, and ``evaluate`` takes
    a list of tasks and returns a list of results (the vectorised trainer). Without ``validated``
    (no validation set) a fitness may be nan. ``elites_carried``: after generation 0, members that
    are not evaluated stay in the population (eaElitist with ``elites_train`` false).
    """

    def __init__(self, pool: Pool, space: SearchSpace, layout: RunLayout, run_seed: int,
                 epochs_per_generation: int, observer: Observer | None = None, grouped: bool = False,
                 validated: bool = True, elites_carried: bool = False) -> None:
        self.pool = pool
        self.space = space
        self.layout = layout
        self.run_seed = run_seed
        self.epochs_per_generation = epochs_per_generation
        self.observer = observer
        self.grouped = grouped
        self.validated = validated
        self.elites_carried = elites_carried

    def task_for(self, individual: Individual) -> EvalTask:
        """The individual's task, its checkpoint paths absolute: workers need not share our working directory."""
        parent = individual.checkpoint
        return EvalTask(
            uid=individual.uid,
            genes=self.space.decode(individual),
            parent_checkpoint=None if parent is None else str(self.layout.resolve(parent)),
            output_checkpoint=str(self.layout.resolve(RunLayout.checkpoint_of(individual.uid))),
            epochs=self.epochs_per_generation,
            start_epoch=individual.generation * self.epochs_per_generation,
            seed=task_seed(self.run_seed, individual.uid),
        )

    def __call__(self, evaluate: Callable[[Any, EvalTask], EvalResult],
                 individuals: Sequence[Individual]) -> list[tuple[float]]:
        tasks = [self.task_for(individual) for individual in individuals]
        if self.observer is not None and individuals:
            self.observer.generation_started(individuals[0].generation, len(tasks))
        results = self._run(CheckedEvaluation(evaluate, self.validated, self.grouped), tasks)
        for individual, result in zip(individuals, results):
            if result.checkpoint is not None:
                individual.checkpoint = RunLayout.stored_checkpoint(result.checkpoint)
                individual.epochs = result.epochs
            individual.metrics = {
                "test_accuracy": result.test_accuracy,
                **{name: finite_or_none(value) for name, value in result.measures.items()},
                "train_loss": finite_or_none(result.train_loss),
                "status": result.status,
                "seconds": result.seconds,
                **({"detail": result.detail} if result.detail else {}),
            }
        if individuals:
            generation = individuals[0].generation
            raise_if_none_succeeded(generation, results, carried=self.elites_carried and generation > 0)
        return [(result.fitness,) for result in results]

    def _run(self, evaluate: Callable[[Any, Any], Any], tasks: list[EvalTask]) -> list[EvalResult]:
        """Results in task order, from single tasks or from one group per worker."""
        observed = self.observer.evaluation_finished if self.observer is not None else None
        if not self.grouped:
            return self.pool.map(evaluate, tasks, observed, EvalResult.failed)

        def observe_group(results: list[EvalResult]) -> None:
            for result in results:
                observed(result)

        def fail_group(group: list[EvalTask], reason: str) -> list[EvalResult]:
            return [EvalResult.failed(task, reason) for task in group]

        groups = self.pool.map(evaluate, split_evenly(tasks, self.pool.workers),
                               observe_group if observed is not None else None, fail_group)
        return [result for group in groups for result in group]
