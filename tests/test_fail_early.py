"""Fail early, in one line: a device this machine lacks before any work starts; a generation in
which no evaluation succeeded stops the run, resumably; every start and resume records what it ran on."""
import json
import math
import platform

import pytest
import torch
from click.testing import CliRunner

import epbt_deap
from cli.main import main
from epbt_deap.errors import EvaluateContractError, GenerationFailedError
from epbt_deap.execution.pool import DeviceError, resolve_devices
from epbt_deap.execution.protocol import EvalResult
from epbt_deap.execution.training import evaluate
from epbt_deap.progress import GenerationProgress
from epbt_deap.run import resume, run
from tests.helpers import read_jsonl, tiny, tiny_yaml, untimed


def evolve(tmp_path, *args):
    return CliRunner().invoke(main, ["evolve", "--config", str(tiny_yaml(tmp_path / "tiny.yaml")), *args,
                                     "--run-dir", str(tmp_path / "run")])


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_gpus_are_checked_against_those_this_machine_has(two_gpus):
    assert resolve_devices("cuda:0,cuda:1", workers_per_gpu=2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert resolve_devices("cuda") == ["cuda:0", "cuda:1"]
    with pytest.raises(DeviceError, match=r"'cuda:7' does not exist: this machine has 2 CUDA GPU\(s\), cuda:0 to cuda:1"):
        resolve_devices("cuda:0,cuda:7")


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a cuda:7")
@pytest.mark.parametrize("args, message", [
    (["--device", "cuda:7"], "device 'cuda:7'"),
    (["--device", "foo"], "device 'foo' is not a torch device name"),
    (["--device", "xla"], "device 'xla' is not available here"),
    (["--backend", "ray", "--device", "cuda:0"], "device 'cuda:0' with the ray backend"),
])
def test_an_unusable_device_is_one_line_before_any_work(tmp_path, args, message):
    result = evolve(tmp_path, *args)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {message}") and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path):
    result = evolve(tmp_path, "--device", "cuda")
    assert result.exit_code == 2 and result.output == "error: device 'cuda' asked for, but no CUDA GPU is available\n"


def test_divergence_of_every_child_stops_the_run_in_one_line(tmp_path):
    result = evolve(tmp_path, "--set", "train.lr=1e8")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "error: all 4 evaluations of generation 0 diverged: the loss or learning rate makes training blow up, "
        "and resuming would repeat it; lower train.lr or bound the loss and start again")
    assert "Traceback" not in result.output and not (tmp_path / "run" / "logbook.jsonl").exists()


def diverging_after_generation_0(context, task):
    """The trainer's evaluation in generation 0; every later one diverges."""
    if task.start_epoch == 0:
        return evaluate(context, task)
    return EvalResult(task.uid, 0.0, 0.0, math.inf, 0, None, "diverged", 0.0, "non-finite loss or weights")


def test_a_generation_where_all_diverged_stops_the_run_which_then_resumes(tmp_path):
    reference = run(tiny(), tmp_path / "reference")
    with pytest.raises(GenerationFailedError, match="all 4 evaluations of generation 1 diverged"):
        run(tiny(), tmp_path / "run", evaluate=diverging_after_generation_0)
    assert [row["gen"] for row in read_jsonl(tmp_path / "run" / "logbook.jsonl")] == [0]
    resumed = resume(tmp_path / "run")
    assert untimed(resumed.logbook) == untimed(reference.logbook)
    entries = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert [entry["command"] for entry in entries] == ["run", "resume"]
    for entry in entries:
        assert entry["torch"] == torch.__version__ and entry["python"] == platform.python_version()
        assert entry["devices"] == ["cpu"] and entry["workers"] == 1
        assert entry["torch_threads_per_worker"] == torch.get_num_threads() >= 1
        assert entry["epbt_deap"] == epbt_deap.__version__ and "git_commit" in entry and entry["platform"]


def test_children_that_all_diverge_beside_elites_that_do_not_retrain_leave_the_run_to_them(tmp_path, caplog):
    """Algorithm 1 as printed: the elites are kept untrained, so they carry the run past such a generation."""
    config = tiny({"evolution.elites_train": False, "evolution.generations": 3})
    result = run(config, tmp_path / "run", evaluate=diverging_after_generation_0)
    rows = read_jsonl(tmp_path / "run" / "lineage.jsonl")
    assert [row["gen"] for row in read_jsonl(tmp_path / "run" / "logbook.jsonl")] == [0, 1, 2]
    assert {row["status"] for row in rows if row["generation"] > 0} == {"diverged"}
    assert result.best_uid.startswith("g000-")
    assert "all 2 children of generation 1 diverged; the elites carry the run" in caplog.text


def returns_nothing(context, task):
    return None


def returns_another_result(context, task):
    return EvalResult("g000-999", 0.5, 0.5, 1.0, 1, None, "ok", 0.0)


def returns_nan_fitness(context, task):
    return EvalResult(task.uid, math.nan, 0.5, 1.0, 1, None, "ok", 0.0)


def returns_text_fitness(context, task):
    return EvalResult(task.uid, "0.5", 0.5, 1.0, 1, None, "ok", 0.0)


@pytest.mark.parametrize("evaluate, message", [
    (returns_nothing, "evaluate returned NoneType for g000-000, not an EvalResult"),
    (returns_another_result, "evaluate returned the result of 'g000-999' for g000-000"),
    (returns_nan_fitness, "evaluate returned fitness nan for g000-000; it must be the validation accuracy, "
                          "a finite number"),
    (returns_text_fitness, "evaluate returned fitness '0.5' for g000-000; it must be the validation accuracy, "
                           "a finite number"),
])
@pytest.mark.parametrize("progress", [False, True], ids=["quiet", "with a progress bar"])
def test_an_evaluate_that_breaks_its_contract_stops_in_one_line(tmp_path, evaluate, message, progress):
    observer = GenerationProgress(disable=True) if progress else None  # it sees each result as it comes
    with pytest.raises(EvaluateContractError) as raised:
        run(tiny(), tmp_path / "run", observer, evaluate=evaluate)
    assert str(raised.value) == message and not (tmp_path / "run" / "logbook.jsonl").exists()
