"""Build the DEAP toolbox: the one place where operators are resolved and registered.

Operators are named with their keyword arguments, e.g. ``{"name": "selTournament",
"tournsize": 3}``, and looked up in :mod:`epbt_deap.operators` first, then in
:mod:`deap.tools`. Arguments named ``space``, ``low`` or ``up`` that the spec leaves out
are filled from the search space, so bounded DEAP operators such as
``mutPolynomialBounded`` drop in unchanged. Every variation operator is decorated to
clip its offspring to the gene bounds.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from deap import base, tools

from epbt_deap import operators
from epbt_deap.errors import EpbtError
from epbt_deap.individual import Individual
from epbt_deap.space import SearchSpace

# How many leading positional arguments (individuals, k, ...) the EA loop passes per role.
ROLE_ARITY = {"select": 2, "mutate": 1, "mate": 2}
ROLE_PREFIX = {"select": "sel", "mutate": "mut", "mate": "cx"}


class OperatorError(EpbtError):
    """An operator spec that names no operator or passes it the wrong arguments."""


def available_operators(role: str) -> list[str]:
    """Names usable for ``role`` ('select', 'mutate' or 'mate'), ours first."""
    prefix = ROLE_PREFIX[role]
    ours = [name for name in operators.__all__ if name.startswith(prefix)]
    deaps = sorted(name for name in dir(tools) if name.startswith(prefix) and name not in ours)
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


def make_toolbox(
    space: SearchSpace,
    select: Mapping[str, Any],
    mutate: Mapping[str, Any],
    mate: Mapping[str, Any],
    evaluate: Callable[[Any], Any],
    map_function: Callable[[Callable, Iterable], Iterable] = map,
) -> base.Toolbox:
    """A toolbox with individual/population factories, the three operators, evaluate and map."""
    toolbox = base.Toolbox()
    toolbox.register("individual", new_individual, space)
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)
    for role, spec in (("select", select), ("mutate", mutate), ("mate", mate)):
        function, kwargs = resolve_operator(role, spec, space)
        toolbox.register(role, function, **kwargs)
    toolbox.decorate("mutate", operators.clip_to_bounds(space))
    toolbox.decorate("mate", operators.clip_to_bounds(space))
    toolbox.register("evaluate", evaluate)
    toolbox.register("map", map_function)
    return toolbox
