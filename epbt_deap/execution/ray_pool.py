"""Evaluations on a Ray cluster: the same ``map`` contract as :mod:`epbt_deap.execution.pool`.

Each Ray actor holds one long-lived context (the dataset on its device) and asks for a
fraction of a GPU (``1 / workers_per_gpu``), so several models share a GPU and any node
can take any child. An actor that dies is restarted and its call retried by Ray; a call
that fails again is handed to ``on_failure``. (Without a run directory that every node
sees, the evaluation function itself ships checkpoints as bytes: see :mod:`epbt_deap.execution.shipping`.)
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from epbt_deap.errors import EpbtError, WorkerError, message_of, raised_by_worker
from epbt_deap.execution.pool import DeviceError, use_device
from epbt_deap.execution.protocol import Pool

logger = logging.getLogger("epbt_deap")

ACTOR_THREADS = 1  # torch threads per actor unless resources.threads_per_worker says: Ray gives each one CPU at most
RAY_DEVICES = ("auto", "cpu", "cuda")
CONNECT_TIMEOUT_S = 10  # for a cluster's head node to accept a connection


class RayEvaluator:
    """A Ray actor: builds the context once, then runs ``fn(context, item)`` calls."""

    def __init__(self, make_context: Callable[..., Any], context_args: Sequence[Any], device: str,
                 threads: int, driver_folder: str | None = None) -> None:
        torch.set_num_threads(threads)
        if driver_folder and os.path.isdir(driver_folder) and driver_folder not in sys.path:
            sys.path.insert(0, driver_folder)  # the driver's folder, where it is on this node too (shared storage)
        if device == "cuda":  # Ray shows the actor only its own GPU
            device = "cuda:0"
        use_device(device)
        self.context = make_context(device, *context_args)

    def run(self, fn: Callable[[Any, Any], Any], item: Any) -> Any:
        return fn(self.context, item)


class RayBackendError(EpbtError):
    """Ray is not installed, or the cluster asked for does not answer."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayBackendError("the ray backend needs Ray: pip install 'epbt-deap[ray]'") from None
    return ray


def check_ray_backend(device: str, address: str | None) -> None:
    """One-line errors, before any work, for what the Ray backend cannot use.

    Ray places actors on the cluster's GPUs itself, so only 'auto', 'cpu' or 'cuda' mean
    something as ``device``; a cluster ``address`` must answer (Ray itself would wait for
    minutes); without one, a local Ray instance starts.
    """
    if device not in RAY_DEVICES:
        raise DeviceError(f"device {device!r} with the ray backend: use auto, cpu or cuda "
                          "(Ray places each actor on a GPU of the cluster)")
    _ray()  # installed?
    if address is None or address.startswith("ray://"):
        return
    try:
        from ray._private.services import canonicalize_bootstrap_address  # no public equivalent

        head = canonicalize_bootstrap_address(address)  # "auto": the cluster `ray start` left
    except (ConnectionError, ValueError) as error:
        raise RayBackendError(f"no Ray cluster at {address!r}: {message_of(error)}") from None
    host, _, port = head.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise RayBackendError(f"no Ray cluster answers at {address} ({head}: {error}); start one with "
                              "`ray start --head`, or leave --ray-address out to start a local Ray") from None


def actor_resources(gpus: int, workers_per_gpu: int, cpu_workers: int, cpus: int) -> tuple[int, dict[str, float]]:
    """How many actors, and what each asks Ray for: on GPUs, ``workers_per_gpu`` per GPU, each with that share
    of a GPU and of a CPU (so a node with a CPU per GPU places them all); else ``cpu_workers`` (0: one per
    CPU of the cluster), a CPU each."""
    if gpus:
        return gpus * workers_per_gpu, {"num_gpus": 1 / workers_per_gpu, "num_cpus": 1 / workers_per_gpu}
    return cpu_workers or cpus, {"num_cpus": 1}


class RayPool(Pool):
    """Ray actors, one per model trained at a time, on the cluster at ``address`` or a new local Ray.

    Without ``address`` a local Ray instance starts, even where ``ray start`` left a cluster
    running: joining one takes ``--ray-address auto``. A Ray this pool started, it shuts down
    on closing (a Ray the caller started stays). ``max_workers`` caps the actors (replay
    trains one model: one actor); ``threads`` sets each actor's torch threads.
    """

    def __init__(self, make_context: Callable[..., Any], context_args: Sequence[Any], device: str,
                 workers_per_gpu: int = 1, cpu_workers: int = 0, address: str | None = None,
                 max_workers: int | None = None, threads: int | None = None) -> None:
        ray = _ray()
        self.started_ray, self.actors = not ray.is_initialized(), []
        if self.started_ray:
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=False)
        gpus = int(ray.cluster_resources().get("GPU", 0)) if device != "cpu" else 0
        if device == "cuda" and not gpus:
            self.close()
            raise DeviceError("device 'cuda' with the ray backend: the Ray cluster has no GPU "
                              "(use auto to take GPUs where there are any, or cpu)")
        count, options = actor_resources(gpus, workers_per_gpu, cpu_workers, int(ray.cluster_resources().get("CPU", 1)))
        count = min(count, max_workers or count)
        actor_class = ray.remote(max_restarts=1, max_task_retries=1, **options)(RayEvaluator)
        shared_args = ray.put(tuple(context_args))
        self.threads_per_worker = threads or ACTOR_THREADS
        self._new_actor = lambda: actor_class.remote(make_context, shared_args, "cuda" if gpus else "cpu",
                                                     self.threads_per_worker, os.getcwd())
        self.actors = [self._new_actor() for _ in range(count)]
        self.workers = count
        self.devices = ["cuda" if gpus else "cpu"] * count
        logger.info("Ray backend: %d actors (%s)", count, options)

    def map(self, fn: Callable[[Any, Any], Any], items: Iterable[Any],
            on_result: Callable[[Any], None] | None = None,
            on_failure: Callable[[Any, str], Any] | None = None) -> list[Any]:
        """``fn(context, item)`` for every item, in order, on whichever actor is free."""
        ray = _ray()
        items = list(items)
        waiting = list(enumerate(items))[::-1]
        idle = list(self.actors)
        running: dict[Any, tuple[int, Any]] = {}
        results: dict[int, Any] = {}
        while waiting or running:
            while waiting and idle:
                index, item = waiting.pop()
                actor = idle.pop()
                running[actor.run.remote(fn, item)] = (index, actor)
            (done,), _ = ray.wait(list(running), num_returns=1)
            index, actor = running.pop(done)
            try:
                results[index] = ray.get(done)
                idle.append(actor)
            except ray.exceptions.RayActorError as error:
                idle.append(self._replace(actor))
                if on_failure is None:
                    raise WorkerError.of(items[index], error) from error
                results[index] = on_failure(items[index], "its Ray actor died, also on the retry")
            except ray.exceptions.RayTaskError as error:
                idle.append(actor)
                raise raised_by_worker(items[index], error.cause) from None
            if on_result is not None:
                on_result(results[index])
        return [results[index] for index in range(len(items))]

    def _replace(self, dead: Any) -> Any:
        """A fresh actor in place of one that died past its restart."""
        fresh = self._new_actor()
        self.actors[self.actors.index(dead)] = fresh
        return fresh

    def close(self) -> None:
        ray = _ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self.started_ray and ray.is_initialized():
            ray.shutdown()

