"""The Python entry point: epbt_deap.evolve, resume and load_run return a Run (issue 24, item 6)."""
import epbt_deap
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
