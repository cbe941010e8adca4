"""Evaluations on workers that cannot see the run directory: checkpoints travel as bytes.

:class:`ShippedEvaluation` wraps any evaluation function ``fn(context, task)`` so that
any pool runs it on such workers (:class:`ShippingPool`): the main process hands out
:class:`Parcel` items (a task whose parent checkpoint's bytes go with it when it is
pickled for the trip) and turns each returned :class:`Delivery` back into a result,
writing the child's checkpoint into the run directory itself.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from epbt_deap.execution.protocol import EvalResult, EvalTask, Pool
from epbt_deap.rundir.checkpoints import write_atomically


@dataclass(frozen=True)
class Parcel:
    """A task and its parent checkpoint's bytes, read from disk only when the parcel is pickled."""

    task: EvalTask
    parent: bytes | None = None

    @property
    def uid(self) -> str:
        """The task's uid, which names the parcel in errors."""
        return self.task.uid

    def parent_bytes(self) -> bytes | None:
        """The parent checkpoint's bytes: carried, or read here (where the parcel never left home)."""
        if self.parent is None and self.task.parent_checkpoint is not None:
            return Path(self.task.parent_checkpoint).read_bytes()
        return self.parent

    def __reduce__(self) -> tuple[type, tuple[EvalTask, bytes | None]]:
        return Parcel, (self.task, self.parent_bytes())


@dataclass
class Delivery:
    """A worker's result and the bytes of the checkpoint it saved (None when it saved none, or once
    unpacked: the bytes are dropped as soon as they are on disk)."""

    result: EvalResult
    checkpoint: bytes | None = None

    def unpack(self, task: EvalTask) -> EvalResult:
        """Write the checkpoint where ``task`` asked for it, once; the result then names that path."""
        if self.checkpoint is not None:
            write_atomically(task.output_checkpoint, self.checkpoint)
            self.result, self.checkpoint = replace(self.result, checkpoint=task.output_checkpoint), None
        return self.result


@dataclass(frozen=True)
class ShippedEvaluation:
    """``evaluate`` run on a parcel: the checkpoints live in a temporary folder of the worker."""

    evaluate: Callable[[Any, EvalTask], EvalResult]

    def __call__(self, context: Any, parcel: Parcel) -> Delivery:
        with tempfile.TemporaryDirectory() as folder:
            parent, parent_bytes = None, parcel.parent_bytes()
            if parent_bytes is not None:
                parent = Path(folder) / "parent.pt"
                parent.write_bytes(parent_bytes)
            output = Path(folder) / "child.pt"
            local = replace(parcel.task, parent_checkpoint=parent and str(parent), output_checkpoint=str(output))
            result = self.evaluate(context, local)
            return Delivery(result, output.read_bytes() if result.checkpoint is not None else None)


class ShippingPool(Pool):
    """A pool whose workers do not see the run directory: each task's checkpoints travel as bytes.

    It wraps any :class:`Pool` (Ray actors on nodes without shared storage): ``map`` hands
    the workers :class:`Parcel` items and writes each child's checkpoint into the run
    directory from the :class:`Delivery` that comes back. Single tasks only (not groups).
    """

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.workers, self.devices, self.threads_per_worker = pool.workers, pool.devices, pool.threads_per_worker

    def map(self, fn: Callable[[Any, EvalTask], EvalResult], items: Sequence[EvalTask],
            on_result: Callable[[EvalResult], None] | None = None,
            on_failure: Callable[[EvalTask, str], EvalResult] | None = None) -> list[EvalResult]:
        """``fn`` for every task, its checkpoints shipped as bytes and written as each arrives (a
        generation's checkpoints never wait in memory together); results in task order."""
        by_uid = {task.uid: task for task in items}

        def arrived(delivery: Delivery) -> None:
            result = delivery.unpack(by_uid[delivery.result.uid])
            if on_result is not None:
                on_result(result)

        failed = None if on_failure is None else lambda parcel, reason: Delivery(on_failure(parcel.task, reason))
        deliveries = self.pool.map(ShippedEvaluation(fn), [Parcel(task) for task in items], arrived, failed)
        return [delivery.unpack(task) for delivery, task in zip(deliveries, items)]

    def close(self) -> None:
        self.pool.close()
