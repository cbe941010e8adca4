"""The seam between the loop and the workers: torch-free, and any pool runs any ``fn(context, item)``."""
import inspect
import pickle
from pathlib import Path

import pytest

from epbt_deap.execution.pool import InProcessPool, ProcessPool
from epbt_deap.execution.protocol import EvalResult, EvalTask, Pool
from epbt_deap.execution.ray_pool import RayPool
from epbt_deap.execution.shipping import Parcel, ShippingPool
from tests.helpers import run_without_importing

TORCH_FREE = ("epbt_deap.evolution", "epbt_deap.execution.protocol", "epbt_deap.execution.evaluation",
              "epbt_deap.rundir.layout", "epbt_deap.rundir.logs", "epbt_deap.rundir.show", "epbt_deap.rundir.lock",
              "epbt_deap.config", "epbt_deap.errors")


def test_the_loop_the_seam_and_the_run_directory_readers_import_without_torch():
    """Every module of evolution/, the protocol and evaluation map, and the readers ``show`` uses."""
    check = ("import importlib, pkgutil, sys, epbt_deap.evolution as evolution; "
             "names = [f'epbt_deap.evolution.{m.name}' for m in pkgutil.iter_modules(evolution.__path__)]; "
             f"names += {list(TORCH_FREE)!r}; "
             "[importlib.import_module(name) for name in names]; print(len(names))")
    assert int(run_without_importing(check, "torch")) >= 8 + len(TORCH_FREE)  # evolution/ holds eight modules or more


@pytest.mark.parametrize("pool", [InProcessPool, ProcessPool, RayPool, ShippingPool])
def test_every_pool_has_the_protocols_methods_with_its_parameters(pool):
    for method in ("map", "close"):
        assert list(inspect.signature(getattr(pool, method)).parameters) == \
            list(inspect.signature(getattr(Pool, method)).parameters), f"{pool.__name__}.{method}"


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

    heard = []  # each result as it arrives, and whether its checkpoint is in the run directory by then

    def hear(result):
        heard.append((result.uid, Path(result.checkpoint).is_relative_to(run_dir) and Path(result.checkpoint).exists()))

    with ShippingPool(pool_class(lambda device: str(run_dir), ())) as pool:
        results = pool.map(grow, [task("child", "parent.pt"), task("fresh", None)], hear)
    assert [result.checkpoint for result in results] == [str(run_dir / "checkpoints" / f"{uid}.pt")
                                                         for uid in ("child", "fresh")]
    assert (run_dir / "checkpoints" / "child.pt").read_bytes() == b"weights+"
    assert (run_dir / "checkpoints" / "fresh.pt").read_bytes() == b"+"
    assert heard == [("child", True), ("fresh", True)]


def test_a_parcel_carries_its_parent_only_when_pickled(tmp_path):
    (tmp_path / "parent.pt").write_bytes(b"weights")
    parcel = Parcel(EvalTask("child", {}, str(tmp_path / "parent.pt"), str(tmp_path / "child.pt"), 1, 0, 0))
    assert parcel.parent is None
    travelled = pickle.loads(pickle.dumps(parcel))
    (tmp_path / "parent.pt").unlink()
    assert travelled.parent == b"weights" and travelled.parent_bytes() == b"weights"
