"""The seam between the loop and the workers: torch-free, and any pool runs any ``fn(context, item)``."""
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from epbt_deap.contract import EvalResult, EvalTask, Pool
from epbt_deap.pool import InProcessPool, ProcessPool
from epbt_deap.ray_pool import RayPool
from epbt_deap.shipping import Parcel, map_shipped


@pytest.mark.parametrize("module", ["epbt_deap.contract", "epbt_deap.errors", "epbt_deap.evaluation"])
def test_the_seam_imports_without_torch(module):
    check = f"import {module}, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_pool_implements_the_pool_protocol():
    assert all(Pool in pool.__mro__ for pool in (InProcessPool, ProcessPool, RayPool))  # visibly, by subclassing


def grow(context, task):
    """A stand-in evaluation: the child's checkpoint is the parent's bytes plus one, from paths of its own."""
    assert not task.output_checkpoint.startswith(context)  # the worker never saw the run directory
    parent = Path(task.parent_checkpoint).read_bytes() if task.parent_checkpoint else b""
    Path(task.output_checkpoint).write_bytes(parent + b"+")
    return EvalResult(task.uid, 1.0, 1.0, 0.5, 1, task.output_checkpoint, "ok", 0.0)


class RemotePool(InProcessPool):
    """In-process, but every item and result crosses a pickle, as to a worker on another node."""

    def map(self, fn, items, on_result=None, on_failure=None):
        results = super().map(fn, [pickle.loads(pickle.dumps(item)) for item in items], on_result, on_failure)
        return [pickle.loads(pickle.dumps(result)) for result in results]


@pytest.mark.parametrize("pool_class", [InProcessPool, RemotePool], ids=["same-process", "pickled"])
def test_shipped_checkpoints_arrive_and_come_back_as_bytes(tmp_path, pool_class):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "parent.pt").write_bytes(b"weights")

    def task(uid, parent):
        return EvalTask(uid, {}, parent and str(run_dir / "checkpoints" / parent), str(run_dir / "checkpoints" / f"{uid}.pt"),
                        1, 0, 0)

    heard = []
    with pool_class(lambda device: str(run_dir), ()) as pool:
        results = map_shipped(pool, grow, [task("child", "parent.pt"), task("fresh", None)], heard.append)
    assert [result.checkpoint for result in results] == [str(run_dir / "checkpoints" / f"{uid}.pt")
                                                         for uid in ("child", "fresh")]
    assert (run_dir / "checkpoints" / "child.pt").read_bytes() == b"weights+"
    assert (run_dir / "checkpoints" / "fresh.pt").read_bytes() == b"+"
    assert [result.uid for result in heard] == ["child", "fresh"]


def test_a_parcel_carries_its_parent_only_when_pickled(tmp_path):
    (tmp_path / "parent.pt").write_bytes(b"weights")
    parcel = Parcel(EvalTask("child", {}, str(tmp_path / "parent.pt"), str(tmp_path / "child.pt"), 1, 0, 0))
    assert parcel.parent is None
    travelled = pickle.loads(pickle.dumps(parcel))
    (tmp_path / "parent.pt").unlink()
    assert travelled.parent == b"weights" and travelled.parent_bytes() == b"weights"
