"""``run(config)``: wire config, data, worker pool, toolbox and recorder into one EPBT run."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from deap import base, tools

from epbt_deap.config import Config, ConfigError
from epbt_deap.data import ImageSplits, load_splits
from epbt_deap.data.noise import flips_record, with_label_noise
from epbt_deap.errors import RunDirError, write_errors_named
from epbt_deap.evolution.algorithms import BestHallOfFame, eaElitist, eaTruncation, same_uid
from epbt_deap.evolution.space import SearchSpace
from epbt_deap.evolution.statistics import PopulationStatistics
from epbt_deap.evolution.toolbox import make_toolbox
from epbt_deap.execution.evaluation import EvaluationMap
from epbt_deap.execution.pool import make_pool, resolve_devices
from epbt_deap.execution.protocol import Observer, Pool
from epbt_deap.execution.shipping import ShippingPool
from epbt_deap.execution.training import TrainingContext, TrainSettings, check_model, evaluate
from epbt_deap.execution.vectorized import check_vectorizable, evaluate_group
from epbt_deap.models import UnknownModelError, is_session_only, model_builder
from epbt_deap.rundir.checkpoints import write_atomically
from epbt_deap.rundir.extension import extended
from epbt_deap.rundir.layout import LOCK_FILE, RunLayout
from epbt_deap.rundir.lock import lock_run_dir, refuse_if_locked
from epbt_deap.rundir.logs import read_json, read_run_config
from epbt_deap.rundir.provenance import provenance, record_provenance
from epbt_deap.rundir.recorder import RunState, load_state, recording, rewind_logs

logger = logging.getLogger("epbt_deap")

FOREIGN_LISTED = 3  # the names a refusal to overwrite a folder lists


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    logbook: tools.Logbook
    best_uid: str
    best_fitness: float | None  # None without a validation set
    best_test_accuracy: float | None


#: What a worker runs: ``evaluate(context, task) -> EvalResult``, or for the vectorised trainer a list of
#: tasks to a list of results. It must be importable by name (a module-level function) for worker processes.
Evaluate = Callable[[TrainingContext, Any], Any]


def default_evaluate(config: Config) -> Evaluate:
    """The trainer's evaluation: one child per call, or with ``train.trainer: vectorized`` a worker's group."""
    return evaluate_group if config.train.trainer == "vectorized" else evaluate


@dataclass(frozen=True)
class RunPlan:
    """A config checked and turned into what a run needs; building it touches nothing."""

    config: Config
    space: SearchSpace
    toolbox: base.Toolbox
    settings: TrainSettings
    devices: list[str]  # one per local worker; empty: one in-process CPU evaluator (or the Ray backend)

    @classmethod
    def of(cls, config: Config, evaluate: Evaluate | None = None, num_classes: int | None = None) -> RunPlan:
        """Raises a one-line error for a bad operator, model or device.

        ``evaluate`` is what a worker runs per task (by default the trainer's: see :func:`default_evaluate`);
        ``num_classes`` is the data's, where the config cannot know it before the data loads.
        """
        evolution, train, resources = config.evolution, config.train, config.resources
        space = config.search_space()
        num_classes = num_classes or config.data.num_classes()
        toolbox = make_toolbox(space, evolution.select.spec(), evolution.mutate.spec(), evolution.mate.spec(),
                               evaluate or default_evaluate(config), num_classes=num_classes,
                               init=evolution.taylorglo.init, partners=evolution.partners,
                               repair_tries=evolution.repair_tries)
        if evolution.taylorglo.init == "learnable" and num_classes is not None:
            toolbox.individual()  # an init range without a learnable theta is refused here, before any work
        model_builder(train.model)
        settings = TrainSettings.from_config(train)
        if resources.backend == "ray":
            from epbt_deap.execution.ray_pool import check_ray_backend

            check_ray_backend(resources.device, resources.ray_address)
            devices, workers = [], True
        else:
            devices = resolve_devices(resources.device, resources.workers_per_gpu, resources.cpu_workers)
            workers = bool(devices)
        if workers and is_session_only(train.model):
            raise UnknownModelError(f"train.model {train.model!r} was registered in this Python session, which "
                                    "worker processes never see; give it as an import path, module:factory")
        return cls(config, space, toolbox, settings, devices)

    def for_data(self, splits: ImageSplits) -> RunPlan:
        """This plan checked against the loaded data, before any training: the model builds and gives one
        logit per class (:func:`check_model`), and the vectorised trainer can stack it; made again with the
        data's number of classes where the config could not know it (arrays and loaders of your own: Eq. 1's
        n and the learnability check depend on it)."""
        model = check_model(self.settings, splits)
        if self.config.train.trainer == "vectorized":
            check_vectorizable(model, self.settings.model)
        if self.config.data.num_classes() is not None:
            return self
        return RunPlan.of(self.config, self.toolbox.evaluate.func, splits.num_classes)

    def pool(self, splits: ImageSplits, max_workers: int | None = None) -> Pool:
        """The local worker pool, or Ray actors with ``resources.backend: ray``; ``max_workers`` caps either."""
        resources = self.config.resources
        if resources.backend == "ray":
            from epbt_deap.execution.ray_pool import RayPool

            actors = RayPool(TrainingContext.create, (self.settings, splits), resources.device,
                             resources.workers_per_gpu, resources.cpu_workers, resources.ray_address, max_workers,
                             resources.threads_per_worker)
            return actors if resources.shared_storage else ShippingPool(actors)
        return make_pool(TrainingContext.create, (self.settings, splits), self.devices[:max_workers],
                         resources.threads_per_worker)

    def evaluation_map(self, pool: Pool, layout: RunLayout, observer: Observer | None) -> EvaluationMap:
        evolution = self.config.evolution
        return EvaluationMap(pool, self.space, layout, self.config.seed, self.config.train.epochs_per_generation,
                             observer, grouped=self.config.train.trainer == "vectorized",
                             validated=self.config.data.val_size != 0,
                             elites_carried=evolution.algorithm == "epbt" and not evolution.elites_train)


def summarize(run_dir: Path, logbook: tools.Logbook, halloffame: tools.HallOfFame) -> RunSummary:
    best = halloffame[0]
    return RunSummary(run_dir, logbook, best.uid, best.validation, best.metrics.get("test_accuracy"))


def anchored(config: Config) -> Config:
    """``config`` with ``data.dir`` absolute, so that the run does not depend on the launch directory."""
    if config.data.dir is None:
        return config
    data_dir = Path(os.path.abspath(config.data.dir.expanduser()))
    return config.model_copy(update={"data": config.data.model_copy(update={"dir": data_dir})})


def check_new_run_dir(layout: RunLayout, overwrite: bool) -> None:
    """Before any work: a one-line error, touching nothing, where a new run may not start in ``layout.root``
    (another process writes it, or it holds what ``overwrite`` may not delete)."""
    refuse_if_locked(layout.root)
    check_run_dir(layout, overwrite)


def check_run_dir(layout: RunLayout, overwrite: bool) -> list[Path]:
    """What must be deleted before a new run starts in ``layout.root``; a one-line RunDirError,
    touching nothing, where it may not start there.

    A folder may take a new run when it is missing or empty. ``overwrite`` replaces a run
    directory, and only one: it deletes only what a run writes, never another folder.
    """
    root = layout.root
    if root.exists() and not root.is_dir():
        raise RunDirError(f"run directory {root} is a file, not a folder")
    entries = sorted(path for path in root.iterdir() if path.name != LOCK_FILE) if root.exists() else []
    if not entries:
        return []
    for name, folder in (("file-system root", Path(root.anchor)), ("home folder", Path.home())):
        if root.resolve() == folder.resolve():
            raise RunDirError(f"run directory {root} is the {name}; choose a folder of its own")
    foreign = layout.foreign_entries()
    if foreign or not layout.holds_run():
        listed = ", ".join(foreign[:FOREIGN_LISTED]) + (", ..." if len(foreign) > FOREIGN_LISTED else "")
        raise RunDirError(f"run directory {root} is not empty and holds no epbt-deap run"
                          f"{f' ({listed})' if foreign else ''}; nothing was deleted: choose another folder")
    if not overwrite:
        raise RunDirError(f"run directory {root} holds another run; pass --overwrite to replace it")
    return entries


def restarted_entries(layout: RunLayout) -> list[Path]:
    """What a restart of generation 0 (by resume) deletes: the files the run wrote, but not its config,
    provenance or lock, nor any file of the user's (a ``tee``'d log): the user asked for no overwrite."""
    kept = {layout.config, layout.provenance, layout.damaged_provenance, layout.root / LOCK_FILE}
    return sorted(path for path in layout.root.iterdir() if layout.written_by_run(path.name) and path not in kept)


def prepare_run_dir(layout: RunLayout, config: Config, overwrite: bool, splits: ImageSplits,
                    restart: bool = False) -> None:
    """With the run directory locked: delete the run it held (``overwrite``), or what generation 0
    had written (``restart``: see :func:`restarted_entries`), then write the resolved config and the
    flipped labels.

    The old config.yaml is not deleted but replaced, in one rename, and before anything else is
    written: a directory never holds a run's files without a config, so a stop at any moment
    leaves one that ``--overwrite`` and ``resume`` recognise."""
    # state.pkl first: a kill during the deletion then leaves no state that resume would continue
    # with checkpoints already gone; config.yaml last, replaced rather than deleted
    doomed = restarted_entries(layout) if restart else check_run_dir(layout, overwrite)
    for path in sorted(doomed, key=lambda path: path != layout.state):
        if path == layout.config:
            continue
        with write_errors_named(path):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    write_config(layout, config)
    layout.checkpoints.mkdir(exist_ok=True)
    record_label_noise(layout, config, splits)


def write_config(layout: RunLayout, config: Config) -> None:
    """Write the resolved ``config`` as the run's config.yaml, atomically."""
    text = config.to_yaml()
    write_atomically(layout.config, text.encode())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_data(config: Config) -> ImageSplits:
    """The run's data split, its labels flipped where ``data.label_noise`` asks."""
    data = config.data
    splits = load_splits(data.dataset, data.dir, download=data.download, val_size=data.val_size,
                         train_subset=data.train_subset, augment=data.augment, split_seed=data.split_seed,
                         test_subset=data.test_subset)
    logger.info("%s", splits.describe())
    noise = config.label_noise()
    if noise is not None:
        splits = with_label_noise(splits, noise)
        logger.info("label noise: %s, rate %g, seed %d, validation %s", noise.kind, noise.rate, noise.seed,
                    "clean" if noise.clean_validation else "noisy")
    return splits


def record_label_noise(layout: RunLayout, config: Config, splits: ImageSplits) -> None:
    """Write the flipped labels into the run directory (a run without label noise writes nothing)."""
    noise = config.label_noise()
    if noise is not None:
        write_atomically(layout.label_noise, json.dumps(flips_record(splits, noise)).encode())


def check_label_noise(layout: RunLayout, config: Config, splits: ImageSplits) -> None:
    """Refuse to resume with other flipped labels than those the run recorded (say, another dataset version)."""
    noise = config.label_noise()
    if noise is None or not layout.label_noise.exists():
        return
    if read_json(layout.label_noise) != json.loads(json.dumps(flips_record(splits, noise))):
        raise RunDirError(f"the labels flipped now differ from those {layout.label_noise} recorded: "
                          "the data changed since the run started, so it cannot be resumed")


@contextlib.contextmanager
def evaluating(plan: RunPlan, layout: RunLayout, splits: ImageSplits, observer: Observer | None, command: str,
               max_workers: int | None = None) -> Iterator[None]:
    """The plan's worker pool as the toolbox's ``map`` while a loop runs inside; its provenance recorded."""
    with plan.pool(splits, max_workers) as pool:
        record_provenance(layout, provenance(command, pool, plan.config.resources.backend, splits.describe(),
                                             splits.num_classes))
        plan.toolbox.register("map", plan.evaluation_map(pool, layout, observer))
        yield


def evolve(plan: RunPlan, layout: RunLayout, splits: ImageSplits, observer: Observer | None,
           state: RunState | None, command: str = "run") -> RunSummary:
    """Run (or continue from ``state``) the evolutionary loop with a worker pool; provenance records ``command``."""
    config, toolbox, space = plan.config, plan.toolbox, plan.space
    evolution = config.evolution
    with evaluating(plan, layout, splits, observer, command):
        if state is None:
            halloffame = BestHallOfFame(evolution.hall_of_fame, similar=same_uid)
            population, logbook, start_gen = toolbox.population(n=evolution.population), None, 0
        else:
            halloffame, population, logbook = state.halloffame, state.population, state.logbook
            start_gen = state.generation + 1
        # a new recorder writes best.pt afresh after its first generation, also on a resume: a stop
        # between best.pt and state.pkl may have left there the leader of a generation that is lost
        with recording(layout, space, halloffame, observer) as recorder:
            common = dict(ngen=evolution.generations - 1, halloffame=halloffame, start_gen=start_gen,
                          stats=PopulationStatistics(config.train.epochs_per_generation), logbook=logbook,
                          callback=recorder)
            if evolution.algorithm == "epbt":
                _, logbook = eaElitist(population, toolbox, k_elites=evolution.elites, cxpb=evolution.cxpb,
                                       mutpb=evolution.mutpb, elites_train=evolution.elites_train, **common)
            else:
                fraction = evolution.truncation if evolution.algorithm == "pbt" else 0.0
                _, logbook = eaTruncation(population, toolbox, fraction=fraction, **common)
    return summarize(layout.root, logbook, halloffame)


#: Config keys that a command writes into a run's config.yaml, never a new run's config.
SET_BY_COMMANDS = {"replay_of": "replay", "extensions": "resume"}


def run(config: Config, run_dir: Path, observer: Observer | None = None, overwrite: bool = False,
        evaluate: Evaluate | None = None) -> RunSummary:
    """Run EPBT (or a baseline: ``evolution.algorithm``) as ``config`` says, into ``run_dir``.

    The config, operators, devices, data and run directory are checked before ``run_dir``
    is touched; the run then holds its lock (:mod:`epbt_deap.rundir.lock`) while it writes.
    ``evaluate`` replaces the trainer's evaluation (:data:`Evaluate`).
    """
    for key, command in SET_BY_COMMANDS.items():
        if getattr(config, key):
            raise ConfigError(f"{key}: set by epbt-deap {command} only, not in a new run's config")
    config = anchored(config)
    plan = RunPlan.of(config, evaluate)
    layout = RunLayout.at(run_dir)
    check_new_run_dir(layout, overwrite)
    splits = load_data(config)
    plan = plan.for_data(splits)
    with locked(layout):
        return start(plan, layout, splits, observer, overwrite)


def locked(layout: RunLayout) -> contextlib.AbstractContextManager[None]:
    """The run directory, created where missing, locked for this process's writes."""
    with write_errors_named(layout.root):
        layout.root.mkdir(parents=True, exist_ok=True)
    return lock_run_dir(layout.root)


def start(plan: RunPlan, layout: RunLayout, splits: ImageSplits, observer: Observer | None,
          overwrite: bool, restart: bool = False) -> RunSummary:
    """Generation 0 onwards, in the locked run directory; a ``restart`` (by resume) keeps the provenance
    of the earlier starts and records itself as a resume."""
    prepare_run_dir(layout, plan.config, overwrite, splits, restart)
    seed_everything(plan.config.seed)
    return evolve(plan, layout, splits, observer, state=None, command="resume" if restart else "run")


def resume(run_dir: Path, observer: Observer | None = None, generations: int | None = None,
           lr_milestones: Sequence[int] | None = None, evaluate: Evaluate | None = None) -> RunSummary:
    """Continue the run in ``run_dir`` from its last completed generation.

    ``generations`` (a larger total, generation 0 included) extends it, finished or not, and
    then needs ``lr_milestones`` for the longer clock (see :mod:`epbt_deap.rundir.extension`);
    config.yaml records the extension.
    """
    layout = RunLayout.at(run_dir)
    if not layout.config.exists():
        raise RunDirError(f"{run_dir} holds no epbt-deap run (no {layout.config.name})")
    with lock_run_dir(layout.root):
        return resume_locked(layout, observer, generations, lr_milestones, evaluate)


def resume_locked(layout: RunLayout, observer: Observer | None, generations: int | None,
                  lr_milestones: Sequence[int] | None, evaluate: Evaluate | None = None) -> RunSummary:
    """:func:`resume`, with the run directory locked."""
    run_dir = layout.root
    config = read_run_config(layout)
    if config.replay_of is not None:
        raise RunDirError(f"{run_dir} is a replay, which cannot be resumed; replay {config.replay_of} again")
    state = load_state(layout)
    longer = extended(config, 0 if state is None else state.generation + 1, generations, lr_milestones)
    plan = RunPlan.of(longer, evaluate)
    if longer is not config:
        write_config(layout, longer)
        logger.info("%s extended to %d generations, learning-rate milestones %s", run_dir,
                    longer.evolution.generations, longer.train.lr_milestones)
        config = longer
    if state is None:  # killed during generation 0: nothing to keep
        logger.warning("no generation of %s had completed; starting it again", run_dir)
        splits = load_data(config)
        return start(plan.for_data(splits), layout, splits, observer, overwrite=True, restart=True)
    if state.generation >= config.evolution.generations - 1:
        logger.info("%s is complete; nothing to resume", run_dir)
        return summarize(layout.root, state.logbook, state.halloffame)
    splits = load_data(config)
    check_label_noise(layout, config, splits)
    logger.info("resuming %s after generation %d", run_dir, state.generation)
    rewind_logs(layout, state)
    plan = plan.for_data(splits)  # before the saved random state: with a user's data it draws an individual
    state.restore_rng()
    return evolve(plan, layout, splits, observer, state, command="resume")
