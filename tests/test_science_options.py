"""Options beyond the paper (issue #10): learnable init, repair, partners, elites_train, loss scale.

The loop-level tests use plain-Python objectives (no torch); the paper config is pinned by
a real tiny run.
"""
import random

import pytest
import torch
from deap import tools

from epbt_deap.config import build_config, load_config
from epbt_deap.evolution.algorithms import eaElitist, same_uid, vary
from epbt_deap.evolution.learnability import is_learnable
from epbt_deap.evolution.space import PARAMETER_NAMES, Gene, SearchSpace
from epbt_deap.evolution.toolbox import make_toolbox
from epbt_deap.execution.training import TrainSettings, make_loss
from epbt_deap.run import run
from tests.helpers import PAPER_ALGORITHM, algorithm_options, read_jsonl

THETA_SPACE = SearchSpace.taylorglo()
LR_SPACE = SearchSpace((Gene("lr", 1e-4, 1.0, 1e-4, 1.0, "log"),))
PAPER_OPERATORS = dict(
    select={"name": "selTournament", "tournsize": 2},
    mutate={"name": "mutMultiplicativeGaussian", "sigma": 0.2, "indpb": 1.0, "reset_prob": 0.05},
    mate={"name": "cxUniform", "indpb": 0.5},
)
SWAPPED_OPERATORS = dict(
    select={"name": "selBest"},
    mutate={"name": "mutGaussian", "mu": 0.0, "sigma": 3.0, "indpb": 0.5},
    mate={"name": "cxBlend", "alpha": 0.5},
)


def theta_fitness(individual):
    """A made-up objective over theta, so the loop has something to rank."""
    return (-sum((value - 1.0) ** 2 for value in individual[:8]),)


def toolbox_for(space=THETA_SPACE, operators=PAPER_OPERATORS, num_classes=10, init="uniform", **options):
    return make_toolbox(space, evaluate=theta_fitness, num_classes=num_classes, init=init, **operators, **options)


def evaluated_population(toolbox, size, seed=0):
    random.seed(seed)
    population = toolbox.population(n=size)
    for index, individual in enumerate(population):
        individual.uid = f"g000-{index:03d}"
        individual.fitness.values = toolbox.evaluate(individual)
    return population


def run_loop(toolbox, generations=6, size=12, elites=6, **options):
    population = evaluated_population(toolbox, size)
    halloffame = tools.HallOfFame(1, similar=same_uid)
    rows = []
    callback = lambda g, pop, evaluated, logbook: rows.extend(evaluated)  # noqa: E731
    options = {"elites_train": False, **options}  # Algorithm 1 as printed, unless a test asks otherwise
    _, logbook = eaElitist(population, toolbox, generations, elites, halloffame=halloffame, callback=callback,
                           start_gen=1, **options)
    return rows, logbook


@pytest.mark.parametrize("partners", ["population", "parents"])
@pytest.mark.parametrize("operators", [PAPER_OPERATORS, SWAPPED_OPERATORS])
def test_the_partner_is_never_the_parent(partners, operators):
    children, _ = run_loop(toolbox_for(operators=operators, partners=partners), generations=30, size=6, elites=2)
    crossed = [child for child in children if child.partner_uid is not None]
    assert len(crossed) == len(children) == 30 * 4
    assert all(child.partner_uid != child.parent_uid for child in crossed)


def test_partners_from_the_parents_are_other_selected_parents():
    toolbox = toolbox_for(partners="parents")
    population = evaluated_population(toolbox, 10)
    random.seed(1)
    for _ in range(50):
        parents = toolbox.select(population, 6)
        children = vary(parents, population, toolbox, 1, cxpb=1.0, mutpb=1.0)
        parent_uids = {parent.uid for parent in parents}
        for child in children:
            others = parent_uids - {child.parent_uid}
            assert child.partner_uid in (others or {ind.uid for ind in population} - {child.parent_uid})


def test_learnable_init_draws_only_learnable_theta_and_uniform_keeps_the_rest():
    learnable = evaluated_population(toolbox_for(init="learnable"), 60)
    assert all(is_learnable(ind[:8], 10) for ind in learnable)
    uniform = evaluated_population(toolbox_for(init="uniform"), 60)
    failing = sum(not is_learnable(ind[:8], 10) for ind in uniform)
    assert 35 <= failing <= 60  # about 86 % of uniform draws fail the check; all are kept


def test_learnable_init_with_an_impossible_range_is_one_clear_error():
    space = SearchSpace.taylorglo(-10, 10, init_low=5, init_high=6)  # margin < 0 throughout: never learnable
    from epbt_deap.config import ConfigError

    with pytest.raises(ConfigError, match="no learnable theta"):
        toolbox_for(space=space, init="learnable").individual()


@pytest.mark.parametrize("operators", [PAPER_OPERATORS, SWAPPED_OPERATORS])
def test_repair_keeps_every_child_learnable_or_gives_it_its_parents_genes(operators):
    toolbox = toolbox_for(operators=operators, init="learnable", repair_tries=10)
    population = evaluated_population(toolbox, 12)
    before = {ind.uid: list(ind) for ind in population}
    random.seed(5)
    parents = toolbox.select(population, 6)
    children = vary(parents, population, toolbox, 1, cxpb=1.0, mutpb=1.0)
    assert {ind.uid: list(ind) for ind in population} == before  # partner clones are thrown away, not repaired
    for child in children:
        assert is_learnable(child[:8], 10) or list(child) == before[child.parent_uid]


def test_without_repair_some_children_of_learnable_parents_are_not_learnable():
    toolbox = toolbox_for(init="learnable")
    population = evaluated_population(toolbox, 12)
    random.seed(5)
    children = vary(toolbox.select(population, 60), population, toolbox, 1, cxpb=1.0, mutpb=1.0)
    assert sum(not is_learnable(child[:8], 10) for child in children) >= 10


def test_repair_reruns_mutate_and_mate_then_falls_back_to_the_parents_genes():
    toolbox = toolbox_for(repair_tries=4)
    calls = {"mutate": 0, "mate": 0, "viable": 0}
    for role in ("mutate", "mate"):
        toolbox.decorate(role, lambda operator, role=role: lambda *a, **k: calls.__setitem__(role, calls[role] + 1)
                         or operator(*a, **k))
    toolbox.register("viable", lambda individual: calls.__setitem__("viable", calls["viable"] + 1) or False)
    population = evaluated_population(toolbox, 6)
    random.seed(2)
    (child,) = vary(population[:1], population, toolbox, 1, cxpb=1.0, mutpb=1.0)
    assert calls == {"mutate": 4, "mate": 4, "viable": 4}
    assert list(child) == list(population[0]) and child.partner_uid is None
    assert child.parent_uid == population[0].uid and not child.fitness.valid


def test_repair_does_nothing_without_theta_genes():
    def children(repair_tries):
        toolbox = make_toolbox(LR_SPACE, evaluate=lambda ind: (-abs(ind[0] - 0.01),), num_classes=10,
                               repair_tries=repair_tries, **PAPER_OPERATORS)
        population = evaluated_population(toolbox, 8)
        random.seed(3)
        return [list(child) for child in vary(toolbox.select(population, 4), population, toolbox, 1, 1.0, 1.0)]

    assert children(0) == children(10)


def test_elites_train_evaluates_the_whole_population_with_exact_lineage():
    children, logbook = run_loop(toolbox_for(), generations=4, size=10, elites=4, elites_train=True)
    assert logbook.select("evals") == [10, 10, 10, 10]
    for generation in (2, 3, 4):
        made = [ind for ind in children if ind.generation == generation]
        retrained = [ind for ind in made if ind.partner_uid is None and int(ind.uid[-3:]) >= 6]
        assert len(made) == 10 and len({ind.uid for ind in made}) == 10 and len(retrained) == 4
        previous = {ind.uid: ind for ind in children if ind.generation == generation - 1}
        for ind in retrained:
            assert list(ind) == list(previous[ind.parent_uid])  # same genes as the elite it continues


def test_without_elites_train_only_children_are_evaluated():
    _, logbook = run_loop(toolbox_for(), generations=4, size=10, elites=4)
    assert logbook.select("evals") == [6, 6, 6, 6]


def test_taylorglo_scale_multiplies_the_loss_and_never_touches_cross_entropy():
    logits, targets = torch.randn(8, 10), torch.randint(0, 10, (8,))
    genes = dict(zip(PARAMETER_NAMES, [1.0, 0.5, -2.0, 3.0, 1.0, 4.0, -1.0, 2.0]))
    unscaled = make_loss(TrainSettings(model="resnet8"), genes, torch.device("cpu"))(logits, targets)
    scaled = make_loss(TrainSettings(model="resnet8", taylorglo_scale=3.0), genes, torch.device("cpu"))
    assert scaled(logits, targets).item() == pytest.approx(3 * unscaled.item(), rel=1e-6)
    cross_entropy = make_loss(TrainSettings(model="resnet8", loss="cross_entropy", taylorglo_scale=3.0), genes,
                              torch.device("cpu"))
    assert cross_entropy(logits, targets).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, targets).item())


@pytest.mark.slow
def test_the_paper_config_pins_the_paper_options(tmp_path):
    """configs/cifar10_resnet32_epbt.yaml, shrunk to fake data: Algorithm 1 as printed."""
    from pathlib import Path

    config = load_config(Path(__file__).parent.parent / "configs" / "cifar10_resnet32_epbt.yaml", {
        "data.dataset": "fake", "data.val_size": None, "data.augment": False, "train.model": "resnet8",
        "train.epochs_per_generation": 1, "train.batch_size": 64, "evolution.population": 5,
        "evolution.elites": 2, "evolution.generations": 3, "resources.device": "cpu", "seed": 4})
    assert algorithm_options(config) == PAPER_ALGORITHM
    run(config, tmp_path / "run")
    rows, logbook = read_jsonl(tmp_path / "run" / "lineage.jsonl"), read_jsonl(tmp_path / "run" / "logbook.jsonl")
    assert [row["evals"] for row in logbook] == [5, 3, 3]
    theta = lambda row: [row["genes"][name] for name in PARAMETER_NAMES]  # noqa: E731
    assert any(not is_learnable(theta(row), 4) for row in rows if row["generation"] == 0)
    later = [row for row in rows if row["generation"] > 0]
    assert all(row["partner"] not in (None, row["parent"]) for row in later)


def test_options_are_validated_in_one_line():
    from epbt_deap.config import ConfigError

    for key, value, message in [("evolution.partners", "random", "evolution.partners"),
                                ("evolution.repair_tries", -1, "evolution.repair_tries"),
                                ("evolution.taylorglo.init", "normal", "evolution.taylorglo.init"),
                                ("train.taylorglo_scale", 0, "train.taylorglo_scale")]:
        with pytest.raises(ConfigError, match=message):
            build_config({}, {key: value})


def test_an_impossible_learnable_init_is_refused_before_the_run_directory_is_made(tmp_path):
    from epbt_deap.config import ConfigError

    config = build_config({"data": {"dataset": "digits"}, "train": {"model": "digits_cnn"},
                           "evolution": {"population": 4, "elites": 2, "taylorglo": {
                               "init": "learnable", "init_low": 5, "init_high": 6}},
                           "resources": {"device": "cpu"}})
    with pytest.raises(ConfigError, match="no learnable theta"):
        run(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_check_without_a_class_count_is_a_config_error():
    from epbt_deap.config import ConfigError

    toolbox = toolbox_for(num_classes=None)
    with pytest.raises(ConfigError, match="number of classes"):
        toolbox.viable(toolbox.individual())
    assert toolbox_for(space=LR_SPACE, operators=PAPER_OPERATORS, num_classes=None).viable([0.1])
