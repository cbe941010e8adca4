"""eaElitist on cheap plain-Python objectives: no torch, no files."""
import math
import pickle
import random
import subprocess
import sys

import pytest
from deap import tools

from epbt_deap import Gene, SearchSpace, eaElitist, make_toolbox
from epbt_deap.evolution.algorithms import BestHallOfFame, eaTruncation, same_uid
from epbt_deap.evolution.individual import Individual
from epbt_deap.evolution.statistics import PopulationStatistics
from tests.helpers import in_bounds

SPACE = SearchSpace((Gene("lr", 1e-4, 1.0, 1e-4, 1.0, "log"), Gene("momentum", 0.0, 0.999, 0.0, 0.999)))
OPERATORS = dict(
    select={"name": "selTournament", "tournsize": 2},
    mutate={"name": "mutMultiplicativeGaussian", "sigma": 0.2, "indpb": 1.0, "reset_prob": 0.05},
    mate={"name": "cxUniform", "indpb": 0.5},
)


def closeness(individual):
    """A made-up objective: best at lr = 0.01, momentum = 0.9."""
    lr, momentum = individual
    return (-(math.log10(lr) + 2) ** 2 - 10 * (momentum - 0.9) ** 2,)


class CountingEvaluate:
    def __init__(self):
        self.calls = []

    def __call__(self, individual):
        self.calls.append(individual.uid)
        return closeness(individual)


def fitness_stats():
    stats = tools.Statistics(key=lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    stats.register("avg", lambda values: sum(values) / len(values))
    return stats


def evolve(ngen=8, population=12, elites=6, evaluate=closeness, seed=0, **kwargs):
    """Algorithm 1 as printed (elites kept as they are), unless ``kwargs`` say otherwise."""
    kwargs.setdefault("elites_train", False)
    random.seed(seed)
    toolbox = make_toolbox(SPACE, evaluate=evaluate, **{**OPERATORS, **kwargs.pop("operators", {})})
    pop = toolbox.population(n=population)
    hof = tools.HallOfFame(1, similar=same_uid)
    return (*eaElitist(pop, toolbox, ngen, elites, stats=fitness_stats(), halloffame=hof, **kwargs), hof)


def test_evolves_non_loss_hyperparameters_towards_the_optimum():
    population, logbook, hof = evolve(ngen=15)
    maxima = logbook.select("max")
    assert maxima[-1] > maxima[0]
    assert all(later >= earlier for earlier, later in zip(maxima, maxima[1:]))  # elitism never loses the best
    lr, momentum = hof[0]
    assert abs(math.log10(lr) + 2) < 0.5 and abs(momentum - 0.9) < 0.1


def test_only_children_are_evaluated_and_counts_match_algorithm_1():
    evaluate = CountingEvaluate()
    population, logbook, _ = evolve(ngen=3, population=10, elites=4, evaluate=evaluate)
    assert logbook.select("evals") == [10, 6, 6, 6]
    assert len(evaluate.calls) == 10 + 3 * 6 and len(set(evaluate.calls)) == len(evaluate.calls)
    assert len(population) == 10


def test_elites_survive_unchanged_and_children_inherit_their_parents_checkpoint():
    random.seed(3)
    toolbox = make_toolbox(SPACE, evaluate=closeness, **OPERATORS)
    pop = toolbox.population(n=8)
    for index, ind in enumerate(pop):
        ind.checkpoint = f"weights-{index}"
    snapshots = {}

    def callback(generation, population, evaluated, logbook):
        snapshots[generation] = {ind.uid: (list(ind), ind.checkpoint, ind.parent_uid, ind.partner_uid) for ind in population}

    eaElitist(pop, toolbox, ngen=2, k_elites=3, callback=callback, elites_train=False)
    first, second = snapshots[0], snapshots[1]
    kept = [uid for uid in second if uid in first]
    assert len(kept) == 3 and all(second[uid] == first[uid] for uid in kept)
    best_three = sorted(first, key=lambda uid: closeness(first[uid][0]), reverse=True)[:3]
    assert sorted(kept) == sorted(best_three)
    children = [uid for uid in second if uid not in first]
    assert len(children) == 5 and all(uid.startswith("g001-") for uid in children)
    for uid in children:
        genes, checkpoint, parent, partner = second[uid]
        assert checkpoint == first[parent][1]  # weights come from the parent ...
        assert partner in first  # ... genes are crossed with a member of the population
        assert in_bounds(SPACE, genes)


def test_without_variation_children_are_copies_of_their_parents():
    first = {}

    def callback(generation, population, evaluated, logbook):
        first.update({ind.uid: list(ind) for ind in population if generation == 0})

    population, _, _ = evolve(ngen=1, population=6, elites=3, cxpb=0.0, mutpb=0.0, callback=callback)
    children = [ind for ind in population if ind.generation == 1]
    assert len(children) == 3
    for child in children:
        assert child.partner_uid is None
        assert list(child) == first[child.parent_uid]


def test_swapped_operators_run_and_still_improve_within_the_bounds():
    population, logbook, _ = evolve(ngen=6, operators=dict(select={"name": "selBest"},
                                                           mate={"name": "cxBlend", "alpha": 0.3}))
    maxima = logbook.select("max")
    assert len(maxima) == 7 and maxima[-1] > maxima[0]
    assert all(later >= earlier for earlier, later in zip(maxima, maxima[1:]))
    assert all(in_bounds(SPACE, individual) for individual in population)  # cxBlend overshoots; clipping holds


def test_continuing_from_a_saved_generation_gives_the_same_run():
    population, uninterrupted, _ = evolve(ngen=6, seed=11)
    random.seed(11)
    toolbox = make_toolbox(SPACE, evaluate=closeness, **OPERATORS)
    pop, logbook = eaElitist(toolbox.population(n=12), toolbox, 3, 6, stats=fitness_stats(), elites_train=False)
    pop, logbook = pickle.loads(pickle.dumps((pop, logbook)))  # as a run keeps them after generation 3
    fresh = make_toolbox(SPACE, evaluate=closeness, **OPERATORS)
    resumed_population, resumed = eaElitist(pop, fresh, 6, 6, stats=fitness_stats(), start_gen=4, logbook=logbook,
                                            elites_train=False)
    assert list(resumed) == list(uninterrupted)
    assert [(ind.uid, list(ind)) for ind in resumed_population] == [(ind.uid, list(ind)) for ind in population]


@pytest.mark.parametrize("elites", [0, 12])
def test_elites_must_leave_room_for_children(elites):
    with pytest.raises(ValueError, match="k_elites"):
        evolve(ngen=1, population=12, elites=elites)


def test_the_evolution_layer_imports_neither_torch_nor_the_config_layer():
    """The loops, toolbox and learnability check need no torch, and no config, YAML or pydantic (files)."""
    code = ("import sys, epbt_deap.evolution.algorithms, epbt_deap.evolution.toolbox, epbt_deap.evolution.learnability\n"
            "print(sorted(set(sys.modules) & {'torch', 'epbt_deap.config', 'yaml', 'pydantic'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def truncation_run(fraction, ngen=3, population=8):
    random.seed(5)
    toolbox = make_toolbox(SPACE, evaluate=closeness, **{**OPERATORS, "mutate": {"name": "mutPerturb"}})
    pop = toolbox.population(n=population)
    generations = {}

    def callback(generation, population, evaluated, logbook):
        generations[generation] = ([toolbox.clone(ind) for ind in population], len(evaluated))

    eaTruncation(pop, toolbox, ngen, fraction=fraction, callback=callback)
    return generations


def test_pbt_copies_the_top_quarter_over_the_bottom_quarter_and_retrains_everyone():
    generations = truncation_run(0.25)
    for generation in range(1, 4):
        before, _ = generations[generation - 1]
        after, evaluated = generations[generation]
        assert evaluated == 8
        ranked = sorted(before, key=lambda ind: ind.fitness, reverse=True)
        by_uid = {ind.uid: ind for ind in before}
        assert [child.parent_uid for child in after] == [ind.uid for ind in ranked[:6] + ranked[:2]]
        for child in after[:6]:
            assert list(child) == list(by_uid[child.parent_uid])  # exploit keeps the rest unchanged
        for child in after[6:]:
            assert list(child) != list(by_uid[child.parent_uid])  # the copies are explored


def test_truncation_zero_is_independent_training():
    generations = truncation_run(0.0)
    first, _ = generations[0]
    last, evaluated = generations[3]
    assert evaluated == 8
    assert [list(ind) for ind in last] == [list(ind) for ind in sorted(first, key=lambda i: i.fitness, reverse=True)]


def test_the_replay_loop_trains_one_individual_through_the_steps_genes():
    from epbt_deap.evolution.algorithms import eaSchedule
    from epbt_deap.evolution.individual import Individual

    seen = []
    toolbox = make_toolbox(SPACE, evaluate=lambda ind: seen.append((ind.uid, ind.parent_uid, list(ind))) or (1.0,))
    steps = [(0, [0.01, 0.9]), (1, [0.02, 0.8]), (3, [0.03, 0.7])]  # an old elite's child skips generation 2
    population, logbook = eaSchedule(Individual(), toolbox, steps, stats=fitness_stats())
    assert seen == [("g000-replay", None, [0.01, 0.9]), ("g001-replay", "g000-replay", [0.02, 0.8]),
                    ("g003-replay", "g001-replay", [0.03, 0.7])]
    assert [row["gen"] for row in logbook] == [0, 1, 3] and len(population) == 1


def evaluated(uid, fitness, status="ok", test_accuracy=None):
    individual = Individual([0.1, 0.5], uid=uid, generation=int(uid[1:4]))
    individual.fitness.values = (fitness,)
    individual.metrics = {"status": status, "test_accuracy": test_accuracy}
    return individual


def test_of_equally_fit_individuals_the_newest_is_best():
    first = [evaluated("g000-000", 0.8), evaluated("g000-001", 0.8), evaluated("g000-002", 0.5)]
    deaps = tools.HallOfFame(1, similar=same_uid)
    deaps.update(first)
    assert deaps[0].uid == "g000-000"  # DEAP's keeps the first it saw: why the run has its own
    hof = BestHallOfFame(2, similar=same_uid)
    hof.update(first)
    assert [ind.uid for ind in hof] == ["g000-001", "g000-000"]
    hof.update([evaluated("g001-000", 0.8), evaluated("g001-001", 0.7)])
    assert [ind.uid for ind in hof] == ["g001-000", "g000-001"]
    row = PopulationStatistics(1).compile([evaluated("g001-000", 0.8, test_accuracy=0.1),
                                           evaluated("g001-001", 0.8, test_accuracy=0.2)])
    assert row["best_test"] == 0.2  # the logbook's best follows the same order


def test_without_validation_the_newest_trained_individual_is_best():
    hof = BestHallOfFame(1, similar=same_uid)
    hof.update([evaluated("g000-000", math.nan)])
    hof.update([evaluated("g001-000", math.nan)])
    assert hof[0].uid == "g001-000"
    hof.update([evaluated("g002-000", 0.0, status="failed")])
    assert hof[0].uid == "g001-000"


@pytest.mark.parametrize("fraction", [0.55, -0.05])
def test_a_truncation_fraction_outside_0_to_half_is_refused_whatever_the_population(fraction):
    with pytest.raises(ValueError, match=f"fraction must be in \\[0, 0.5\\], got {fraction}"):
        truncation_run(fraction, population=10)
