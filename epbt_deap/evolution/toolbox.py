"""Build the DEAP toolbox: the one place where operators are resolved and registered.

Operators are named with their keyword arguments, e.g. ``{"name": "selTournament",
"tournsize": 3}``, and looked up in :mod:`epbt_deap.evolution.operators` first, then in
:mod:`deap.tools`. Arguments named ``space``, ``low`` or ``up`` that the spec leaves out
are filled from the search space, so bounded DEAP operators such as
``mutPolynomialBounded`` drop in unchanged. Every variation operator is decorated to
clip its offspring to the gene bounds.
"""
from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from deap import base, tools

from epbt_deap.errors import ConfigError
from epbt_deap.evolution import defaults, operators
from epbt_deap.evolution.algorithms import make_child, mates_for, viable_child
from epbt_deap.evolution.individual import Individual
from epbt_deap.evolution.learnability import is_learnable
from epbt_deap.evolution.operators import OperatorError
from epbt_deap.evolution.space import PARAMETER_NAMES, SearchSpace

#: How many draws ``init: learnable`` makes before giving up (about 1 in 7 uniform draws passes).
LEARNABLE_DRAWS = 10_000
DRY_RUN_SIZE = 4  # throwaway individuals the operators are tried on before any training
DRY_RUN_TRIES = 8  # times each operator is tried: a branch taken with probability 0.1 per gene is all but sure

# How many leading positional arguments (individuals, k, ...) the EA loop passes per role.
ROLE_ARITY = {"select": 2, "mutate": 1, "mate": 2}
ROLE_PREFIX = {"select": "sel", "mutate": "mut", "mate": "cx"}


def available_operators(role: str) -> list[str]:
    """Names usable for ``role`` ('select', 'mutate' or 'mate'), ours first: functions only (DEAP's
    ``tools`` also holds modules and classes with these prefixes)."""
    prefix = ROLE_PREFIX[role]
    ours = [name for name in operators.__all__ if name.startswith(prefix)]
    deaps = sorted(name for name in dir(tools) if name.startswith(prefix) and name not in ours
                   and inspect.isfunction(getattr(tools, name)))
    return ours + deaps


def resolve_operator(role: str, spec: Mapping[str, Any], space: SearchSpace) -> tuple[Callable, dict]:
    """The function and keyword arguments for an operator ``spec`` of the given role."""
    spec = dict(spec)
    name = spec.pop("name", None)
    known = available_operators(role)
    if name not in known:
        raise OperatorError(f"unknown {role} operator {name!r}; available: {', '.join(known)}")
    function = getattr(operators, name, None) or getattr(tools, name)
    parameters = inspect.signature(function).parameters
    context = {"space": space, "low": space.lows, "up": space.highs}
    kwargs = {key: value for key, value in context.items() if key in parameters and key not in spec}
    kwargs.update(spec)
    try:
        inspect.signature(function).bind(*([None] * ROLE_ARITY[role]), **kwargs)
    except TypeError as error:
        raise OperatorError(f"{role} operator {name}: {error}") from None
    return function, kwargs


def new_individual(space: SearchSpace) -> Individual:
    """An individual with genes drawn from the space's init ranges."""
    return Individual(space.sample())


def new_viable_individual(space: SearchSpace, viable: Callable[[Individual], bool]) -> Individual:
    """An individual drawn from the init ranges again and again until ``viable`` accepts it."""
    for _ in range(LEARNABLE_DRAWS):
        individual = new_individual(space)
        if viable(individual):
            return individual
    raise ConfigError(f"evolution.taylorglo: no learnable theta in {LEARNABLE_DRAWS:,} draws from the init range; "
                      "widen it or use init: uniform")


def theta_positions(space: SearchSpace) -> list[int] | None:
    """Where theta_0 .. theta_7 sit in an individual, or None when the space does not evolve a TaylorGLO loss."""
    if not set(PARAMETER_NAMES) <= set(space.names):
        return None
    return [space.names.index(name) for name in PARAMETER_NAMES]


def has_learnable_theta(individual: list[float], positions: list[int] | None, num_classes: int | None) -> bool:
    """The learnability check (epbt_deap.evolution.learnability) of an individual's theta; True without theta genes."""
    if positions is None:
        return True
    if num_classes is None:
        raise ConfigError("the learnability check (init: learnable, repair_tries) needs the dataset's number of "
                          "classes, which is unknown until its folder exists")
    return is_learnable([individual[i] for i in positions], num_classes)


def make_toolbox(
    space: SearchSpace,
    select: Mapping[str, Any] | str | None = None,
    mutate: Mapping[str, Any] | str | None = None,
    mate: Mapping[str, Any] | str | None = None,
    evaluate: Callable[[Any], Any] | None = None,
    map_function: Callable[[Callable, Iterable], Iterable] = map,
    num_classes: int | None = None,
    init: str = defaults.INIT,
    partners: str = defaults.PARTNERS,
    repair_tries: int = defaults.REPAIR_TRIES,
) -> base.Toolbox:
    """A toolbox with individual/population factories, the three operators, evaluate and map.

    The operators default to :mod:`epbt_deap.evolution.defaults`, as the config's ``evolution.select``,
    ``mutate`` and ``mate`` do: the paper's tournament of 2, multiplicative Gaussian with reset, uniform
    crossover. Each is a spec ``{"name": ..., **arguments}``, or a bare name for an operator with its
    default arguments.
    ``viable(individual)`` is the learnability check of the individual's theta for
    ``num_classes`` classes, and ``init="learnable"`` (the config's default) makes the
    individual factory draw only individuals that pass it; ``init="uniform"`` draws as
    Algorithm 1 as printed does. ``partners(parent, parents, population)`` gives whom a child
    may be crossed with (``"population"``: any other member; ``"parents"``: the other selected
    parents), and ``child`` makes one child; with ``repair_tries`` > 0 it remakes a child that
    ``viable`` rejects up to that many times, then keeps the parent's genes.
    """
    for name, value, choices in (("init", init, defaults.INITS), ("partners", partners, defaults.PARTNER_CHOICES)):
        if value not in choices:
            raise ValueError(f"{name} must be {' or '.join(map(repr, choices))}, got {value!r}")
    specs = {role: dict(defaults.OPERATORS[role]) if spec is None else {"name": spec} if isinstance(spec, str) else spec
             for role, spec in (("select", select), ("mutate", mutate), ("mate", mate))}
    toolbox = base.Toolbox()
    toolbox.register("viable", has_learnable_theta, positions=theta_positions(space), num_classes=num_classes)
    if init == "learnable":
        toolbox.register("individual", new_viable_individual, space, toolbox.viable)
    else:
        toolbox.register("individual", new_individual, space)
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)
    toolbox.register("partners", mates_for, partners=partners)
    if repair_tries:
        toolbox.register("child", viable_child, tries=repair_tries)
    else:
        toolbox.register("child", make_child)
    for role, spec in specs.items():
        function, kwargs = resolve_operator(role, spec, space)
        toolbox.register(role, function, **kwargs)
    toolbox.decorate("mutate", operators.clip_to_bounds(space))
    toolbox.decorate("mate", operators.clip_to_bounds(space))
    if evaluate is not None:
        toolbox.register("evaluate", evaluate)
    toolbox.register("map", map_function)
    dry_run(toolbox, space, {role: spec.get("name") for role, spec in specs.items()})
    return toolbox


def dry_run(toolbox: base.Toolbox, space: SearchSpace, names: Mapping[str, Any]) -> None:
    """Run select, mutate and mate once on throwaway individuals, before any training.

    An operator that does not fit these individuals (an attribute they lack, a length it
    changes, genes it cannot treat as floats or makes non-finite) becomes a one-line
    :class:`OperatorError` that names it. Each is tried ``DRY_RUN_TRIES`` times on seeded streams,
    so that a branch it takes by chance (a reset, a crossover) is tried too, and the verdict is the
    same on every start. The random streams are restored, so a run is the same with and without it.
    """
    states = random.getstate(), np.random.get_state()
    try:
        random.seed(0)
        np.random.seed(0)
        draws = random.Random(0)
        population = [Individual(space.sample(draws)) for _ in range(DRY_RUN_SIZE)]
        for index, individual in enumerate(population):
            individual.uid = f"dry-run-{index}"
            individual.fitness.values = (index / DRY_RUN_SIZE,)
        checks = {
            "select": lambda: toolbox.select(population, DRY_RUN_SIZE - 1),
            "mutate": lambda: toolbox.mutate(toolbox.clone(population[0])),
            "mate": lambda: toolbox.mate(toolbox.clone(population[0]), toolbox.clone(population[1])),
        }
        for role, check in checks.items():
            try:
                for _ in range(DRY_RUN_TRIES):
                    returned = check()
                    if not all(isinstance(individual, Sequence) for individual in returned):
                        raise TypeError("it returned something other than individuals")
            except Exception as error:  # any failure of a user-chosen operator: refused in one line
                reason = str(error) if isinstance(error, OperatorError) else f"{type(error).__name__}: {error}"
                raise OperatorError(f"{role} operator {names[role]} does not fit these individuals "
                                    f"({len(space)} float genes): {' '.join(reason.split())}") from None
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
