"""One evaluation: load the parent's weights, train E epochs with the child's genes, validate, save.

Workers run :func:`evaluate` with a :class:`TrainingContext` built once per worker
(model settings and the dataset already on the worker's device). The context keeps one
model, compiled at most once; each evaluation loads its weights into it.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F

from epbt_deap.config import LOSSES, PRECISIONS, TRAINABLE_GENES, TrainConfig
from epbt_deap.data import CropFlip, ImageSplits, normalize
from epbt_deap.errors import one_line
from epbt_deap.execution.losses import generalized_cross_entropy
from epbt_deap.execution.measures import accuracy, expected_calibration_error, memorisation, negative_log_likelihood
from epbt_deap.execution.protocol import EvalResult, EvalTask
from epbt_deap.execution.taylorglo import PARAMETER_NAMES, taylorglo_loss
from epbt_deap.models import UnknownModelError, build_model
from epbt_deap.rundir.checkpoints import load_checkpoint, save_checkpoint

logger = logging.getLogger("epbt_deap")


@dataclass(frozen=True)
class TrainSettings:
    """What every evaluation of a run shares (the config's ``train`` keys of the same names)."""

    model: str
    model_args: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = TrainConfig.default("batch_size")
    eval_batch_size: int = TrainConfig.default("eval_batch_size")
    lr: float = TrainConfig.default("lr")
    momentum: float = TrainConfig.default("momentum")
    weight_decay: float = TrainConfig.default("weight_decay")
    lr_milestones: tuple[int, ...] = tuple(TrainConfig.default("lr_milestones"))
    lr_gamma: float = TrainConfig.default("lr_gamma")
    loss: Literal[LOSSES] = TrainConfig.default("loss")
    label_smoothing: float = TrainConfig.default("label_smoothing")
    gce_q: float = TrainConfig.default("gce_q")
    taylorglo_scale: float = TrainConfig.default("taylorglo_scale")
    precision: Literal[PRECISIONS] = TrainConfig.default("precision")
    channels_last: bool = TrainConfig.default("channels_last")
    compile: bool = TrainConfig.default("compile")

    @classmethod
    def from_config(cls, train: TrainConfig) -> TrainSettings:
        """The settings of the config's ``train`` keys of the same names."""
        values = {setting.name: getattr(train, setting.name) for setting in fields(cls)}
        return cls(**{**values, "lr_milestones": tuple(train.lr_milestones)})

    def with_genes(self, genes: Mapping[str, float]) -> TrainSettings:
        """A child's effective settings: these, with its genes of the same names (lr, momentum, ...) applied."""
        return replace(self, **{name: genes[name] for name in TRAINABLE_GENES if name in genes})

    def learning_rate(self, epoch: int) -> float:
        """Step decay on the global epoch clock: ``lr * gamma ** (milestones passed)``."""
        passed = sum(epoch >= milestone for milestone in self.lr_milestones)
        return self.lr * self.lr_gamma**passed


@dataclass
class DeviceData:
    """A dataset split held on one device, uint8 images plus normalisation constants."""

    splits: ImageSplits
    device: torch.device
    mean: torch.Tensor = field(init=False)
    std: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        tensors = ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels",
                   "train_true_labels", "val_true_labels")
        self.splits = replace(self.splits, **{name: getattr(self.splits, name).to(self.device) for name in tensors
                                              if getattr(self.splits, name) is not None})
        self.mean = torch.tensor(self.splits.mean, device=self.device)
        self.std = torch.tensor(self.splits.std, device=self.device)


Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class TrainingContext:
    """A worker's long-lived state: settings, the dataset on its device, and its one model."""

    settings: TrainSettings
    data: DeviceData
    model: torch.nn.Module | None = field(default=None, init=False, repr=False)
    forward: Forward | None = field(default=None, init=False, repr=False)

    @classmethod
    def create(cls, device: str, settings: TrainSettings, splits: ImageSplits) -> TrainingContext:
        return cls(settings, DeviceData(splits, torch.device(device)))

    @property
    def device(self) -> torch.device:
        return self.data.device

    def worker_model(self) -> tuple[torch.nn.Module, Forward]:
        """The worker's model and the forward that trains it (``torch.compile``d once with ``compile``).

        Built at the first call; evaluations load their weights into it in place, so the
        compiled forward is reused and never compiled again.
        """
        if self.model is None:
            self.model = new_model(self)
            self.forward = torch.compile(self.model) if self.settings.compile else self.model
        return self.model, self.forward

    def autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast when ``precision`` asks for it, else nothing."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.settings.precision == "bfloat16")

    def prepare(self, images: torch.Tensor, crop_flip: CropFlip | None = None) -> torch.Tensor:
        """uint8 images on the device -> the network's float input: normalised, augmented, laid out."""
        images = normalize(images, self.data.mean, self.data.std)
        if crop_flip is not None:
            images = crop_flip.apply(images)
        if self.settings.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def inputs(self, indices: torch.Tensor, crop_flip: CropFlip | None = None) -> torch.Tensor:
        """The training images at ``indices``, prepared, augmented with ``crop_flip``."""
        return self.prepare(self.data.splits.train_images[indices], crop_flip)


LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_loss(settings: TrainSettings, genes: Mapping[str, float], device: torch.device) -> LossFunction:
    """The child's loss function: TaylorGLO with its theta genes (times ``taylorglo_scale``),
    cross-entropy with the ``label_smoothing`` of ``settings`` (the child's: :meth:`TrainSettings.with_genes`),
    or generalised cross-entropy with ``gce_q``."""
    if settings.loss == "gce":
        return functools.partial(generalized_cross_entropy, q=settings.gce_q)
    if settings.loss == "cross_entropy":
        return functools.partial(F.cross_entropy, label_smoothing=settings.label_smoothing)
    theta = torch.tensor([genes[name] for name in PARAMETER_NAMES], device=device)
    scale = settings.taylorglo_scale
    if scale == 1.0:  # Eq. 1 as printed: no extra kernel per step
        return lambda logits, targets: taylorglo_loss(logits, targets, theta)
    return lambda logits, targets: scale * taylorglo_loss(logits, targets, theta)


def epoch_batches(context: TrainingContext, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch's shuffled training indices in batches, leaving out a last batch of one."""
    order = torch.randperm(len(context.data.splits.train_labels), generator=generator, device=context.device)
    return [batch for batch in order.split(context.settings.batch_size) if len(batch) > 1]  # BatchNorm needs 2


def draw_augmentation(context: TrainingContext, batch: int, generator: torch.Generator) -> CropFlip | None:
    """The batch's crop and flip draws, or None for a dataset trained without augmentation."""
    return CropFlip.draw(batch, generator) if context.data.splits.augment else None


def train_epochs(context: TrainingContext, model: torch.nn.Module, forward: Forward,
                 optimizer: torch.optim.Optimizer, task: EvalTask, generator: torch.Generator) -> float:
    """Train ``task.epochs`` epochs through ``forward`` (``model``'s own or compiled forward);
    returns the mean training loss (nan/inf if it diverged)."""
    settings = context.settings.with_genes(task.genes)
    labels = context.data.splits.train_labels
    loss_fn = make_loss(settings, task.genes, context.device)
    total = torch.zeros((), device=context.device)
    steps = 0
    model.train()
    for epoch in range(task.start_epoch, task.start_epoch + task.epochs):
        for group in optimizer.param_groups:
            group["lr"] = settings.learning_rate(epoch)
        for batch in epoch_batches(context, generator):
            inputs = context.inputs(batch, draw_augmentation(context, len(batch), generator))
            with context.autocast():
                loss = loss_fn(forward(inputs), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            steps += 1
        if not torch.isfinite(total):
            break
    return float(total) / max(steps, 1)


@torch.no_grad()
def eval_logits(context: TrainingContext, model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The model's float logits (N, C) for ``images``, in eval mode, without augmentation, batch by batch."""
    model.eval()
    size = context.settings.eval_batch_size
    batches = []
    for start in range(0, len(images), size):
        with context.autocast():
            batches.append(model(context.prepare(images[start:start + size])).float())
    return torch.cat(batches) if batches else torch.empty(0, context.data.splits.num_classes, device=context.device)


def measure(context: TrainingContext, model: torch.nn.Module) -> tuple[float, float, dict[str, float]]:
    """Validation accuracy (the fitness), test accuracy, and the fit and calibration measures:
    validation and test NLL, test ECE, training accuracy (on the labels it trains with), and with
    label noise, the share of flipped training labels it predicts (``memorised``)."""
    splits = context.data.splits
    val = eval_logits(context, model, splits.val_images)
    test = eval_logits(context, model, splits.test_images)
    train = eval_logits(context, model, splits.train_images)
    measures = {
        "val_nll": negative_log_likelihood(val, splits.val_labels),
        "test_nll": negative_log_likelihood(test, splits.test_labels),
        "test_ece": expected_calibration_error(test, splits.test_labels),
        "train_accuracy": accuracy(train, splits.train_labels),
    }
    if splits.train_true_labels is not None:
        measures["memorised"] = memorisation(train, splits.train_labels, splits.train_true_labels)
    return accuracy(val, splits.val_labels), accuracy(test, splits.test_labels), measures


def weights_are_finite(model: torch.nn.Module) -> bool:
    """Whether every floating-point parameter and buffer is finite (one device sync)."""
    tensors = [t for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


def new_model(context: TrainingContext) -> torch.nn.Module:
    """A newly initialised model (from torch's global random stream) on the device, in the settings' layout."""
    settings, splits = context.settings, context.data.splits
    model = build_model(settings.model, splits.num_classes, splits.in_channels, settings.model_args).to(context.device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def check_trainable(model: torch.nn.Module, name: str) -> None:
    """A one-line UnknownModelError for a model that SGD cannot train: lazy parameters
    (torch.nn.modules.lazy) still uninitialised, which a worker's freshly built network cannot load
    weights into, or no parameter that requires a gradient."""
    lazy = sorted({type(module).__name__ for module in model.modules()
                   if any(map(torch.nn.parameter.is_lazy, [*module.parameters(False), *module.buffers(False)]))})
    if lazy:
        raise UnknownModelError(f"model {name!r} has uninitialised parameters of torch.nn.modules.lazy "
                                f"({', '.join(lazy)}); each evaluation loads weights into a freshly built network, "
                                "so give the layers their sizes (nn.Linear for nn.LazyLinear)")
    if not any(parameter.requires_grad for parameter in model.parameters()):
        raise UnknownModelError(f"model {name!r} has no trainable parameters (none that requires a gradient); "
                                "there is nothing for SGD to train")


def check_model(settings: TrainSettings, splits: ImageSplits) -> torch.nn.Module:
    """Before any training: the model builds, SGD can train it (:func:`check_trainable`), and it gives a
    tensor of ``num_classes`` logits for two training images; a one-line UnknownModelError else. Returns
    the model built; torch's random stream is left as it was."""
    context = TrainingContext.create("cpu", settings, splits)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        model = new_model(context).eval()
        check_trainable(model, settings.model)
        try:
            logits = model(context.prepare(splits.train_images[:2].to("cpu")))
        except Exception as error:  # any failure of the user's network on the data is theirs to fix
            raise UnknownModelError(f"model {settings.model!r} fails on {splits.describe()}: "
                                    f"{one_line(error)}") from None
    expected = (min(2, len(splits.train_labels)), splits.num_classes)
    if not isinstance(logits, torch.Tensor):
        raise UnknownModelError(f"model {settings.model!r} returns {type(logits).__name__} for {expected[0]} "
                                f"images, not a tensor of logits")
    if tuple(logits.shape) != expected:
        raise UnknownModelError(f"model {settings.model!r} gives outputs of shape {tuple(logits.shape)} for "
                                f"{expected[0]} images; a classifier of {splits.num_classes} classes gives {expected}")
    return model


def build_training_state(context: TrainingContext, task: EvalTask, model: torch.nn.Module | None = None,
                         ) -> tuple[torch.nn.Module, torch.optim.Optimizer, int]:
    """Model, optimiser and epochs trained so far: fresh (seeded) at first, else the parent's.

    The weights go into ``model`` in place when one is given (the worker's), else into a new model.
    """
    settings = context.settings.with_genes(task.genes)
    torch.manual_seed(task.seed)
    if model is None:
        model = new_model(context)
    elif task.parent_checkpoint is None:  # the worker's model takes the seeded fresh initialisation
        model.load_state_dict(new_model(context).state_dict())
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=settings.lr,
        momentum=settings.momentum,
        weight_decay=settings.weight_decay,
    )
    if task.parent_checkpoint is not None:
        state = load_checkpoint(task.parent_checkpoint, map_location=context.device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:  # the child's genes win over the parent's
            group["momentum"] = settings.momentum
            group["weight_decay"] = settings.weight_decay
        return model, optimizer, state["epochs"]
    return model, optimizer, 0


@contextlib.contextmanager
def out_of_memory_hint(device: torch.device) -> Iterator[None]:
    """Re-raise CUDA out-of-memory as a one-line error that says what to lower."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as error:
        raise RuntimeError(f"CUDA out of memory on {device} ({error}); "
                           "try fewer --workers-per-gpu, fewer models per group or a smaller batch") from None


def task_generator(context: TrainingContext, task: EvalTask) -> torch.Generator:
    """The evaluation's own random stream (batch order, augmentation), seeded from the task."""
    return torch.Generator(device=context.device).manual_seed(task.seed)


def evaluate(context: TrainingContext, task: EvalTask) -> EvalResult:
    """Train the child ``task`` describes and measure it; never saves non-finite weights."""
    with out_of_memory_hint(context.device):
        started = time.perf_counter()
        model, forward = context.worker_model()
        model, optimizer, trained = build_training_state(context, task, model)
        train_loss = train_epochs(context, model, forward, optimizer, task, task_generator(context, task))
        return measure_and_save(context, task, model, optimizer, trained, train_loss,
                                time.perf_counter() - started)


def measure_and_save(context: TrainingContext, task: EvalTask, model: torch.nn.Module,
                     optimizer: torch.optim.Optimizer, trained: int, train_loss: float,
                     train_seconds: float) -> EvalResult:
    """Validate, test and save a child that has trained; a diverged one gets fitness 0 and no file."""
    started = time.perf_counter() - train_seconds
    if not math.isfinite(train_loss) or not weights_are_finite(model):
        logger.warning("%s diverged (train loss %s); fitness 0", task.uid, train_loss)
        return EvalResult(task.uid, 0.0, 0.0, train_loss, trained, None, "diverged",
                          time.perf_counter() - started, "non-finite loss or weights")
    fitness, test_accuracy, measures = measure(context, model)
    epochs = trained + task.epochs
    save_checkpoint(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "genes": dict(task.genes),
         "epochs": epochs, "uid": task.uid, "model_name": context.settings.model},
        task.output_checkpoint,
    )
    return EvalResult(task.uid, fitness, test_accuracy, train_loss, epochs, task.output_checkpoint,
                      "ok", time.perf_counter() - started, measures=measures)
