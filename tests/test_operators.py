import math
import random

import pytest
from deap import tools
from hypothesis import given, settings
from hypothesis import strategies as st

from epbt_deap import Gene, Individual, SearchSpace, mutMultiplicativeGaussian
from epbt_deap.evolution.toolbox import OperatorError, make_toolbox, resolve_operator
from tests.helpers import in_bounds

SPACE = SearchSpace.taylorglo(extra=[Gene("lr", 1e-3, 1.0, 1e-2, 0.5, "log")])
DEFAULT_MUTATE = {"name": "mutMultiplicativeGaussian", "sigma": 0.2, "indpb": 1.0, "reset_prob": 0.05}


def toolbox(**specs):
    chosen = {"select": {"name": "selTournament", "tournsize": 2}, "mutate": DEFAULT_MUTATE,
              "mate": {"name": "cxUniform", "indpb": 0.5}, **specs}
    return make_toolbox(SPACE, chosen["select"], chosen["mutate"], chosen["mate"], evaluate=len)


def test_space_defaults_follow_the_paper():
    space = SearchSpace.taylorglo()
    assert space.names == tuple(f"theta_{i}" for i in range(8))
    assert all(g.low == -10 and g.high == 10 and g.init_low == -10 and g.init_high == 10 for g in space.genes)


def test_log_gene_samples_within_its_init_range():
    random.seed(1)
    values = [SPACE.genes[-1].sample() for _ in range(500)]
    assert min(values) >= 1e-2 and max(values) <= 0.5
    assert sum(v < 0.07 for v in values) > 200  # log-uniform: half the mass below sqrt(0.01 * 0.5)


@pytest.mark.parametrize("bad, message", [
    (dict(low=1, high=1), "low .1. must be below high"),
    (dict(low=0, high=1, scale="log"), "a log-scale gene needs low > 0"),
    (dict(low=0, high=1, init_low=-1), "init range"),
    (dict(low=0, high=1, scale="cubic"), "scale must be linear or log, got 'cubic'"),
    (dict(low=0, high=math.inf, init_high=1), "bounds must be finite numbers"),
    (dict(low=math.nan, high=1, init_low=0), "bounds must be finite numbers"),
])
def test_invalid_genes_are_refused(bad, message):
    args = {"init_low": bad.get("low"), "init_high": bad.get("high"), **bad}
    with pytest.raises(ValueError, match=f"gene g: {message}"):
        Gene("g", **args)


def test_duplicate_gene_names_are_refused():
    with pytest.raises(ValueError, match="duplicate gene names: lr$"):
        SearchSpace((Gene("lr", 0.01, 1.0, 0.01, 1.0), Gene("momentum", 0.0, 1.0, 0.0, 1.0), Gene("lr", 0.1, 0.2, 0.1, 0.2)))


def test_multiplicative_mutation_scales_every_gene_without_reset():
    random.seed(0)
    ind = Individual([1.0] * 8 + [0.1])
    (mutant,) = mutMultiplicativeGaussian(ind, SPACE, sigma=0.1, indpb=1.0, reset_prob=0.0)
    assert mutant is ind
    assert all(v != 1.0 for v in mutant[:8])
    assert all(0.5 < v < 1.5 for v in mutant[:8])
    assert all(v > 0 for v in mutant)  # sign kept: noise is multiplicative


def test_reset_redraws_from_the_init_range():
    random.seed(0)
    ind = Individual([1e-9] * 8 + [0.1])
    mutMultiplicativeGaussian(ind, SPACE, sigma=0.0, indpb=1.0, reset_prob=1.0)
    assert all(abs(v) > 1e-6 for v in ind[:8])
    assert len(set(ind[:8])) == 8


def test_indpb_zero_changes_nothing():
    ind = Individual(SPACE.sample())
    before = list(ind)
    mutMultiplicativeGaussian(ind, SPACE, sigma=5.0, indpb=0.0, reset_prob=0.5)
    assert list(ind) == before


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), steps=st.lists(st.sampled_from(["mutate", "mate", "blend", "poly"]), max_size=12),
       sigma=st.floats(0, 50))
def test_genes_stay_within_bounds_after_any_sequence_of_operators(seed, steps, sigma):
    random.seed(seed)
    boxes = {
        "mutate": toolbox(mutate={**DEFAULT_MUTATE, "sigma": sigma}),
        "mate": toolbox(),
        "blend": toolbox(mate={"name": "cxBlend", "alpha": 2.0}),
        "poly": toolbox(mutate={"name": "mutPolynomialBounded", "eta": 0.5, "indpb": 1.0}),
    }
    first, second = Individual(SPACE.sample()), Individual(SPACE.sample())
    for step in steps:
        box = boxes[step]
        if step in ("mate", "blend"):
            box.mate(first, second)
        else:
            box.mutate(first)
    assert in_bounds(SPACE, first) and in_bounds(SPACE, second)


def test_toolbox_registers_the_named_deap_operators():
    box = toolbox(select={"name": "selBest"}, mate={"name": "cxBlend", "alpha": 0.3})
    assert box.select.func is tools.selBest
    assert box.mate.func.__wrapped__ is tools.cxBlend
    assert box.mate.keywords == {"alpha": 0.3}
    by_name = toolbox(select="selBest", mate="cxTwoPoint")  # a bare name: the operator's default arguments
    assert by_name.select.func is tools.selBest and by_name.mate.func.__wrapped__ is tools.cxTwoPoint


def test_bounded_deap_operators_get_bounds_from_the_space():
    _, kwargs = resolve_operator("mutate", {"name": "mutPolynomialBounded", "eta": 1.0, "indpb": 0.5}, SPACE)
    assert kwargs["low"] == SPACE.lows and kwargs["up"] == SPACE.highs


def test_unknown_operator_lists_what_exists():
    with pytest.raises(OperatorError) as error:
        toolbox(select={"name": "selTournamnet"})
    message = str(error.value)
    assert "unknown select operator 'selTournamnet'" in message
    assert "selTournament" in message and "selBest" in message and "\n" not in message


def test_wrong_operator_arguments_are_one_line_errors():
    with pytest.raises(OperatorError, match="mate operator cxUniform: .*indpb"):
        toolbox(mate={"name": "cxUniform"})
    with pytest.raises(OperatorError, match="unexpected keyword argument 'sigmaa'"):
        toolbox(mutate={**DEFAULT_MUTATE, "sigmaa": 1})


@pytest.mark.parametrize("global_seed", range(6))
def test_an_operator_that_fails_on_a_chance_branch_is_refused_on_every_start(global_seed):
    """mutPerturb multiplies by a factor only where it does not reset (1 gene in 10 here): the dry run,
    seeded and repeated, reaches that branch whatever state the global streams are in."""
    random.seed(global_seed)
    with pytest.raises(OperatorError, match="mutate operator mutPerturb does not fit these individuals"):
        toolbox(mutate={"name": "mutPerturb", "factors": ["x", "y"], "reset_prob": 0.9})
    state = random.getstate()
    toolbox()
    assert random.getstate() == state  # the dry run leaves a run's streams as it found them


@pytest.mark.parametrize("role, spec", [
    ("mutate", {"name": "mutGaussian", "mu": math.nan, "sigma": 0.1, "indpb": 1.0}),
    ("mate", {"name": "cxBlend", "alpha": 1e308}),
])
def test_an_operator_that_makes_genes_non_finite_is_refused(role, spec):
    with pytest.raises(OperatorError, match=f"{role} operator {spec['name']} does not fit .*non-finite"):
        toolbox(**{role: spec})


@pytest.mark.parametrize("argument, value", [("init", "learnble"), ("partners", "parent")])
def test_a_misspelt_choice_of_the_python_api_is_refused(argument, value):
    with pytest.raises(ValueError, match=f"{argument} must be .* got '{value}'"):
        make_toolbox(SPACE, **{argument: value})
