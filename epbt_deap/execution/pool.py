"""Worker pools that run ``fn(context, item)`` for many items, one long-lived context per worker.

:class:`ProcessPool` starts persistent processes (``torch.multiprocessing``), each pinned
to one device; its context (e.g. the dataset moved to that device) is built once when the
worker starts. Workers fork from a server process that imports torch once, and nothing else
(the forkserver start method): the workers of a pool share that one import, and a worker
that died is replaced in a fraction of a second. The server never touches a GPU, so CUDA
is safe in the workers, and each worker imports the project's modules itself, from the main
process's ``sys.path``. Off Linux, workers are spawned: Windows has no fork, and on macOS
forking a process that has loaded Apple's system frameworks may crash (why Python spawns there).
The server's environment is the main process's when its first pool started: workers see later
changes to ``os.environ`` only where they are spawned.
Tensors in ``context_args`` travel through shared memory (one file descriptor each, passed
through the server, which takes at most about 250 per worker), so a dataset loaded once in
the main process is not copied per worker.
:class:`InProcessPool` runs everything in the calling process, for tests and debugging.
"""
from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import torch
import torch.multiprocessing as torch_mp

from epbt_deap.errors import EpbtError, WorkerError, WorkerStartError, raised_by_worker
from epbt_deap.execution.protocol import Pool

logger = logging.getLogger("epbt_deap")

_worker_context: Any = None  # set once in each worker process by _start_worker
_worker_start_error: WorkerStartError | None = None  # or why it could not be set


class DeviceError(EpbtError):
    """A device setting that this machine cannot honour."""


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
        check_device(device)
        gpus = [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    else:
        gpus = [name.strip() for name in device.split(",") if name.strip()]
        for name in gpus:
            check_device(name)
    return [gpu for _ in range(workers_per_gpu) for gpu in gpus]


def check_device(name: str) -> None:
    """Raise a one-line DeviceError unless this machine has the torch device ``name``."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"device {name!r} is not a torch device name") from None
    if device.type == "cpu" or (device.type == "mps" and torch.backends.mps.is_available()):
        return
    if device.type != "cuda":
        raise DeviceError(f"device {name!r} is not available here; use cpu, cuda or a list such as cuda:0,cuda:1")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not gpus:
        raise DeviceError(f"device {name!r} asked for, but no CUDA GPU is available")
    if device.index is not None and device.index >= gpus:
        raise DeviceError(f"device {name!r} does not exist: this machine has {gpus} CUDA GPU(s), "
                          f"cuda:0 to cuda:{gpus - 1}")


def threads_per_cpu_worker(workers: int) -> int:
    """Split the machine's cores evenly among CPU workers."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(workers, 1))


class InProcessPool(Pool):
    """Runs every item in this process, on one device.

    An evaluation seeds torch's random stream; closing the pool gives the caller's CPU stream
    back (in a notebook, ``evolve()`` leaves ``torch.rand`` where it was)."""

    workers = 1

    def __init__(self, make_context: Callable[..., Any], context_args: Sequence[Any], device: str = "cpu",
                 threads: int | None = None) -> None:
        """``threads``: torch threads while the pool is open (this process's own until closed); None keeps them."""
        self.devices = [device]
        self._rng_before = torch.random.get_rng_state()
        self._threads_before = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        self.threads_per_worker = torch.get_num_threads()
        try:
            self.context = make_context(device, *context_args)
        except Exception as error:
            self.close()
            raise WorkerStartError.of(device, error) from error

    def map(self, fn: Callable[[Any, Any], Any], items: Iterable[Any],
            on_result: Callable[[Any], None] | None = None,
            on_failure: Callable[[Any, str], Any] | None = None) -> list[Any]:
        """``fn(context, item)`` for every item; ``on_failure`` is unused (nothing can die alone)."""
        results = []
        for item in items:
            try:
                result = fn(self.context, item)
            except Exception as error:
                raise raised_by_worker(item, error) from error
            if on_result is not None:
                on_result(result)
            results.append(result)
        return results

    def close(self) -> None:
        self.context = None
        torch.set_num_threads(self._threads_before)
        torch.random.set_rng_state(self._rng_before)


def use_device(device: str) -> None:
    """Make ``device`` this process's own; on a GPU, cuDNN then picks its fastest kernels for the shapes."""
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True


def exit_with_parent() -> None:
    """Watch, from a daemon thread, for the process that started this one to die, and exit then.

    A main process killed with SIGKILL cannot stop its workers; without this they would
    finish their evaluations and write checkpoints into a run directory that a resume
    may already be writing. The watch waits on multiprocessing's sentinel of the parent,
    a pipe that the kernel closes when the parent dies, however it dies (also before this
    process got this far), and whichever process forked this one.
    """

    def watch() -> None:
        parent = multiprocessing.parent_process()
        if parent is not None:
            parent.join()
            os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _start_worker(devices: Any, threads: int, make_context: Callable[..., Any], context_args: Sequence[Any]) -> None:
    """Worker initializer: exit with the main process, take a device from the queue, then build the context once.

    A context that cannot be built (the GPU out of memory, say) is kept as the error each item
    then raises: raised in the initializer, it would break the pool, the items would run again
    and again, and the cause would be lost to a log line of the worker.
    """
    global _worker_context, _worker_start_error
    exit_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    device = devices.get()
    torch.set_num_threads(threads)
    try:
        use_device(device)
        _worker_context = make_context(device, *context_args)
    except Exception as error:
        _worker_start_error = WorkerStartError.of(device, error)
        return
    logger.debug("worker %d ready on %s", os.getpid(), device)


def _run_in_worker(fn: Callable[[Any, Any], Any], item: Any) -> Any:
    if _worker_start_error is not None:
        raise _worker_start_error
    return fn(_worker_context, item)


def worker_start_context() -> multiprocessing.context.BaseContext:
    """How workers start: on Linux, forked from a server that has imported torch alone; elsewhere
    spawned. Torch is most of a worker's import time; any other module preloaded there would come
    from the server's ``sys.path`` (Python 3.11 starts it with the working directory first) and
    could touch CUDA at import."""
    if not sys.platform.startswith("linux"):
        return torch_mp.get_context("spawn")
    context = torch_mp.get_context("forkserver")
    context.set_forkserver_preload(["torch"])
    return context


def start_server(context: multiprocessing.context.BaseContext) -> None:
    """Start the forkserver (where ``context`` uses one) with Ctrl-C ignored from its first instruction.

    It inherits the ignored signal through exec, so a Ctrl-C while it imports torch (about 2 s)
    no longer kills it with a traceback; the main process ignores Ctrl-C only while it spawns the
    server. Off the main thread, where signal handlers cannot be set, the server starts when the
    first worker does, as before."""
    if context.get_start_method() != "forkserver" or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:  # None: a handler set outside Python, which cannot be set back; the default stands in
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


class ProcessPool(Pool):
    """Persistent worker processes, one per entry of ``devices``.

    A worker that dies (killed, out of memory, a crash in native code) breaks the pool;
    the pool is rebuilt and the unfinished items run again. Items caught in a second
    break are then run one at a time, so the item that kills its worker is known for
    sure: it is handed to ``on_failure`` (or raises WorkerError), and no other is.
    """

    def __init__(self, make_context: Callable[..., Any], context_args: Sequence[Any], devices: Sequence[str],
                 threads: int | None = None) -> None:
        """``threads``: torch threads in each worker; None splits the cores among CPU workers (1 on a GPU)."""
        if not devices:
            raise ValueError("a process pool needs at least one device")
        self.devices = list(devices)
        self.workers = len(self.devices)
        self.threads_per_worker = threads or (threads_per_cpu_worker(self.workers) if self.devices[0] == "cpu" else 1)
        self._start_args = (make_context, tuple(context_args))
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        ctx = worker_start_context()
        start_server(ctx)
        queue = ctx.SimpleQueue()
        for device in self.devices:
            queue.put(device)
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_start_worker,
                                   initargs=(queue, self.threads_per_worker, *self._start_args))

    def _restart(self) -> None:
        self._terminate()
        self._executor = self._start()

    def _run_batch(self, fn: Callable[[Any, Any], Any], items: dict[int, Any], results: dict[int, Any],
                   on_result: Callable[[Any], None] | None) -> list[int]:
        """Run ``items`` (index -> item) at once; returns the indices a broken pool left unfinished."""
        futures = {self._executor.submit(_run_in_worker, fn, item): index for index, item in items.items()}
        broken = []
        for future in as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except BrokenProcessPool:
                broken.append(index)
                continue
            except Exception as error:
                for other in futures:
                    other.cancel()
                raise raised_by_worker(items[index], error) from error
            if on_result is not None:
                on_result(results[index])
        return sorted(broken)

    def map(self, fn: Callable[[Any, Any], Any], items: Iterable[Any],
            on_result: Callable[[Any], None] | None = None,
            on_failure: Callable[[Any, str], Any] | None = None) -> list[Any]:
        """``fn(context, item)`` for every item, in order.

        An exception raised by ``fn`` raises WorkerError naming the item. An item that
        kills its worker when run alone becomes ``on_failure(item, reason)``.
        """
        items = list(items)
        results: dict[int, Any] = {}
        unfinished = self._run_batch(fn, dict(enumerate(items)), results, on_result)
        if unfinished:
            logger.warning("a worker died; running %d evaluation(s) again", len(unfinished))
            self._restart()
            unfinished = self._run_batch(fn, {i: items[i] for i in unfinished}, results, on_result)
        if unfinished:
            logger.warning("a worker died again; running %d evaluation(s) one at a time", len(unfinished))
            self._restart()
        for index in unfinished:
            if self._run_batch(fn, {index: items[index]}, results, on_result):
                self._restart()
                reason = "its worker process died on every try, also when it ran alone"
                if on_failure is None:
                    raise WorkerError.of(items[index], reason)
                results[index] = on_failure(items[index], reason)
                if on_result is not None:
                    on_result(results[index])
        return [results[index] for index in range(len(items))]

    def _terminate(self) -> None:
        """Stop at once: cancel queued work and kill the workers (running evaluations are lost)."""
        processes = list(self._executor._processes.values())  # no public accessor exists
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()
        for process in processes:
            process.join()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._terminate()


def make_pool(make_context: Callable[..., Any], context_args: Sequence[Any], devices: Sequence[str],
              threads: int | None = None) -> InProcessPool | ProcessPool:
    """An in-process pool on the CPU when ``devices`` is empty, else a process pool; ``threads`` per worker."""
    if not devices:
        return InProcessPool(make_context, context_args, "cpu", threads)
    return ProcessPool(make_context, context_args, devices, threads)
