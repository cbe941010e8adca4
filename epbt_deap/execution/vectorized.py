"""The population-vectorised trainer: the children given to one worker train as one computation.

Their parameters, BatchNorm buffers and momentum buffers are stacked (a leading
dimension of M, one slice per child), and ``torch.func.vmap`` runs one template network
over the stack, so each convolution of the M models becomes one grouped convolution.
Every child keeps its own TaylorGLO theta, learning rate, momentum, weight decay,
BatchNorm statistics, batch order and augmentation. The random draws come from each
child's own seeded generator in the order the per-model trainer makes them, so both
trainers give the same result to float tolerance. Checkpoints stay one file per child.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import torch
from torch.func import functional_call, stack_module_state

from epbt_deap.data import CropFlip
from epbt_deap.execution.losses import generalized_cross_entropy, stacked_cross_entropy
from epbt_deap.execution.protocol import EvalResult, EvalTask
from epbt_deap.execution.taylorglo import PARAMETER_NAMES, stacked_taylorglo_loss
from epbt_deap.execution.training import (TrainingContext, build_training_state, draw_augmentation, epoch_batches,
                                          measure_and_save, out_of_memory_hint, task_generator)
from epbt_deap.models import UnknownModelError

Stack = dict[str, torch.Tensor]


def broadcast_over(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(M,) per-model values viewed as (M, 1, ..., 1), to broadcast against ``like`` (M, ...)."""
    return values.view(-1, *[1] * (like.dim() - 1))


RANDOM_LAYERS = (torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d, torch.nn.AlphaDropout,
                 torch.nn.FeatureAlphaDropout)


def check_vectorizable(model: torch.nn.Module, name: str) -> None:
    """Before any training: a one-line UnknownModelError for a model with dropout, whose random masks
    the stacked models (``torch.vmap``) cannot draw; the per-model trainer trains it."""
    random = sorted({type(layer).__name__ for layer in model.modules()
                     if isinstance(layer, RANDOM_LAYERS) and layer.p > 0})
    if random:
        raise UnknownModelError(f"model {name!r} has {', '.join(random)}, whose random masks train.trainer vectorized "
                                "cannot draw for stacked models; use train.trainer per_model")


def momentum_buffer(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> torch.Tensor:
    """The SGD momentum buffer of ``param``, zeros before its first step."""
    buffer = optimizer.state[param].get("momentum_buffer")
    return torch.zeros_like(param) if buffer is None else buffer


class StackedSGD:
    """``torch.optim.SGD`` (no dampening, no Nesterov) over stacked parameters, one setting per model.

    ``momentum`` and ``weight_decay`` are (M,) tensors on the parameters' device.
    """

    def __init__(self, params: Stack, momentum_buffers: Stack, momentum: torch.Tensor,
                 weight_decay: torch.Tensor) -> None:
        self.params = params
        self.momentum_buffers = momentum_buffers
        self.momentum = momentum
        self.weight_decay = weight_decay

    @torch.no_grad()
    def step(self, learning_rates: torch.Tensor) -> None:
        """``buf = momentum * buf + grad + weight_decay * p``; ``p -= lr * buf``, model by model.
        A parameter without a gradient (frozen, or unused) is left as it is, as SGD leaves it."""
        for name, param in self.params.items():
            if param.grad is None:
                continue
            step = torch.addcmul(param.grad, broadcast_over(self.weight_decay, param), param)
            buffer = self.momentum_buffers[name]
            buffer.mul_(broadcast_over(self.momentum, param)).add_(step)  # a zero buffer gives SGD's first step
            param.addcmul_(buffer, broadcast_over(learning_rates, param), value=-1)
            param.grad = None


class PopulationTrainer:
    """M models of one architecture, stacked, trained together on one device."""

    def __init__(self, context: TrainingContext, tasks: Sequence[EvalTask], models: Sequence[torch.nn.Module],
                 optimizers: Sequence[torch.optim.Optimizer]) -> None:
        if len({(task.epochs, task.start_epoch) for task in tasks}) > 1:
            raise ValueError("a vectorised group must share its epochs and start epoch")
        self.context, self.tasks = context, list(tasks)
        self.template = copy.deepcopy(models[0]).to("meta")
        self.params, self.buffers = stack_module_state(list(models))
        groups = [optimizer.param_groups[0] for optimizer in optimizers]
        momentum_buffers = {
            name: torch.stack([momentum_buffer(optimizer, param) for optimizer, param in zip(optimizers, params)])
            for name, params in zip(self.params, zip(*(model.parameters() for model in models)))
        }
        self.optimizer = StackedSGD(self.params, momentum_buffers, self.on_device([g["momentum"] for g in groups]),
                                    self.on_device([g["weight_decay"] for g in groups]))
        settings = context.settings
        self.children = [settings.with_genes(task.genes) for task in tasks]
        self.label_smoothing = self.on_device([child.label_smoothing for child in self.children])
        self.thetas = None if settings.loss != "taylorglo" else torch.tensor(
            [[task.genes[name] for name in PARAMETER_NAMES] for task in tasks], device=context.device)
        self.generators = [task_generator(context, task) for task in tasks]

    def on_device(self, values: Sequence[float]) -> torch.Tensor:
        """One float per model, as an (M,) tensor on the device."""
        return torch.tensor(values, dtype=torch.float32, device=self.context.device)

    def _logits(self, params: Stack, buffers: Stack, inputs: torch.Tensor) -> torch.Tensor:
        return functional_call(self.template, (params, buffers), (inputs,))

    def losses(self, batches: torch.Tensor) -> torch.Tensor:
        """Each model's loss (M,) on its own batch of training indices, ``batches`` (M, B)."""
        context = self.context
        count, size = batches.shape
        draws = [draw_augmentation(context, size, generator) for generator in self.generators]
        crop_flip = CropFlip.concatenate(draws) if draws[0] is not None else None
        inputs = context.inputs(batches.reshape(-1), crop_flip)
        targets = context.data.splits.train_labels[batches]
        with context.autocast():
            logits = torch.vmap(self._logits)(self.params, self.buffers, inputs.view(count, size, *inputs.shape[1:]))
        loss = self.context.settings.loss
        if loss == "gce":
            return generalized_cross_entropy(logits, targets, self.context.settings.gce_q)
        if loss == "cross_entropy":
            return stacked_cross_entropy(logits.float(), targets, self.label_smoothing)
        return self.context.settings.taylorglo_scale * stacked_taylorglo_loss(logits, targets, self.thetas)

    def step(self, batches: torch.Tensor, learning_rates: torch.Tensor) -> torch.Tensor:
        """One SGD step of every model; returns the (M,) losses before it."""
        losses = self.losses(batches)
        losses.sum().backward()  # the models share nothing, so each gets its own loss's gradient
        self.optimizer.step(learning_rates)
        return losses.detach()

    def epochs(self) -> range:
        """The epochs this group trains, on the run's clock."""
        first = self.tasks[0]
        return range(first.start_epoch, first.start_epoch + first.epochs)

    def learning_rates(self, epoch: int) -> list[float]:
        return [child.learning_rate(epoch) for child in self.children]

    def train(self) -> list[float]:
        """Train every model its task's epochs; returns each one's mean training loss."""
        total = torch.zeros(len(self.tasks), device=self.context.device)
        steps = 0
        for epoch in self.epochs():
            learning_rates = self.on_device(self.learning_rates(epoch))
            orders = [epoch_batches(self.context, generator) for generator in self.generators]
            for batches in zip(*orders):
                total += self.step(torch.stack(batches), learning_rates)
                steps += 1
        return (total / max(steps, 1)).tolist()

    @torch.no_grad()
    def unstack_into(self, models: Sequence[torch.nn.Module], optimizers: Sequence[torch.optim.Optimizer]) -> None:
        """Copy each model's slice back into its own module and optimiser, ready to save."""
        trained = self.epochs()
        last_learning_rates = self.learning_rates(trained[-1]) if trained else None
        for index, (model, optimizer) in enumerate(zip(models, optimizers)):
            model.load_state_dict({name: tensor[index] for name, tensor in {**self.params, **self.buffers}.items()})
            group = optimizer.param_groups[0]
            if last_learning_rates is not None:
                group["lr"] = last_learning_rates[index]
            if group["momentum"] > 0:
                for name, param in zip(self.params, model.parameters()):
                    optimizer.state[param]["momentum_buffer"] = self.optimizer.momentum_buffers[name][index].clone()


def evaluate_group(context: TrainingContext, tasks: Sequence[EvalTask]) -> list[EvalResult]:
    """Train the children ``tasks`` describe together, then measure and save each on its own.

    A child's ``seconds`` is its share of the group's training time plus its own measuring.
    """
    with out_of_memory_hint(context.device):
        started = time.perf_counter()
        states = [build_training_state(context, task) for task in tasks]
        models, optimizers, trained = zip(*states)
        trainer = PopulationTrainer(context, tasks, models, optimizers)
        train_losses = trainer.train()
        trainer.unstack_into(models, optimizers)
        share = (time.perf_counter() - started) / len(tasks)
        return [measure_and_save(context, task, model, optimizer, epochs, loss, share)
                for task, model, optimizer, epochs, loss in zip(tasks, models, optimizers, trained, train_losses)]
