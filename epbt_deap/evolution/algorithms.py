"""Evolutionary loops in DEAP's style. They know nothing of torch or files.

Individuals need a ``fitness`` and the attributes ``uid``, ``parent_uid``,
``partner_uid`` and ``generation`` (see :class:`epbt_deap.evolution.individual.Individual`).
"""
from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

from deap import base, tools

from epbt_deap.evolution import defaults

logger = logging.getLogger("epbt_deap")

GenerationCallback = Callable[[int, list, list, tools.Logbook], None]


def child_uid(generation: int, index: int) -> str:
    """The uid of the ``index``-th individual created in ``generation``."""
    return f"g{generation:03d}-{index:03d}"


def same_uid(first: Any, second: Any) -> bool:
    """Hall-of-fame identity: two entries are the same when their uids match.

    DEAP's default (equal genes) would merge distinct models that share genes.
    """
    return first.uid == second.uid


class BestHallOfFame(tools.HallOfFame):
    """The ``maxsize`` best individuals seen, in the order of :attr:`Individual.best_rank`: among
    equally fit ones the newest, which trained longest (DEAP's own keeps the first it saw); without
    a validation set (fitness nan), the newest."""

    def update(self, population: Sequence) -> None:
        seen = {individual.uid: individual for individual in (*self, *population)}
        ranked = sorted(seen.values(), key=lambda individual: individual.best_rank, reverse=True)[:self.maxsize]
        self.clear()
        for individual in reversed(ranked):  # DEAP inserts an equally fit newcomer ahead of the others
            self.insert(individual)


LatestHallOfFame = BestHallOfFame  # the name that run states saved without a validation set pickled


def evaluate_invalid(individuals: Sequence, toolbox: base.Toolbox) -> list:
    """Evaluate the individuals without a valid fitness through ``toolbox.map``."""
    invalid = [ind for ind in individuals if not ind.fitness.valid]
    for ind, fitness in zip(invalid, toolbox.map(toolbox.evaluate, invalid)):
        ind.fitness.values = fitness
    return invalid


def clone_child(parent: Any, toolbox: base.Toolbox, generation: int, index: int) -> Any:
    """A copy of ``parent`` that is a new individual of ``generation``, keeping its checkpoint."""
    child = toolbox.clone(parent)
    child.uid = child_uid(generation, index)
    child.parent_uid = parent.uid
    child.partner_uid = None
    child.generation = generation
    del child.fitness.values
    return child


def mates_for(parent: Any, parents: Sequence, population: Sequence, partners: str = "population") -> list:
    """Whom ``parent``'s child may be crossed with: any other member of the population, or,
    with ``partners="parents"``, the other selected parents (the population when there are none)."""
    others = [ind for ind in population if ind.uid != parent.uid]
    if partners == "parents":
        selected = {ind.uid: ind for ind in parents if ind.uid != parent.uid}
        return list(selected.values()) or others
    return others


def adopted(child: Any, offspring: Sequence) -> Any:
    """``child`` with the genes of the first individual an operator returned (DEAP's tuple).

    DEAP's operators change their argument and return it; one that returns a new individual
    or a plain list instead has its genes copied into ``child``, which keeps its uid, parent
    and checkpoint.
    """
    returned = offspring[0]
    if returned is not child:
        child[:] = list(returned)
    return child


def make_child(parent: Any, mates: Sequence, toolbox: base.Toolbox, generation: int, index: int,
               cxpb: float, mutpb: float) -> Any:
    """Stage 2 for one parent: clone it, mutate (``mutpb``), then cross (``cxpb``) with a random mate.

    The mate is a clone and is thrown away; the child keeps its parent's checkpoint.
    """
    child = clone_child(parent, toolbox, generation, index)
    if random.random() < mutpb:
        child = adopted(child, toolbox.mutate(child))
    if random.random() < cxpb:
        partner = random.choice(mates)
        child = adopted(child, toolbox.mate(child, toolbox.clone(partner)))
        child.partner_uid = partner.uid
    return child


def vary(parents: Sequence, population: Sequence, toolbox: base.Toolbox, generation: int, cxpb: float,
         mutpb: float) -> list:
    """Stage 2: one child per parent, crossed with another individual, never the parent itself.

    The toolbox says whom: ``toolbox.partners(parent, parents, population)`` (by default any
    other member, :func:`mates_for`), and how a child is made: ``toolbox.child`` (by default
    :func:`make_child`; with the learnability repair, :func:`viable_child`). ``make_toolbox``
    registers both from its ``partners`` and ``repair_tries``.
    """
    partners = getattr(toolbox, "partners", mates_for)
    child = getattr(toolbox, "child", make_child)
    return [child(parent, partners(parent, parents, population), toolbox, generation, index, cxpb, mutpb)
            for index, parent in enumerate(parents)]


def viable_child(parent: Any, mates: Sequence, toolbox: base.Toolbox, generation: int, index: int, cxpb: float,
                 mutpb: float, tries: int) -> Any:
    """The first of up to ``tries`` children of ``parent`` that ``toolbox.viable`` accepts
    (mutate and mate rerun each time), else a copy of the parent with its genes unchanged."""
    for _ in range(tries):
        child = make_child(parent, mates, toolbox, generation, index, cxpb, mutpb)
        if toolbox.viable(child):
            return child
    return clone_child(parent, toolbox, generation, index)


def record(logbook: tools.Logbook, generation: int, population: Sequence, evaluated: Sequence,
           stats: Any, halloffame: tools.HallOfFame | None) -> None:
    """Update the hall of fame and append one logbook row for ``generation``."""
    if halloffame is not None:
        halloffame.update(population)
    row = stats.compile(population) if stats is not None else {}
    logbook.record(gen=generation, evals=len(evaluated), **row)
    logger.info(logbook.stream)


def start(population: list, toolbox: base.Toolbox, stats: Any, halloffame: tools.HallOfFame | None,
          callback: GenerationCallback | None, start_gen: int, logbook: tools.Logbook | None) -> tools.Logbook:
    """Generation 0 (unless continuing): name and evaluate everyone; returns the logbook."""
    if logbook is None:
        logbook = tools.Logbook()
        logbook.header = ["gen", "evals"] + (list(stats.fields) if stats is not None else [])
    if start_gen == 0:
        for index, ind in enumerate(population):
            ind.uid = ind.uid or child_uid(0, index)
        finish_generation(0, population, evaluate_invalid(population, toolbox), logbook, stats, halloffame, callback)
    return logbook


def finish_generation(generation: int, population: list, evaluated: list, logbook: tools.Logbook, stats: Any,
                      halloffame: tools.HallOfFame | None, callback: GenerationCallback | None) -> None:
    record(logbook, generation, population, evaluated, stats, halloffame)
    if callback is not None:
        callback(generation, population, evaluated, logbook)


def eaElitist(
    population: list,
    toolbox: base.Toolbox,
    ngen: int,
    k_elites: int,
    cxpb: float = defaults.CXPB,
    mutpb: float = defaults.MUTPB,
    stats: Any = None,
    halloffame: tools.HallOfFame | None = None,
    callback: GenerationCallback | None = None,
    start_gen: int = 0,
    logbook: tools.Logbook | None = None,
    elites_train: bool = defaults.ELITES_TRAIN,
) -> tuple[list, tools.Logbook]:
    """EPBT (Algorithm 1 of Liang, Gonzalez & Miikkulainen) with elitism.

    Generation 0 evaluates every individual. Then, for each generation g = 1 .. ngen::

        parents    = toolbox.select(population, p - k_elites)       # Stage 1
        children   = clone(parents); mutate (mutpb); mate (cxpb)    # Stage 2
                     with another member of the population (never the parent)
        evaluate(children)                                          # Stage 3a
        population = best k_elites of population + children         # Stage 3b, 3c

    The defaults are the config's (``evolution.*``). Algorithm 1 as printed is
    ``elites_train=False`` (elites kept as they are, not retrained) with a toolbox of
    ``make_toolbox(init="uniform")`` (whose ``partners="population"`` and ``repair_tries=0``
    are the defaults). ``elites_train`` (the default) also trains each elite, as a copy with
    its own uid whose parent is the elite, so that the whole population advances every
    generation. Whom children are crossed with and how they are made come from the
    toolbox (see :func:`vary`).

    ``callback(g, population, evaluated, logbook)`` runs after every generation. To
    continue an interrupted run, pass the population and logbook of the last finished
    generation and ``start_gen`` = that generation + 1. Returns ``(population, logbook)``.
    """
    if not 0 < k_elites < len(population):
        raise ValueError(f"k_elites must be in [1, {len(population) - 1}], got {k_elites}")
    logbook = start(population, toolbox, stats, halloffame, callback, start_gen, logbook)
    for generation in range(max(start_gen, 1), ngen + 1):
        parents = toolbox.select(population, len(population) - k_elites)
        children = vary(parents, population, toolbox, generation, cxpb, mutpb)
        elites = tools.selBest(population, k_elites)
        if elites_train:
            elites = [clone_child(elite, toolbox, generation, len(children) + index)
                      for index, elite in enumerate(elites)]
        evaluated = evaluate_invalid(children + elites, toolbox)
        population[:] = elites + children
        finish_generation(generation, population, evaluated, logbook, stats, halloffame, callback)
    return population, logbook


def eaTruncation(
    population: list,
    toolbox: base.Toolbox,
    ngen: int,
    fraction: float = defaults.TRUNCATION,
    stats: Any = None,
    halloffame: tools.HallOfFame | None = None,
    callback: GenerationCallback | None = None,
    start_gen: int = 0,
    logbook: tools.Logbook | None = None,
) -> tuple[list, tools.Logbook]:
    """PBT (Jaderberg et al.) as the EPBT paper's baselines configure it.

    Generation 0 evaluates every individual. Then, for each generation g = 1 .. ngen::

        ranked = population by fitness, best first
        the bottom `fraction` become copies (weights and genes) of the top `fraction`,
        explored with toolbox.mutate; everyone else continues unchanged
        evaluate(all p)                      # every member trains E more epochs

    With ``fraction=0`` nothing is copied or explored: p independent models keep
    training, which is the paper's Baseline 1. Returns ``(population, logbook)``.
    """
    if not 0 <= fraction <= 0.5:
        raise ValueError(f"fraction must be in [0, 0.5], got {fraction}")
    count = int(len(population) * fraction)
    logbook = start(population, toolbox, stats, halloffame, callback, start_gen, logbook)
    for generation in range(max(start_gen, 1), ngen + 1):
        ranked = sorted(population, key=lambda ind: ind.fitness, reverse=True)
        sources = ranked[: len(ranked) - count] + ranked[:count]
        children = [clone_child(source, toolbox, generation, index) for index, source in enumerate(sources)]
        for child in children[len(ranked) - count:]:
            adopted(child, toolbox.mutate(child))
        population[:] = children
        finish_generation(generation, population, evaluate_invalid(population, toolbox), logbook, stats,
                          halloffame, callback)
    return population, logbook


def eaSchedule(
    individual: Any,
    toolbox: base.Toolbox,
    steps: Sequence[tuple[int, Sequence[float]]],
    stats: Any = None,
    halloffame: tools.HallOfFame | None = None,
    callback: GenerationCallback | None = None,
) -> tuple[list, tools.Logbook]:
    """Replay: one individual trained step after step with given genes, no selection and no variation.

    Each step ``(generation, genes)`` sets the individual's genes, names it
    ``g<generation>-replay`` (its parent the previous step) and evaluates it, so that it keeps
    training from its own weights on the run's clock; each step is a logbook row and a
    ``callback``, as a generation of the other loops. Returns ``([individual], logbook)``.
    """
    logbook = tools.Logbook()
    logbook.header = ["gen", "evals"] + (list(stats.fields) if stats is not None else [])
    for generation, genes in steps:
        individual[:] = list(genes)
        individual.parent_uid, individual.uid = individual.uid, f"g{generation:03d}-replay"
        individual.generation = generation
        del individual.fitness.values
        finish_generation(generation, [individual], evaluate_invalid([individual], toolbox), logbook, stats,
                          halloffame, callback)
    return [individual], logbook
