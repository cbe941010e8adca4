import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from epbt_deap import Individual, SearchSpace
from epbt_deap.errors import EvaluateContractError, GenerationFailedError
from epbt_deap.execution.evaluation import EvaluationMap, check_results, split_evenly, task_seed
from epbt_deap.execution.protocol import EvalResult
from epbt_deap.rundir.layout import RunLayout


class DyingPool:
    """Every evaluation's worker dies for good: the pool hands each task to on_failure."""

    workers = 2

    def map(self, fn, tasks, on_result=None, on_failure=None):
        return [on_failure(task, "its worker process died on every try, also when it ran alone") for task in tasks]


def test_a_failed_evaluation_is_recorded_and_keeps_the_parents_weights(tmp_path):
    space = SearchSpace.taylorglo()
    child = Individual(space.sample(), uid="g002-001", generation=2, checkpoint="parent.pt", epochs=4)
    with pytest.raises(GenerationFailedError, match="generation 2 failed or diverged; the first failure, g002-001: its"):
        EvaluationMap(DyingPool(), space, RunLayout(tmp_path), run_seed=0, epochs_per_generation=2)(None, [child])
    assert child.checkpoint == "parent.pt" and child.epochs == 4
    assert child.metrics["status"] == "failed" and child.metrics["detail"] == "its worker process died on every try, also when it ran alone"
    assert child.metrics["train_loss"] is None


def test_tasks_carry_the_run_clock_and_a_seed_per_uid(tmp_path):
    space = SearchSpace.taylorglo()
    child = Individual(space.sample(), uid="g003-000", generation=3, checkpoint="p.pt", epochs=2)
    task = EvaluationMap(DyingPool(), space, RunLayout(tmp_path), run_seed=5, epochs_per_generation=8).task_for(child)
    assert task.start_epoch == 24 and task.epochs == 8 and Path(task.parent_checkpoint) == tmp_path / "p.pt"
    assert Path(task.output_checkpoint) == tmp_path / "checkpoints" / "g003-000.pt"
    assert task.genes == space.decode(child)
    assert task.seed == task_seed(5, "g003-000") != task_seed(6, "g003-000") != task_seed(5, "g003-001")
    failed = EvalResult.failed(task, "x")
    assert (failed.uid, failed.fitness, failed.checkpoint, failed.status, failed.detail) == \
        ("g003-000", 0.0, None, "failed", "x")


@given(st.lists(st.integers(), max_size=50), st.integers(1, 12))
def test_split_evenly_keeps_order_and_balances(items, parts):
    groups = split_evenly(items, parts)
    assert [item for group in groups for item in group] == items
    assert len(groups) <= parts and all(groups)
    assert max(map(len, groups), default=0) - min(map(len, groups), default=0) <= 1


def test_a_group_whose_worker_dies_fails_each_of_its_children(tmp_path):
    space = SearchSpace.taylorglo()
    children = [Individual(space.sample(), uid=f"g001-00{i}", generation=1, checkpoint="p.pt", epochs=1)
                for i in range(3)]
    evaluation_map = EvaluationMap(DyingPool(), space, RunLayout(tmp_path), run_seed=0, epochs_per_generation=1, grouped=True)
    with pytest.raises(GenerationFailedError, match="all 3 evaluations"):
        evaluation_map(None, children)
    assert [child.metrics["status"] for child in children] == ["failed"] * 3


def test_without_validation_a_fitness_may_be_nan_but_must_be_a_number():
    child = Individual(SearchSpace.taylorglo().sample(), uid="g000-000", generation=0)
    task = EvaluationMap(DyingPool(), SearchSpace.taylorglo(), RunLayout(Path(".")), 0, 1).task_for(child)
    check_results([task], [EvalResult(task.uid, math.nan, 0.5, 1.0, 1, None, "ok", 0.0)], validated=False)
    check_results([task], [EvalResult(task.uid, np.float32(0.5), 0.5, 1.0, 1, None, "ok", 0.0)])  # numpy's too
    with pytest.raises(EvaluateContractError, match="evaluate returned fitness nan for g000-000; it must be the "
                                                    "validation accuracy, a finite number"):
        check_results([task], [EvalResult(task.uid, math.nan, 0.5, 1.0, 1, None, "ok", 0.0)], validated=True)
    with pytest.raises(EvaluateContractError, match="evaluate returned fitness None for g000-000; it must be a number"):
        check_results([task], [EvalResult(task.uid, None, 0.5, 1.0, 1, None, "ok", 0.0)], validated=False)
