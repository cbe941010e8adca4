"""A run directory written by an older epbt-deap (commit 6f173e5) resumes to the uninterrupted run.

tests/fixtures/run_6f173e5 is that version's run of the config below (digits, population 4,
3 generations), stopped after generation 1; its best.pt and TensorBoard files are left out
to keep it small (resuming reads neither). Its pickled state names that version's modules.

The individuals (uids, parents, partners, genes) must be the same bit for bit: they come from the
restored random state and populations. The measured accuracies are the same bit for bit only on a
CPU like the one that wrote the fixture: torch's kernels round differently on other instruction
sets (a CPU without AVX2 moved one validation accuracy by 2 of 360 images), so they are compared
to within a few images (one epoch from fresh weights reaches 0.62 to 0.94 here, generation 2 0.97).
"""
import pickle
import shutil
from pathlib import Path

import pytest

from epbt_deap.config import load_config
from epbt_deap.evolution.algorithms import BestHallOfFame
from epbt_deap.run import resume, run
from tests.helpers import read_jsonl, read_logbook

FIXTURE = Path(__file__).parent / "fixtures" / "run_6f173e5"
IDENTITY = ("uid", "generation", "parent", "partner", "genes", "epochs", "status")
MEASURED = ("fitness", "test_accuracy")
A_FEW_IMAGES = 0.02  # of digits' 360 validation and 360 test images


def test_a_run_directory_of_commit_6f173e5_resumes_to_the_uninterrupted_run(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(FIXTURE, old)
    resume(old)
    run(load_config(FIXTURE / "config.yaml"), tmp_path / "new")
    resumed, uninterrupted = read_jsonl(old / "lineage.jsonl"), read_jsonl(tmp_path / "new" / "lineage.jsonl")
    assert [row["generation"] for row in resumed] == [0] * 4 + [1] * 4 + [2] * 4
    assert [{key: row[key] for key in IDENTITY} for row in resumed] == \
        [{key: row[key] for key in IDENTITY} for row in uninterrupted]
    assert_within_a_few_images(resumed, uninterrupted, MEASURED)
    old_keys = set(read_logbook(FIXTURE / "logbook.jsonl")[0])  # the keys that version recorded
    resumed_log, uninterrupted_log = (read_logbook(run_dir / "logbook.jsonl") for run_dir in (old, tmp_path / "new"))
    assert [row["gen"] for row in resumed_log] == [row["gen"] for row in uninterrupted_log] == [0, 1, 2]
    assert_within_a_few_images(resumed_log, uninterrupted_log, old_keys)


def assert_within_a_few_images(rows, expected_rows, keys):
    for row, expected in zip(rows, expected_rows, strict=True):
        assert {key: row[key] for key in keys} == pytest.approx({key: expected[key] for key in keys}, abs=A_FEW_IMAGES)


def test_a_state_pickled_with_the_old_latest_hall_of_fame_loads_as_the_best_hall_of_fame():
    """Run states of runs without a validation set pickled a class named LatestHallOfFame."""
    halloffame = BestHallOfFame(2)
    old = pickle.dumps(halloffame, protocol=0).replace(b"\nBestHallOfFame\n", b"\nLatestHallOfFame\n")
    assert b"LatestHallOfFame" in old and b"BestHallOfFame" not in old
    loaded = pickle.loads(old)
    assert type(loaded) is BestHallOfFame and loaded.maxsize == 2
