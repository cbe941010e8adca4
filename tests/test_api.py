"""The Python entry point: epbt_deap.evolve, resume and load_run return a Run (issue 24, item 6)."""
from pathlib import Path

import yaml

import epbt_deap
from epbt_deap.api import config_of
from epbt_deap.config import EvolutionConfig, load_config
from epbt_deap.schedule import LossSchedule
from tests.helpers import tiny


def test_evolve_returns_the_best_its_genes_and_its_schedule(tmp_path, capsys):
    run = epbt_deap.evolve(tiny(), run_dir=tmp_path / "run", evolution={"generations": 2}, seed=5)
    assert run.config.seed == 5 and run.config.evolution.generations == 2
    assert run.run_dir == tmp_path / "run" and len(run.logbook) == 2
    assert 0 <= run.best_test <= 1 and 0 <= run.best_validation <= 1
    assert run.best_validation == max(row["fitness"] for row in run.lineage)
    assert sorted(run.best_genes) == [f"theta_{i}" for i in range(8)]
    assert isinstance(run.schedule, LossSchedule) and run.schedule.steps[-1].uid == run.best_uid
    assert capsys.readouterr().out == ""  # the library prints nothing; the bar goes to stderr


def test_nested_overrides_set_keys_and_replace_operators_and_genes_whole():
    base = {**_tiny_dict(), "evolution": {**_tiny_dict()["evolution"], "genes": {"momentum": {"low": 0.5, "high": 0.99}}}}
    config = config_of(base, {"train": {"lr": 0.05}, "evolution": {"mutate": {"name": "mutPerturb"},
                                                                   "genes": {"lr": {"low": 0.01, "high": 0.2}}}})
    assert config.train.lr == 0.05 and config.train.batch_size == tiny().train.batch_size
    assert config.evolution.mutate.model_dump() == {"name": "mutPerturb"}  # not merged into the default's sigma
    assert config.search_space().names[-1] == "lr" and "momentum" not in config.search_space().names
    assert config_of("quickstart", {"seed": 9}) == load_config(Path("quickstart"), {"seed": 9})
    sigma = config_of("quickstart", {"evolution": {"mutate": {"sigma": 0.3}, "select": {"tournsize": 3}}}).evolution
    assert sigma.mutate.spec() == {**EvolutionConfig.default("mutate"), "sigma": 0.3}  # one argument, as --set
    assert sigma.select.spec() == {"name": "selTournament", "tournsize": 3}


def _tiny_dict():
    return yaml.safe_load(tiny().to_yaml())
