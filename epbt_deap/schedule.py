"""A run's loss schedule: the best lineage's genes for each epoch trained along it.

EPBT's product is a schedule as much as a model: the best individual's ancestors each
trained a few epochs with their own TaylorGLO theta (and any other gene that evolved:
lr, momentum, weight_decay, label_smoothing). :meth:`LossSchedule.from_run` reads that schedule from a run directory,
indexed by the epochs trained along the lineage (0 is the first epoch of the
generation-0 ancestor). A child of an older elite starts later on the run's clock than
its lineage epoch, so each step also records its clock epoch and the learning rate each
of its epochs actually used. After the lineage's last epoch the last step holds.

:meth:`LossSchedule.save` writes it as a small JSON file (``SCHEMA``, version
``SCHEMA_VERSION``; the fields are documented in docs/baselines-and-reports.md) and
:meth:`LossSchedule.load` reads it back exactly.
"""
from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from epbt_deap.config import Config, ConfigError, TrainConfig, build_config, describe_error
from epbt_deap.errors import EpbtError, RunDirError
from epbt_deap.evolution.learnability import check
from epbt_deap.evolution.space import PARAMETER_NAMES
from epbt_deap.execution.training import LossFunction, TrainSettings, make_loss
from epbt_deap.rundir.checkpoints import write_atomically
from epbt_deap.rundir.layout import RunLayout
from epbt_deap.rundir.logs import is_count, is_real, read_provenance, read_run_logs, trained_ancestry

SCHEMA = "epbt-deap/loss-schedule"
SCHEMA_VERSION = 3  # 2 added loss.label_smoothing, 3 loss.gce_q; older files read as their defaults
READABLE_VERSIONS = (1, 2, SCHEMA_VERSION)
REDUCTION = "mean"  # Eq. 1's bracket averaged over the n classes and over the batch


class ScheduleError(EpbtError):
    """A schedule file that cannot be read, or a question the schedule cannot answer."""


@dataclass(frozen=True)
class FoundWith:
    """Where the schedule comes from: the run, its data and model, and its best individual."""

    run: str
    dataset: str
    model: str
    num_classes: int | None  # None: a run of an older version on data no longer where it was
    best_uid: str
    fitness: float | None  # None: a run without a validation set
    test_accuracy: float | None


@dataclass(frozen=True)
class LossSetting:
    """What turns logits and targets into the loss, besides theta."""

    name: str  # taylorglo, cross_entropy or gce
    taylorglo_scale: float  # multiplies Eq. 1
    reduction: str = REDUCTION
    label_smoothing: float = TrainConfig.default("label_smoothing")  # cross_entropy's; a gene overrides it
    gce_q: float = TrainConfig.default("gce_q")  # gce's exponent


@dataclass(frozen=True)
class SgdSetting:
    """The optimiser recipe: SGD with step decay of ``lr`` at ``lr_milestones`` on the run's clock.

    A gene named ``lr``, ``momentum`` or ``weight_decay`` overrides the value here for its step.
    """

    lr: float
    momentum: float
    weight_decay: float
    lr_milestones: tuple[int, ...]
    lr_gamma: float
    batch_size: int
    lr_clock: str = "run"  # milestones count the run's clock epochs (generation x epochs per generation)


@dataclass(frozen=True)
class ScheduleStep:
    """One ancestor's share of the lineage: ``len(lr)`` epochs from lineage epoch ``epoch``."""

    uid: str
    generation: int
    epoch: int  # first epoch of the step, counted along the lineage
    clock_epoch: int  # the same epoch on the run's clock: where the lr recipe was read
    genes: dict[str, float]  # all of the ancestor's genes: theta_0 .. theta_7 and any other evolved gene
    lr: tuple[float, ...]  # the learning rate each epoch of the step used

    @property
    def epochs(self) -> int:
        return len(self.lr)


def loaded_classes(run_dir: str | Path, config: Config) -> int | None:
    """The number of classes of the data the run loaded, as its provenance records it (runs of older
    versions: as its config tells, where it can)."""
    try:
        entries = read_provenance(RunLayout.at(run_dir))
    except RunDirError:  # a damaged provenance.json: a run goes on without it, and so does its schedule
        entries = []
    counts = [entry["num_classes"] for entry in entries if is_count(entry.get("num_classes"))]
    return counts[-1] if counts else config.data.num_classes()


def recipe_keys(loss: LossSetting, sgd: SgdSetting) -> dict[str, Any]:
    """The config's ``train`` keys that a schedule's recipe fixes, by their config names."""
    return dict(loss=loss.name, taylorglo_scale=loss.taylorglo_scale, label_smoothing=loss.label_smoothing,
                gce_q=loss.gce_q, lr=sgd.lr, momentum=sgd.momentum, weight_decay=sgd.weight_decay,
                lr_milestones=tuple(sgd.lr_milestones), lr_gamma=sgd.lr_gamma, batch_size=sgd.batch_size)


def recipe_of(train: TrainConfig) -> tuple[LossSetting, SgdSetting]:
    """The loss and SGD settings of a run's ``train`` config."""
    return (LossSetting(train.loss, train.taylorglo_scale, label_smoothing=train.label_smoothing, gce_q=train.gce_q),
            SgdSetting(train.lr, train.momentum, train.weight_decay, tuple(train.lr_milestones), train.lr_gamma,
                       train.batch_size))


def checked_recipe(loss: LossSetting, sgd: SgdSetting) -> tuple[LossSetting, SgdSetting]:
    """A file's loss and SGD settings as a run's config validates them (``"0.9"`` becomes 0.9); a
    one-line ScheduleError for one that a run's config would refuse."""
    if loss.reduction != REDUCTION:
        raise ScheduleError(f"loss schedule: reduction {loss.reduction!r} is not {REDUCTION!r}")
    if sgd.lr_clock != "run":
        raise ScheduleError(f"loss schedule: lr_clock {sgd.lr_clock!r} is not 'run'")
    try:
        return recipe_of(TrainConfig(**recipe_keys(loss, sgd)))
    except ValidationError as error:
        raise ScheduleError(f"loss schedule: {describe_error(error)}") from None


def is_finite(value: Any) -> bool:
    return is_real(value) and math.isfinite(value)


def checked_step(raw: Any, start: int, evolved: tuple[str, ...]) -> ScheduleStep:
    """A file's step, starting at lineage epoch ``start`` where the one before it ended; a one-line
    ScheduleError for a malformed one (KeyError or TypeError for a missing or unexpected field)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("genes"), Mapping) or not isinstance(raw.get("lr"), list):
        raise ScheduleError(f"loss schedule: the step after epoch {start} must be an object with a genes object "
                            "and an lr list")
    step = ScheduleStep(**{**raw, "genes": dict(raw["genes"]), "lr": tuple(raw["lr"])})
    where = f"loss schedule: step {step.uid}"
    if not isinstance(step.uid, str):
        raise ScheduleError(f"{where}: uid must be text")
    counts = {"generation": step.generation, "epoch": step.epoch, "clock_epoch": step.clock_epoch}
    wrong = [name for name, value in counts.items() if not (is_count(value) and value >= 0)]
    if wrong:
        raise ScheduleError(f"{where}: {', '.join(wrong)}: not a whole number, 0 or more")
    if step.epoch != start:
        raise ScheduleError(f"{where} starts at epoch {step.epoch}, but the steps before it end at {start}")
    if not step.lr or not all(is_finite(lr) and lr > 0 for lr in step.lr):
        raise ScheduleError(f"{where}: lr must list one positive learning rate per epoch, got {list(step.lr)!r}")
    missing = [name for name in evolved if name not in step.genes]
    if missing:
        raise ScheduleError(f"{where} lacks {', '.join(missing)}")
    for name, value in step.genes.items():
        if not is_finite(value):
            raise ScheduleError(f"{where}: {name} must be a finite number, got {value!r}")
    return step


@dataclass(frozen=True)
class LossSchedule:
    """The best lineage's losses and hyperparameters, epoch by epoch (see the module docstring)."""

    found_with: FoundWith
    loss: LossSetting
    sgd: SgdSetting
    evolved: tuple[str, ...]  # the genes the run evolved
    steps: tuple[ScheduleStep, ...]

    @classmethod
    def from_run(cls, run_dir: str | Path) -> LossSchedule:
        """The schedule of the best lineage of the run in ``run_dir``, finished or in progress (a half-written
        last line of its logs is left out)."""
        return cls.with_config(run_dir)[0]

    @classmethod
    def with_config(cls, run_dir: str | Path) -> tuple[LossSchedule, Config]:
        """:meth:`from_run`, and the run's validated config that it was read from: one read of a config.yaml
        that a resume of a live run may rewrite."""
        logs = read_run_logs(run_dir, live=True)
        try:
            config = build_config(logs.config)
        except ConfigError as error:
            raise RunDirError(f"{run_dir}/config.yaml: {error}") from None
        train = config.train
        chain = trained_ancestry(logs.lineage)
        if not chain:
            raise RunDirError(f"{run_dir} has no successfully trained individual")
        settings = TrainSettings.from_config(train)
        steps, trained = [], 0
        for row in chain:
            clock = row["generation"] * train.epochs_per_generation
            child = settings.with_genes(row["genes"])
            lr = tuple(child.learning_rate(clock + offset) for offset in range(row["epochs"] - trained))
            steps.append(ScheduleStep(row["uid"], row["generation"], trained, clock, dict(row["genes"]), lr))
            trained = row["epochs"]
        best = chain[-1]
        found_with = FoundWith(config.name, config.data.dataset, str(train.model), loaded_classes(run_dir, config),
                               best["uid"], best["fitness"], best.get("test_accuracy"))
        return cls(found_with, *recipe_of(train), config.search_space().names, tuple(steps)), config

    @property
    def epochs(self) -> int:
        """Epochs trained along the lineage, all steps together."""
        return self.steps[-1].epoch + self.steps[-1].epochs

    @property
    def num_classes(self) -> int | None:
        """The number of classes the schedule was found with (Eq. 1's n)."""
        return self.found_with.num_classes

    def step_at(self, epoch: int) -> ScheduleStep:
        """The step that trains lineage epoch ``epoch`` (0-based); after the last epoch, the last step."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:  # numpy's ints too
            raise ValueError(f"epoch must be a whole number, 0 or more, got {epoch!r}")
        return next((step for step in self.steps if epoch < step.epoch + step.epochs), self.steps[-1])

    def theta_at(self, epoch: int) -> tuple[float, ...]:
        """TaylorGLO's theta_0 .. theta_7 at ``epoch``."""
        if self.loss.name != "taylorglo":
            raise ScheduleError(f"the schedule's loss is {self.loss.name}, which has no theta")
        genes = self.step_at(epoch).genes
        return tuple(genes[name] for name in PARAMETER_NAMES)

    def genes_at(self, epoch: int) -> dict[str, float]:
        """The evolved genes other than theta at ``epoch`` (lr, momentum, weight_decay, label_smoothing: those the run evolved)."""
        return {name: value for name, value in self.step_at(epoch).genes.items() if name not in PARAMETER_NAMES}

    def lr_at(self, epoch: int) -> float:
        """The learning rate the lineage used at ``epoch`` (its lr gene or recipe, decayed on the run's clock)."""
        step = self.step_at(epoch)
        return step.lr[min(epoch - step.epoch, step.epochs - 1)]

    def sgd_at(self, epoch: int) -> dict[str, float]:
        """``lr``, ``momentum`` and ``weight_decay`` for SGD's parameter groups at ``epoch``."""
        child = self.settings_at(epoch)
        return {"lr": self.lr_at(epoch), "momentum": child.momentum, "weight_decay": child.weight_decay}

    def loss_at(self, epoch: int, device: str | torch.device = "cpu") -> LossFunction:
        """The loss ``(logits, targets) -> scalar`` that trained ``epoch``, exactly as training computes it.

        ``device`` is where theta is held (any device works; the logits' own avoids a copy per call).
        """
        return make_loss(self.settings_at(epoch), self.step_at(epoch).genes, torch.device(device))

    def settings_at(self, epoch: int) -> TrainSettings:
        """The loss and SGD settings of ``epoch``: the schedule's recipe with the step's genes applied, as
        training applies them. The rest (model arguments, precision, ...) is not the schedule's and keeps
        its defaults."""
        recipe = TrainSettings(self.found_with.model, **recipe_keys(self.loss, self.sgd))
        return recipe.with_genes(self.step_at(epoch).genes)

    def unlearnable_steps(self, num_classes: int) -> list[ScheduleStep]:
        """The steps whose theta fails :func:`epbt_deap.evolution.learnability.check` for ``num_classes`` classes."""
        if self.loss.name != "taylorglo":
            return []
        return [step for step in self.steps if not check(self.theta_at(step.epoch), num_classes).learnable]

    def to_dict(self) -> dict[str, Any]:
        """The schedule as the JSON file holds it."""
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossSchedule:
        """The schedule of :meth:`to_dict`'s mapping; a one-line ScheduleError for another schema or version."""
        if data.get("schema") != SCHEMA:
            raise ScheduleError(f"not an epbt-deap loss schedule (schema {data.get('schema')!r}, expected {SCHEMA!r})")
        version = data.get("schema_version")
        if not is_count(version) or version not in READABLE_VERSIONS:
            raise ScheduleError(f"loss schedule version {version!r}: this epbt-deap reads "
                                f"versions {', '.join(map(str, READABLE_VERSIONS))}")
        try:
            evolved = data["evolved"]
            if not isinstance(evolved, list) or not all(isinstance(name, str) for name in evolved):
                raise ScheduleError("loss schedule: evolved must be a list of gene names")
            sgd = {**data["sgd"], "lr_milestones": tuple(data["sgd"]["lr_milestones"])}
            loss, sgd = checked_recipe(LossSetting(**data["loss"]), SgdSetting(**sgd))
            steps: list[ScheduleStep] = []
            for raw in data["steps"]:
                steps.append(checked_step(raw, steps[-1].epoch + steps[-1].epochs if steps else 0, tuple(evolved)))
            schedule = cls(FoundWith(**data["found_with"]), loss, sgd, tuple(evolved), tuple(steps))
        except (KeyError, TypeError) as error:
            raise ScheduleError(f"loss schedule: missing or unexpected field ({error})") from None
        if not steps:
            raise ScheduleError("loss schedule: no steps")
        return schedule

    def save(self, path: str | Path) -> None:
        """Write the schedule as JSON to ``path``, atomically; never over a file a run directory's run writes."""
        path = Path(path)
        if RunLayout.written_by_run(path.name) and RunLayout.at(path.parent).holds_run():
            raise RunDirError(f"{path} is a file of the run in {path.parent}: write the schedule elsewhere")
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        write_atomically(path, text.encode())

    @classmethod
    def load(cls, path: str | Path) -> LossSchedule:
        """Read a schedule written by :meth:`save`; a one-line ScheduleError for a bad file."""
        try:
            data = json.loads(Path(path).read_text())
        except OSError as error:
            raise ScheduleError(f"{path}: cannot read ({error.strerror})") from None
        except UnicodeDecodeError:
            raise ScheduleError(f"{path}: not a text file (not UTF-8)") from None
        except json.JSONDecodeError as error:
            raise ScheduleError(f"{path}: not valid JSON ({error.msg})") from None
        if not isinstance(data, dict):
            raise ScheduleError(f"{path}: expected a JSON object")
        try:
            return cls.from_dict(data)
        except ScheduleError as error:
            raise ScheduleError(f"{path}: {error}") from None
