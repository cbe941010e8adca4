"""Any DEAP operator: what it returns is kept, and every operator in ``deap.tools`` either
completes a run of the loop or is refused in one line before generation 0 trains."""
import inspect
import random

import pytest
from deap import tools

from epbt_deap.evolution import operators
from epbt_deap.evolution.algorithms import eaElitist, make_child
from epbt_deap.evolution.individual import Individual
from epbt_deap.evolution.toolbox import OperatorError, available_operators
from epbt_deap.run import RunPlan
from tests.helpers import in_bounds, tiny

ARGUMENTS = {  # what the operators that need arguments are given
    "selTournament": {"tournsize": 2}, "selDoubleTournament": {"fitness_size": 2, "parsimony_size": 1.4,
                                                               "fitness_first": True},
    "selEpsilonLexicase": {"epsilon": 0.1}, "selNSGA3": {"ref_points": [[1.0]]},
    "mutESLogNormal": {"c": 1.0, "indpb": 0.5}, "mutFlipBit": {"indpb": 0.5}, "mutGaussian": {"mu": 0, "sigma": 0.1,
                                                                                             "indpb": 0.5},
    "mutPolynomialBounded": {"eta": 20, "indpb": 0.5}, "mutShuffleIndexes": {"indpb": 0.5},
    "mutUniformInt": {"low": -1, "up": 1, "indpb": 0.5}, "mutMultiplicativeGaussian": {"sigma": 0.2},
    "mutPerturb": {}, "cxBlend": {"alpha": 0.5}, "cxESBlend": {"alpha": 0.5}, "cxSimulatedBinary": {"eta": 20},
    "cxSimulatedBinaryBounded": {"eta": 20}, "cxUniform": {"indpb": 0.5}, "cxUniformPartialyMatched": {"indpb": 0.5},
}
DEFAULTS = {"evolution.select": {"name": "selTournament", "tournsize": 2},
            "evolution.mutate": {"name": "mutMultiplicativeGaussian", "sigma": 0.2},
            "evolution.mate": {"name": "cxUniform", "indpb": 0.5}}


def deap_operators():
    return [(role, name) for role in ("select", "mutate", "mate") for name in available_operators(role)]


def loop_with_fake_training(toolbox, population=8, generations=3):
    """eaElitist on the plan's toolbox, each individual's fitness the sum of its genes (no torch, no files)."""
    toolbox.register("evaluate", lambda individual: (float(sum(individual)),))
    toolbox.register("map", map)
    random.seed(0)
    members = toolbox.population(n=population)
    for index, member in enumerate(members):
        member.uid = f"g000-{index:03d}"
    return eaElitist(members, toolbox, generations, population // 2)


@pytest.mark.parametrize("role, name", deap_operators())
def test_every_operator_completes_a_run_or_is_refused_in_one_line_before_training(role, name):
    spec = {"name": name, **ARGUMENTS.get(name, {})}
    config = tiny({**DEFAULTS, f"evolution.{role}": spec})
    try:
        plan = RunPlan.of(config)  # what `evolve` checks before it loads data or trains
    except OperatorError as error:
        assert "\n" not in str(error) and name in str(error)
        return
    population, logbook = loop_with_fake_training(plan.toolbox)
    assert len(logbook) == 4 and all(len(member) == len(plan.space) for member in population)
    assert all(in_bounds(plan.space, member) for member in population)


def test_most_of_deaps_operators_run_and_the_known_misfits_are_refused():
    refused = set()
    for role, name in deap_operators():
        spec = {"name": name, **ARGUMENTS.get(name, {})}
        try:
            RunPlan.of(tiny({**DEFAULTS, f"evolution.{role}": spec}))
        except OperatorError:
            refused.add(name)
    assert refused == {  # the list docs/ablations-and-python.md gives
        "mutESLogNormal", "cxESBlend", "cxESTwoPoint", "cxESTwoPoints",  # no ES strategy
        "cxMessyOnePoint",  # changes the length
        "cxOrdered", "cxPartialyMatched", "cxUniformPartialyMatched",  # genes are not indices
        "selNSGA3"}  # its reference points need more objectives
    assert len(deap_operators()) == 37


def plain_list_mutation(individual):
    return ([value * 1.1 for value in individual],)  # a new plain list; the argument is untouched


def fresh_individual_crossover(first, second):
    return Individual([(a + b) / 2 for a, b in zip(first, second)]), Individual(list(second))


@pytest.mark.parametrize("role, operator", [("mutate", plain_list_mutation), ("mate", fresh_individual_crossover)])
def test_what_an_operator_returns_is_kept_and_the_child_keeps_its_identity(role, operator):
    plan = RunPlan.of(tiny({"evolution.cxpb": 1.0, "evolution.mutpb": 1.0}))
    toolbox = plan.toolbox
    toolbox.register(role, operator)
    toolbox.decorate(role, operators.clip_to_bounds(plan.space))
    other = "mate" if role == "mutate" else "mutate"
    toolbox.register(other, lambda *individuals: individuals)  # changes nothing
    parent, partner = Individual([0.5] * len(plan.space)), Individual([1.5] * len(plan.space))
    parent.uid, partner.uid, parent.checkpoint = "g000-000", "g000-001", "checkpoints/g000-000.pt"
    random.seed(0)
    child = make_child(parent, [partner], toolbox, generation=1, index=0, cxpb=1.0, mutpb=1.0)
    expected = [0.55] * len(plan.space) if role == "mutate" else [1.0] * len(plan.space)
    assert child == pytest.approx(expected)
    assert (child.uid, child.parent_uid, child.checkpoint) == ("g001-000", "g000-000", "checkpoints/g000-000.pt")
    assert parent == [0.5] * len(plan.space)


def test_deaps_tools_modules_and_classes_are_not_offered_as_operators():
    for role in ("select", "mutate", "mate"):
        assert all(inspect.isfunction(getattr(operators, name, None) or getattr(tools, name))
                   for name in available_operators(role))
