"""The Python entry point: epbt_deap.evolve, resume and load_run return a Run (issue 24, item 6)."""
import pytest

import epbt_deap
from epbt_deap.errors import RunDirError
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


def test_resume_extends_and_load_run_reads_the_same_run(tmp_path):
    epbt_deap.evolve(tiny(), run_dir=tmp_path / "run", evolution={"generations": 2}, progress=False)
    resumed = epbt_deap.resume(tmp_path / "run", generations=3, lr_milestones=[2], progress=False)
    assert [row["gen"] for row in resumed.logbook] == [0, 1, 2]
    loaded = epbt_deap.load_run(tmp_path / "run")
    assert loaded.lineage == resumed.lineage and loaded.best_uid == resumed.best_uid
    (tmp_path / "run" / "lineage.jsonl").unlink()  # a run of an old version, or a damaged one
    with pytest.raises(RunDirError, match="no individual in its lineage"):
        epbt_deap.load_run(tmp_path / "run").best_uid
