import multiprocessing
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest
import torch

from epbt_deap.errors import WorkerError, WorkerStartError
from epbt_deap.execution.protocol import EvalTask
from epbt_deap.execution.pool import (DeviceError, InProcessPool, ProcessPool, make_pool, resolve_devices,
                                      worker_start_context)
from epbt_deap.execution.shipping import Parcel
from tests.helpers import Fragile, die_unless_marked, make_context, make_no_context


@dataclass(frozen=True)
class Item:
    uid: str
    value: int


def work(context, item):
    if item.value < 0:
        raise RuntimeError("negative input")
    context["calls"][0] += 1
    return (context["pid"], context["device"], item.value * int(context["data"].sum()), context["calls"][0])


def test_device_resolution():
    assert resolve_devices("cpu", cpu_workers=0) == []
    assert resolve_devices("cpu", cpu_workers=3) == ["cpu"] * 3
    with pytest.raises(DeviceError, match="not a torch device"):
        resolve_devices("gpu7")


def test_auto_takes_every_gpu_or_else_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert resolve_devices("auto") == [] and resolve_devices("auto", cpu_workers=2) == ["cpu", "cpu"]
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_devices("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_devices("auto", cpu_workers=2) == ["cuda:0", "cuda:1"]


def test_in_process_pool_keeps_one_context_and_reports_progress():
    seen = []
    with make_pool(make_context, (torch.ones(3),), []) as pool:
        assert isinstance(pool, InProcessPool)
        results = pool.map(work, [Item("a", 1), Item("b", 2)], on_result=seen.append)
    assert [r[2] for r in results] == [3, 6] and [r[3] for r in results] == [1, 2]
    assert seen == results


def test_process_pool_runs_persistent_workers_with_shared_data():
    data = torch.arange(5)
    items = [Item(str(i), i) for i in range(8)]
    with ProcessPool(make_context, (data,), ["cpu", "cpu"]) as pool:
        first = pool.map(work, items)
        second = pool.map(work, items)
    assert [r[2] for r in first] == [i * 10 for i in range(8)]  # in order, data seen in the worker
    pids = {r[0] for r in first + second}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    calls = sum(max(r[3] for r in first + second if r[0] == pid) for pid in pids)
    assert calls == 16  # contexts survive between maps: built once per worker


def parents(context, item):
    return os.getppid(), multiprocessing.parent_process().pid


@pytest.mark.parametrize("platform, method", [("linux", "forkserver"), ("darwin", "spawn"), ("win32", "spawn")])
def test_workers_fork_from_a_server_on_linux_alone(monkeypatch, platform, method):
    monkeypatch.setattr(sys, "platform", platform)
    assert worker_start_context().get_start_method() == method


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are spawned off Linux")
def test_workers_fork_from_a_server_and_watch_the_main_process():
    with ProcessPool(make_context, (torch.ones(1),), ["cpu"]) as pool:
        ((forked_by, watched),) = pool.map(parents, [0])
    assert forked_by != os.getpid()  # the server, which imported torch once
    assert watched == os.getpid()  # the process whose death the worker watches for


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are spawned off Linux")
def test_ctrl_c_while_the_server_imports_torch_neither_kills_it_nor_prints_a_traceback():
    code = textwrap.dedent("""
        import multiprocessing.forkserver, os, signal, time
        from epbt_deap.execution.pool import start_server, worker_start_context
        start_server(worker_start_context())
        server = multiprocessing.forkserver._forkserver._forkserver_pid
        os.kill(server, signal.SIGINT)  # at once: the server is still starting or importing torch
        time.sleep(0.5)
        print("alive" if os.waitpid(server, os.WNOHANG) == (0, 0) else "dead")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "alive" and "KeyboardInterrupt" not in done.stderr, done.stderr


@pytest.mark.slow
def test_a_failing_item_is_named_and_does_not_hang():
    with ProcessPool(make_context, (torch.ones(1),), ["cpu"]) as pool:
        with pytest.raises(WorkerError, match="evaluation of bad failed: RuntimeError: negative input"):
            pool.map(work, [Item("ok", 1), Item("bad", -1), Item("later", 2)])
    with InProcessPool(make_context, (torch.ones(1),)) as pool:
        with pytest.raises(WorkerError, match="evaluation of bad failed"):
            pool.map(work, [Item("bad", -1)])


def test_a_failed_group_names_each_of_its_items():
    error = WorkerError.of([Item("g001-000", 1), Item("g001-001", 1)], ValueError("boom"))
    assert str(error) == "evaluation of g001-000, g001-001 failed: ValueError: boom"


def test_a_worker_error_is_one_line_and_names_a_shipped_task_by_its_uid():
    reason = RuntimeError("Error(s) in loading state_dict for ResNet:\n\tMissing key(s): fc.weight")
    error = WorkerError.of(Parcel(EvalTask("g002-003", {"theta0": 0.1}, None, "out.pt", 1, 0, 2)), reason)
    assert str(error) == ("evaluation of g002-003 failed: RuntimeError: Error(s) in loading state_dict for "
                          "ResNet: Missing key(s): fc.weight")


@pytest.mark.slow
def test_a_worker_that_cannot_start_says_why_at_its_first_item_and_no_item_is_retried():
    with ProcessPool(make_no_context, (torch.ones(1),), ["cpu"]) as pool:
        with pytest.raises(WorkerStartError) as raised:
            pool.map(work, [Item("first", 1), Item("second", 2)], on_failure=lambda item, reason: reason)
    assert str(raised.value) == "a worker could not start on cpu: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    with pytest.raises(WorkerStartError, match="^a worker could not start on cpu: RuntimeError: CUDA out of memory"):
        InProcessPool(make_no_context, (torch.ones(1),))


@pytest.mark.slow
def test_a_dead_worker_is_replaced_and_its_evaluation_retried(tmp_path):
    items = [Fragile("flaky", str(tmp_path / "flaky")), Fragile("steady", str(tmp_path / "steady"))]
    (tmp_path / "steady").touch()
    with ProcessPool(make_context, (torch.ones(1),), ["cpu"]) as pool:
        assert pool.map(die_unless_marked, items) == ["flaky", "steady"]
        assert pool.map(die_unless_marked, items[1:]) == ["steady"]  # the rebuilt pool keeps working


@pytest.mark.slow
def test_an_item_that_kills_its_worker_twice_is_failed_and_only_that_one(tmp_path):
    (tmp_path / "ok").touch()
    items = [Fragile("doomed", str(tmp_path / "doomed")), Fragile("fine", str(tmp_path / "ok"))]
    with ProcessPool(make_context, (torch.ones(1),), ["cpu", "cpu"]) as pool:
        results = pool.map(die_unless_marked, items, on_failure=lambda item, reason: f"failed: {reason}")
        assert results == ["failed: its worker process died on every try, also when it ran alone", "fine"]
        with pytest.raises(WorkerError, match="evaluation of doomed failed: its worker process died on every try, also when it ran alone"):
            pool.map(die_unless_marked, items[:1])


def reseed(context, item):
    torch.manual_seed(item)
    return float(torch.rand(1))


def test_an_in_process_pool_gives_the_callers_random_stream_back():
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    with InProcessPool(make_context, (torch.ones(1),)) as pool:
        pool.map(reseed, [1, 2])
    assert torch.equal(torch.rand(2), expected)


def test_the_server_start_sets_ctrl_c_back_even_when_python_did_not_set_it(monkeypatch):
    """signal.signal returns None for a handler installed outside Python: the default then stands in."""
    import multiprocessing.forkserver
    import signal

    from epbt_deap.execution import pool

    calls = []
    monkeypatch.setattr(pool.signal, "signal", lambda signum, handler: calls.append((signum, handler)))
    monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", lambda: calls.append("server"))
    pool.start_server(multiprocessing.get_context("forkserver"))
    assert calls == [(signal.SIGINT, signal.SIG_IGN), "server", (signal.SIGINT, signal.SIG_DFL)]
