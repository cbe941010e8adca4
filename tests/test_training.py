import shutil
from dataclasses import replace

import pytest
import torch

from epbt_deap.data import load_splits
from epbt_deap.execution.protocol import EvalTask
from epbt_deap.execution.training import (TrainingContext, TrainSettings, build_training_state, evaluate,
                                          out_of_memory_hint)
from epbt_deap.rundir.checkpoints import load_checkpoint

GOOD_THETA = {f"theta_{i}": value for i, value in enumerate([0, 0, 0, 0, 0, 10, 0, 0])}  # -10 y_true / n


@pytest.fixture(scope="module")
def context():
    settings = TrainSettings(model="resnet8", batch_size=32, lr=0.05, lr_milestones=(2,))
    return TrainingContext.create("cpu", settings, load_splits("fake"))


def task(tmp_path, uid="a", parent=None, start=0, epochs=1, genes=GOOD_THETA, seed=0):
    return EvalTask(uid, genes, parent, str(tmp_path / f"{uid}.pt"), epochs, start, seed)


def test_learning_rate_steps_down_on_the_global_epoch_clock():
    settings = TrainSettings(model="m", lr=0.1, lr_milestones=(100, 150), lr_gamma=0.1)
    assert [settings.learning_rate(e) for e in (0, 99)] == [0.1, 0.1]
    assert settings.learning_rate(100) == pytest.approx(0.01)
    assert settings.learning_rate(199) == pytest.approx(0.001)
    assert settings.with_genes({"lr": 0.5}).learning_rate(150) == pytest.approx(0.005)


@pytest.mark.slow
def test_an_evaluation_trains_saves_and_a_child_continues_from_it(context, tmp_path):
    first = evaluate(context, task(tmp_path, "a", epochs=2))
    assert first.status == "ok" and first.epochs == 2
    assert 0.0 <= first.fitness <= 1.0 and 0.0 <= first.test_accuracy <= 1.0
    saved = load_checkpoint(first.checkpoint)
    assert saved["epochs"] == 2 and saved["genes"] == GOOD_THETA and saved["uid"] == "a"
    child = evaluate(context, task(tmp_path, "b", parent=first.checkpoint, start=2))
    assert child.epochs == 3 and child.checkpoint.endswith("b.pt")
    assert load_checkpoint(first.checkpoint)["epochs"] == 2  # the parent's file is left alone
    weights_a = load_checkpoint(first.checkpoint)["model"]
    weights_b = load_checkpoint(child.checkpoint)["model"]
    assert any(not torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


@pytest.mark.slow
def test_training_with_a_sensible_loss_beats_chance(context, tmp_path):
    result = evaluate(context, task(tmp_path, epochs=3))
    assert result.fitness > 0.5  # 4 classes: chance is 0.25


@pytest.mark.slow
def test_same_task_same_result(context, tmp_path):
    first = evaluate(context, task(tmp_path / "1"))
    second = evaluate(context, task(tmp_path / "2"))
    assert first.fitness == second.fitness and first.train_loss == second.train_loss
    one, two = load_checkpoint(first.checkpoint)["model"], load_checkpoint(second.checkpoint)["model"]
    assert all(torch.equal(one[k], two[k]) for k in one)


def test_a_diverging_loss_gives_fitness_zero_and_saves_nothing(context, tmp_path):
    result = evaluate(context, task(tmp_path, genes={**GOOD_THETA, "lr": 1e12}))
    assert result.status == "diverged" and result.fitness == 0.0
    assert result.checkpoint is None and not (tmp_path / "a.pt").exists()


@pytest.mark.slow
def test_cross_entropy_needs_no_theta(tmp_path):
    settings = TrainSettings(model="resnet8", batch_size=32, loss="cross_entropy")
    context = TrainingContext.create("cpu", settings, load_splits("fake"))
    assert evaluate(context, task(tmp_path, genes={})).status == "ok"


def weights_of(result):
    return load_checkpoint(result.checkpoint)["model"]


@pytest.mark.slow
@pytest.mark.parametrize("option", [{"channels_last": True},
                                    pytest.param({"compile": True}, marks=pytest.mark.skipif(
                                        shutil.which("cc") is None, reason="torch.compile needs a C compiler"))])
def test_layout_and_compilation_options_train_the_same_model(context, tmp_path, option):
    plain = evaluate(context, task(tmp_path / "plain"))
    faster = TrainingContext(replace(context.settings, **option), context.data)
    other = evaluate(faster, task(tmp_path / "faster"))
    assert other.train_loss == pytest.approx(plain.train_loss, rel=1e-3)
    expected, actual = weights_of(plain), weights_of(other)
    for name, tensor in expected.items():  # other kernels: rounding differs, and 6 SGD steps amplify it
        torch.testing.assert_close(actual[name].contiguous(), tensor, rtol=1e-2, atol=1e-2)


def test_the_layout_option_takes_effect(context, tmp_path):
    layout = TrainingContext(replace(context.settings, channels_last=True), context.data)
    model, _, _ = build_training_state(layout, task(tmp_path))
    kernel = next(param for param in model.parameters() if param.dim() == 4)
    assert kernel.is_contiguous(memory_format=torch.channels_last) and not kernel.is_contiguous()
    inputs = layout.prepare(context.data.splits.train_images[:4])
    assert inputs.is_contiguous(memory_format=torch.channels_last) and not inputs.is_contiguous()


@pytest.mark.slow
def test_the_compile_option_trains_through_the_compiled_model(context, tmp_path, monkeypatch):
    graphs = []

    def recording_backend(graph, example_inputs):  # no C compiler needed: runs the traced graph as it is
        graphs.append(graph)
        return graph.forward

    compile_model = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model: compile_model(model, backend=recording_backend))
    result = evaluate(TrainingContext(replace(context.settings, compile=True), context.data), task(tmp_path))
    assert result.status == "ok" and graphs  # TorchDynamo traced the forward pass that trained the model


@pytest.mark.slow
def test_a_worker_compiles_its_model_once_for_all_its_evaluations(context, tmp_path, monkeypatch):
    wrapped, compilations = [], []

    def recording_backend(graph, example_inputs):  # called once for each graph TorchDynamo compiles
        compilations.append(graph)
        return graph.forward

    def recording_compile(model):
        wrapped.append(model)
        return compile_model(model, backend=recording_backend)

    compile_model = torch.compile
    monkeypatch.setattr(torch, "compile", recording_compile)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = TrainingContext(replace(context.settings, compile=True), context.data)
    first = evaluate(compiled, task(tmp_path, "a"))
    child = evaluate(compiled, task(tmp_path, "b", parent=first.checkpoint, start=1))
    fresh = evaluate(compiled, task(tmp_path, "c", seed=1))
    assert [first.status, child.status, fresh.status] == ["ok"] * 3
    assert len(wrapped) == 1 and len(compilations) == 1
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert not torch._dynamo.utils.counters["recompiles"]


@pytest.mark.slow
def test_evaluations_that_share_a_worker_model_match_fresh_ones(context, tmp_path):
    shared = TrainingContext(context.settings, context.data)
    first = evaluate(shared, task(tmp_path / "shared", "a"))
    again = evaluate(shared, task(tmp_path / "shared", "b", seed=1))
    alone = evaluate(TrainingContext(context.settings, context.data), task(tmp_path / "alone", "b", seed=1))
    assert first.fitness >= 0 and again.train_loss == alone.train_loss
    expected, actual = weights_of(alone), weights_of(again)
    assert all(torch.equal(actual[name], expected[name]) for name in expected)


@pytest.mark.slow
def test_bfloat16_autocast_trains_and_stays_close_to_float32(context, tmp_path):
    plain = evaluate(context, task(tmp_path / "plain", epochs=3))
    bf16 = evaluate(TrainingContext(replace(context.settings, precision="bfloat16"), context.data),
                    task(tmp_path / "bf16", epochs=3))
    assert bf16.status == "ok" and bf16.fitness > 0.5
    assert bf16.train_loss == pytest.approx(plain.train_loss, rel=0.05)
    assert bf16.train_loss != plain.train_loss  # autocast really ran in bfloat16
    assert all(tensor.dtype != torch.bfloat16 for tensor in weights_of(bf16).values())  # weights stay float32


def test_cuda_out_of_memory_becomes_one_line_saying_what_to_lower():
    with pytest.raises(RuntimeError, match=r"^CUDA out of memory on cuda:1 \(no room\); try fewer --workers-per-gpu"):
        with out_of_memory_hint(torch.device("cuda:1")):
            raise torch.cuda.OutOfMemoryError("no room")
