"""The seam between the EA loop and the workers, torch-free.

What crosses it: :class:`EvalTask` to a worker, :class:`EvalResult` back. Who carries it:
a :class:`Pool` runs ``fn(context, item)`` on long-lived workers; an :class:`Observer`
hears progress.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Status = Literal["ok", "diverged", "failed"]


@dataclass(frozen=True)
class EvalTask:
    """Everything a worker needs to evaluate one individual; checkpoint paths are absolute."""

    uid: str
    genes: Mapping[str, float]
    parent_checkpoint: str | None
    output_checkpoint: str
    epochs: int
    start_epoch: int  # on the run's clock (generation x epochs per generation): sets the learning rate
    seed: int


@dataclass(frozen=True)
class EvalResult:
    """What a worker reports back; the main process writes it onto the individual."""

    uid: str
    fitness: float  # validation accuracy; nan for a run without a validation set (data.val_size: 0)
    test_accuracy: float
    train_loss: float
    epochs: int  # epochs the returned weights were trained in all, ancestors included
    checkpoint: str | None
    status: Status
    seconds: float
    detail: str = ""  # why an evaluation diverged or failed
    # fit and calibration (training.measure): val_nll, test_nll, test_ece, train_accuracy, and memorised with noise
    measures: dict[str, float] = field(default_factory=dict)

    @classmethod
    def failed(cls, task: EvalTask, reason: str) -> EvalResult:
        """The record of an evaluation that could not run: fitness 0, the weights unchanged."""
        return cls(task.uid, 0.0, 0.0, math.nan, 0, None, "failed", 0.0, reason)


class Pool(Protocol):
    """Runs ``fn(context, item)`` for many items on long-lived workers, one context each.

    ``on_result`` hears each result as it arrives; ``on_failure(item, reason)`` stands in
    for an item whose worker died on every try (without it, that raises). ``with pool:``
    closes the pool on the way out.
    """

    workers: int
    devices: list[str]  # one per worker
    threads_per_worker: int  # torch's intra-op threads in each worker

    def map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any],
            on_result: Callable[[Any], None] | None = None,
            on_failure: Callable[[Any, str], Any] | None = None) -> list[Any]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Observer(Protocol):
    """Receives progress events: the CLI's and the Python API's progress bars draw them; the rest of the library
    only logs."""

    def generation_started(self, generation: int, evaluations: int) -> None: ...

    def evaluation_finished(self, result: EvalResult) -> None: ...

    def generation_finished(self, row: dict[str, Any]) -> None: ...
