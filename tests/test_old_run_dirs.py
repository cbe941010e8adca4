"""A run directory written by an older epbt-deap (commit 6f173e5) resumes to the uninterrupted run's logbook.

tests/fixtures/run_6f173e5 is that version's run of the config below (digits, population 4,
3 generations), stopped after generation 1; its best.pt and TensorBoard files are left out
to keep it small (resuming reads neither). Its pickled state names that version's modules.
"""
import pickle
import shutil
from pathlib import Path

from epbt_deap.config import load_config
from epbt_deap.evolution.algorithms import BestHallOfFame
from epbt_deap.run import resume, run
from tests.helpers import read_logbook

FIXTURE = Path(__file__).parent / "fixtures" / "run_6f173e5"


def test_a_run_directory_of_commit_6f173e5_resumes_to_the_uninterrupted_logbook(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(FIXTURE, old)
    resume(old)
    run(load_config(FIXTURE / "config.yaml"), tmp_path / "new")
    resumed, uninterrupted = read_logbook(old / "logbook.jsonl"), read_logbook(tmp_path / "new" / "logbook.jsonl")
    assert [row["gen"] for row in resumed] == [0, 1, 2]
    old_keys = set(read_logbook(FIXTURE / "logbook.jsonl")[0])  # the keys that version recorded
    assert [{key: row[key] for key in old_keys} for row in resumed] == \
        [{key: row[key] for key in old_keys} for row in uninterrupted]


def test_a_state_pickled_with_the_old_latest_hall_of_fame_loads_as_the_best_hall_of_fame():
    """Run states of runs without a validation set pickled a class named LatestHallOfFame."""
    halloffame = BestHallOfFame(2)
    old = pickle.dumps(halloffame, protocol=0).replace(b"\nBestHallOfFame\n", b"\nLatestHallOfFame\n")
    assert b"LatestHallOfFame" in old and b"BestHallOfFame" not in old
    loaded = pickle.loads(old)
    assert type(loaded) is BestHallOfFame and loaded.maxsize == 2
