"""EPBT's variation operators, following DEAP's contract: modify in place, return a tuple.

The defaults (``sigma=0.2``, ``reset_prob=0.05``, kept in :mod:`epbt_deap.evolution.defaults`) are ours;
the paper gives no values.
sigma = 0.2 perturbs a gene by about +-20 %, the scale of PBT's 0.8/1.2 perturbation
factors that EPBT replaces; a 5 % reset rate re-draws on average 0.4 of the 8 TaylorGLO
parameters per child, enough to reintroduce signs that multiplicative noise can never
flip, while most children stay close to a parent whose weights they inherit.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from epbt_deap.errors import EpbtError
from epbt_deap.evolution import defaults
from epbt_deap.evolution.space import SearchSpace

__all__ = ["mutMultiplicativeGaussian", "mutPerturb", "clip_to_bounds"]


def mutMultiplicativeGaussian(
    individual: list[float],
    space: SearchSpace,
    sigma: float = defaults.MUTATE["sigma"],
    indpb: float = defaults.MUTATE["indpb"],
    reset_prob: float = defaults.MUTATE["reset_prob"],
) -> tuple[list[float]]:
    """Multiply each gene (with probability ``indpb``) by noise drawn from N(1, sigma).

    With probability ``reset_prob`` a selected gene is instead re-drawn from its init
    range (log-uniformly for log-scale genes). Results are clipped to the gene bounds.
    """
    for i, gene in enumerate(space.genes):
        if random.random() < indpb:
            if random.random() < reset_prob:
                individual[i] = gene.sample()
            else:
                individual[i] = individual[i] * random.gauss(1.0, sigma)
    space.clip(individual)
    return (individual,)


def mutPerturb(
    individual: list[float],
    space: SearchSpace,
    factors: Sequence[float] = (0.8, 1.2),
    reset_prob: float = 0.25,
) -> tuple[list[float]]:
    """PBT's explore step: every gene is re-drawn (``reset_prob``) or multiplied by a random factor.

    Jaderberg et al.'s perturbation; the EPBT paper's PBT baselines use magnitude 1.2.
    """
    for i, gene in enumerate(space.genes):
        if random.random() < reset_prob:
            individual[i] = gene.sample()
        else:
            individual[i] = individual[i] * random.choice(factors)
    space.clip(individual)
    return (individual,)


class OperatorError(EpbtError):
    """An operator spec that names no operator, passes it the wrong arguments, or an operator that
    does not fit the individuals (an attribute they lack, a length it changes)."""


def clip_to_bounds(space: SearchSpace) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``toolbox.decorate`` decorator: clip every individual an operator returns; one that
    changed an individual's length, or made a gene that is not a finite number, is an :class:`OperatorError`."""

    def decorator(operator: Callable[..., Sequence[list[float]]]) -> Callable[..., Any]:
        @wraps(operator)
        def wrapper(*args: Any, **kwargs: Any) -> Sequence[list[float]]:
            offspring = operator(*args, **kwargs)
            for child in offspring:
                if len(child) != len(space):
                    raise OperatorError(f"{operator.__name__} returned an individual of {len(child)} genes, "
                                        f"not {len(space)}: it changes an individual's length")
                broken = [f"{gene.name} = {value!r}" for gene, value in zip(space.genes, child)
                          if not math.isfinite(value)]
                if broken:
                    raise OperatorError(f"{operator.__name__} made genes non-finite: {', '.join(broken)}")
                space.clip(child)
            return offspring

        return wrapper

    return decorator
