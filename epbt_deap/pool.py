"""Worker pools that run ``fn(context, item)`` for many items, one long-lived context per worker.

:class:`ProcessPool` spawns persistent processes (``torch.multiprocessing``, spawn start
method), each pinned to one device; its context (e.g. the dataset moved to that device)
is built once when the worker starts. Tensors in ``context_args`` travel through shared
memory, so a dataset loaded once in the main process is not copied per worker.
:class:`InProcessPool` runs everything in the calling process, for tests and debugging.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from typing import Any

import torch
import torch.multiprocessing as torch_mp

logger = logging.getLogger("epbt_deap")

_worker_context: Any = None  # set once in each worker process by _start_worker


class DeviceError(ValueError):
    """A device setting that this machine cannot honour."""


class WorkerError(RuntimeError):
    """An evaluation failed in a worker; the message names the item."""


def resolve_devices(device: str, workers_per_gpu: int = 1, cpu_workers: int = 0) -> list[str]:
    """One entry per worker: GPUs round robin (``workers_per_gpu`` each) or the CPU.

    ``device`` is 'auto', 'cpu', 'cuda' (every GPU) or a comma-separated list such as
    'cuda:0,cuda:1'. ``cpu_workers=0`` means a single in-process evaluator on the CPU.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return ["cpu"] * cpu_workers
    if device == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("device 'cuda' asked for, but no CUDA GPU is available")
        gpus = [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    else:
        gpus = [name.strip() for name in device.split(",") if name.strip()]
        for name in gpus:
            try:
                torch.device(name)
            except RuntimeError:
                raise DeviceError(f"device {name!r} is not a torch device name") from None
    return [gpu for _ in range(workers_per_gpu) for gpu in gpus]


def threads_per_cpu_worker(workers: int) -> int:
    """Split the machine's cores evenly among CPU workers."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(workers, 1))


def item_label(item: Any) -> str:
    return str(getattr(item, "uid", item))


class InProcessPool:
    """Runs every item in this process, on one device."""

    def __init__(self, make_context: Callable[..., Any], context_args: Sequence[Any], device: str = "cpu") -> None:
        self.context = make_context(device, *context_args)

    def map(self, fn: Callable[[Any, Any], Any], items: Iterable[Any],
            on_result: Callable[[Any], None] | None = None) -> list[Any]:
        results = []
        for item in items:
            try:
                result = fn(self.context, item)
            except Exception as error:
                raise WorkerError(f"evaluation of {item_label(item)} failed: {type(error).__name__}: {error}") from error
            if on_result is not None:
                on_result(result)
            results.append(result)
        return results

    def close(self) -> None:
        self.context = None

    def __enter__(self) -> InProcessPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_worker(devices: Any, threads: int, make_context: Callable[..., Any], context_args: Sequence[Any]) -> None:
    """Worker initializer: take a device from the queue, then build the context once."""
    global _worker_context
    device = devices.get()
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    _worker_context = make_context(device, *context_args)
    logger.debug("worker %d ready on %s", os.getpid(), device)


def _run_in_worker(fn: Callable[[Any, Any], Any], item: Any) -> Any:
    return fn(_worker_context, item)


class ProcessPool:
    """Persistent spawned workers, one per entry of ``devices``."""

    def __init__(self, make_context: Callable[..., Any], context_args: Sequence[Any], devices: Sequence[str]) -> None:
        if not devices:
            raise ValueError("a process pool needs at least one device")
        ctx = torch_mp.get_context("spawn")
        queue = ctx.SimpleQueue()
        for device in devices:
            queue.put(device)
        threads = threads_per_cpu_worker(len(devices)) if devices[0] == "cpu" else 1
        self._executor = ProcessPoolExecutor(
            max_workers=len(devices), mp_context=ctx, initializer=_start_worker,
            initargs=(queue, threads, make_context, tuple(context_args)),
        )

    def map(self, fn: Callable[[Any, Any], Any], items: Iterable[Any],
            on_result: Callable[[Any], None] | None = None) -> list[Any]:
        """``fn(context, item)`` for every item, in order; the first failure raises WorkerError."""
        items = list(items)
        futures: dict[Future, Any] = {self._executor.submit(_run_in_worker, fn, item): item for item in items}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    label = item_label(futures[future])
                    raise WorkerError(f"evaluation of {label} failed: {type(error).__name__}: {error}") from error
                if on_result is not None:
                    on_result(future.result())
        return [future.result() for future in futures]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_pool(make_context: Callable[..., Any], context_args: Sequence[Any], devices: Sequence[str]) -> InProcessPool | ProcessPool:
    """An in-process pool on the CPU when ``devices`` is empty, else a process pool."""
    if not devices:
        return InProcessPool(make_context, context_args, "cpu")
    return ProcessPool(make_context, context_args, devices)
