"""resources.threads_per_worker: the same torch threads everywhere, so the same run, bit for bit, on any worker count."""
import json

import pytest
import torch

from epbt_deap.execution.pool import InProcessPool, ProcessPool
from epbt_deap.run import run
from tests.helpers import make_context, read_jsonl, read_logbook, tiny, torch_threads


def test_the_in_process_pool_uses_the_threads_asked_for_then_gives_them_back():
    before = torch.get_num_threads()
    with InProcessPool(make_context, (None,), threads=before + 1) as pool:
        assert pool.map(torch_threads, [0]) == [before + 1] and pool.threads_per_worker == before + 1
    assert torch.get_num_threads() == before


@pytest.mark.slow
def test_worker_processes_use_the_threads_asked_for():
    with ProcessPool(make_context, (None,), ["cpu"], threads=3) as pool:
        assert pool.map(torch_threads, [0, 1]) == [3, 3] and pool.threads_per_worker == 3


def provenance(run_dir):
    return json.loads((run_dir / "provenance.json").read_text())


def recorded_threads(run_dir):
    return [entry["torch_threads_per_worker"] for entry in provenance(run_dir)]


def fitness_by_uid(run_dir):
    return {row["uid"]: row["fitness"] for row in read_jsonl(run_dir / "lineage.jsonl")}


@pytest.mark.slow
def test_with_fixed_threads_a_taylorglo_run_is_the_same_in_process_and_in_two_workers(tmp_path):
    fixed = {"train.loss": "taylorglo", "resources.threads_per_worker": 1}  # 2 workers fill 2 cores
    run(tiny(fixed), tmp_path / "in-process")
    run(tiny({**fixed, "resources.cpu_workers": 2}), tmp_path / "workers")
    assert recorded_threads(tmp_path / "in-process") == recorded_threads(tmp_path / "workers") == [1]
    assert [entry["workers"] for entry in provenance(tmp_path / "workers")] == [2]
    logbook = read_logbook(tmp_path / "in-process" / "logbook.jsonl")
    assert len(logbook) == 3 and read_logbook(tmp_path / "workers" / "logbook.jsonl") == logbook
    fitness = fitness_by_uid(tmp_path / "in-process")
    assert len(fitness) == 4 + 4 * 2 and fitness_by_uid(tmp_path / "workers") == fitness
