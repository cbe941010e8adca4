"""The population-vectorised trainer matches the per-model trainer, model by model.

``EPBT_TEST_DEVICE=cuda`` runs these on a GPU (with TF32 off, so both trainers compute in float32).
"""
import os

import pytest
import torch

from epbt_deap.data import load_splits
from epbt_deap.execution.protocol import EvalTask
from epbt_deap.execution.training import (TrainingContext, TrainSettings, build_training_state, draw_augmentation,
                                          epoch_batches, evaluate, make_loss, task_generator)
from epbt_deap.execution.vectorized import PopulationTrainer, StackedSGD, evaluate_group
from epbt_deap.rundir.checkpoints import load_checkpoint

TOLERANCE = dict(rtol=1e-4, atol=1e-5)
DEVICE = os.environ.get("EPBT_TEST_DEVICE", "cpu")


@pytest.fixture(scope="module", autouse=True)
def float32_only():
    """TF32 off while this module runs, so on a GPU both trainers compute in float32; then restored."""
    previous = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = previous


def theta(*values: float) -> dict[str, float]:
    return {f"theta_{i}": value for i, value in enumerate(values)}


GENES = [
    theta(0, 0, 0, 0, 0, 10, 0, 0),
    {**theta(0.5, -0.2, 1, 2, -1, 8, 0.5, 1), "lr": 0.02, "momentum": 0.5},
    {**theta(-1, 0.3, -2, 1, 3, 6, -0.5, 2), "weight_decay": 1e-2, "lr": 0.2},
]


@pytest.fixture(scope="module")
def context() -> TrainingContext:
    settings = TrainSettings(model="resnet8", batch_size=32, lr=0.05, lr_milestones=(3,))
    return TrainingContext.create(DEVICE, settings, load_splits("fake", train_subset=96, augment=True))


def tasks_for(directory, genes_list, parent=None, start=0, epochs=2) -> list[EvalTask]:
    directory.mkdir(parents=True, exist_ok=True)
    return [EvalTask(f"m{i}", genes, parent, str(directory / f"m{i}.pt"), epochs, start, seed=100 + i)
            for i, genes in enumerate(genes_list)]


@pytest.fixture(scope="module")
def parent(context, tmp_path_factory) -> str:
    """A checkpoint with momentum buffers and trained BatchNorm statistics to start children from."""
    task = tasks_for(tmp_path_factory.mktemp("parent"), [GENES[0]], epochs=1)[0]
    return evaluate(context, task).checkpoint


@pytest.mark.slow
def test_first_step_losses_and_gradients_match(context, parent, tmp_path):
    tasks = tasks_for(tmp_path, GENES, parent, start=1)
    models, optimizers, _ = zip(*(build_training_state(context, task) for task in tasks))
    trainer = PopulationTrainer(context, tasks, models, optimizers)
    batches = torch.stack([epoch_batches(context, generator)[0] for generator in trainer.generators])
    losses = trainer.losses(batches)
    losses.sum().backward()
    labels = context.data.splits.train_labels
    for index, task in enumerate(tasks):
        model, _, _ = build_training_state(context, task)
        model.train()
        generator = task_generator(context, task)
        batch = epoch_batches(context, generator)[0]
        inputs = context.inputs(batch, draw_augmentation(context, len(batch), generator))
        loss = make_loss(context.settings, task.genes, context.device)(model(inputs), labels[batch])
        loss.backward()
        torch.testing.assert_close(losses[index], loss, **TOLERANCE)
        for (name, param), stacked in zip(model.named_parameters(), trainer.params.values()):
            torch.testing.assert_close(stacked.grad[index], param.grad, **TOLERANCE, msg=name)
        for name, buffer in model.named_buffers():
            torch.testing.assert_close(trainer.buffers[name][index], buffer, **TOLERANCE, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("from_parent", [False, True])
def test_a_group_trains_like_each_model_alone(context, parent, tmp_path, from_parent):
    start = 1 if from_parent else 0
    alone = [evaluate(context, task)
             for task in tasks_for(tmp_path / "alone", GENES, parent if from_parent else None, start)]
    together = evaluate_group(context, tasks_for(tmp_path / "together", GENES, parent if from_parent else None, start))
    assert len(together) == len(alone) == len(GENES)
    for one, other in zip(alone, together):
        assert (one.uid, one.status, one.epochs) == (other.uid, other.status, other.epochs)
        assert one.train_loss == pytest.approx(other.train_loss, rel=1e-4)
        assert one.fitness == pytest.approx(other.fitness, abs=2 / 64)  # a borderline image may flip
        expected, actual = load_checkpoint(one.checkpoint), load_checkpoint(other.checkpoint)
        assert expected["model"].keys() == actual["model"].keys()
        for name, tensor in expected["model"].items():  # weights and BatchNorm running statistics
            torch.testing.assert_close(actual["model"][name], tensor, rtol=1e-3, atol=1e-4, msg=name)
        assert actual["optimizer"]["param_groups"] == expected["optimizer"]["param_groups"]
        for index, state in expected["optimizer"]["state"].items():
            torch.testing.assert_close(actual["optimizer"]["state"][index]["momentum_buffer"],
                                       state["momentum_buffer"], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_a_diverging_child_does_not_disturb_its_group(context, tmp_path):
    genes = [GENES[0], {**GENES[1], "lr": 1e12}]
    alone = evaluate(context, tasks_for(tmp_path / "alone", genes[:1])[0])
    results = evaluate_group(context, tasks_for(tmp_path / "together", genes))
    assert [result.status for result in results] == ["ok", "diverged"]
    assert results[1].checkpoint is None and results[1].fitness == 0.0
    assert results[0].train_loss == pytest.approx(alone.train_loss, rel=1e-4)


@pytest.mark.slow
def test_cross_entropy_groups_match_too(tmp_path):
    settings = TrainSettings(model="digits_cnn", batch_size=32, loss="cross_entropy")
    context = TrainingContext.create(DEVICE, settings, load_splits("fake", train_subset=64))
    genes = [{}, {"lr": 0.01}]
    alone = [evaluate(context, task) for task in tasks_for(tmp_path / "alone", genes, epochs=1)]
    together = evaluate_group(context, tasks_for(tmp_path / "together", genes, epochs=1))
    assert [r.train_loss for r in together] == pytest.approx([r.train_loss for r in alone], rel=1e-4)


def test_a_group_must_share_its_epochs(context, tmp_path):
    tasks = tasks_for(tmp_path, GENES[:1]) + tasks_for(tmp_path / "b", GENES[:1], epochs=1)
    models, optimizers, _ = zip(*(build_training_state(context, task) for task in tasks))
    with pytest.raises(ValueError, match="share"):
        PopulationTrainer(context, tasks, models, optimizers)


def test_a_parameter_without_a_gradient_is_left_as_it_is_as_sgd_leaves_it():
    """A frozen or unused parameter of a user's model has no gradient after backward."""
    frozen, trained = torch.ones(2, 3), torch.ones(2, 3)
    trained.grad = torch.full((2, 3), 0.5)
    zeros = {"frozen": torch.zeros(2, 3), "trained": torch.zeros(2, 3)}
    StackedSGD({"frozen": frozen, "trained": trained}, zeros, torch.zeros(2), torch.zeros(2)).step(torch.ones(2))
    assert torch.equal(frozen, torch.ones(2, 3)) and torch.equal(trained, torch.full((2, 3), 0.5))
