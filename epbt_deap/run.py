"""``run(config)``: wire config, data, worker pool, toolbox and recorder into one EPBT run."""
from __future__ import annotations

import logging
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from deap import base, tools

from epbt_deap.algorithms import eaElitist, eaTruncation, same_uid
from epbt_deap.config import Config, load_config
from epbt_deap.data import ImageSplits, load_splits
from epbt_deap.evaluation import EvaluationMap, Observer
from epbt_deap.models import MODEL_NAMES, UnknownModelError
from epbt_deap.pool import make_pool, resolve_devices
from epbt_deap.recorder import CHECKPOINT_DIR, CONFIG_FILE, RunRecorder, RunState, load_state, rewind_logs
from epbt_deap.statistics import PopulationStatistics
from epbt_deap.tensorboard import TensorBoardScalars
from epbt_deap.toolbox import make_toolbox
from epbt_deap.training import TrainingContext, TrainSettings, evaluate

logger = logging.getLogger("epbt_deap")


class RunDirError(ValueError):
    """The run directory cannot be used (it holds another run)."""


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    logbook: tools.Logbook
    best_uid: str
    best_fitness: float
    best_test_accuracy: float | None


def train_settings(config: Config) -> TrainSettings:
    t = config.train
    if t.model not in MODEL_NAMES:
        raise UnknownModelError(f"unknown model {t.model!r}; choose one of: {', '.join(MODEL_NAMES)}")
    return TrainSettings(
        model=t.model, batch_size=t.batch_size, eval_batch_size=t.eval_batch_size, lr=t.lr,
        momentum=t.momentum, weight_decay=t.weight_decay, lr_milestones=tuple(t.lr_milestones),
        lr_gamma=t.lr_gamma, loss=t.loss,
    )


def prepare_run_dir(run_dir: Path, config: Config, overwrite: bool) -> None:
    """Create ``run_dir`` with the resolved config; refuse one that holds another run."""
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise RunDirError(f"run directory {run_dir} is not empty; pass --overwrite to replace it")
        shutil.rmtree(run_dir)
    (run_dir / CHECKPOINT_DIR).mkdir(parents=True)
    (run_dir / CONFIG_FILE).write_text(config.to_yaml())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_toolbox(config: Config) -> base.Toolbox:
    """The run's toolbox without its map; raises on bad operators before any work starts."""
    evolution = config.evolution
    return make_toolbox(config.search_space(), evolution.select.spec(), evolution.mutate.spec(),
                        evolution.mate.spec(), evaluate)


def load_data(config: Config) -> ImageSplits:
    data = config.data
    splits = load_splits(data.dataset, data.dir, download=data.download, val_size=data.val_size,
                         train_subset=data.train_subset, augment=data.augment, split_seed=data.split_seed)
    logger.info("%s", splits.describe())
    return splits


def evolve(config: Config, run_dir: Path, toolbox: base.Toolbox, splits: ImageSplits,
           observer: Observer | None, state: RunState | None) -> RunSummary:
    """Run (or continue from ``state``) the evolutionary loop with a worker pool."""
    evolution = config.evolution
    space = config.search_space()
    devices = resolve_devices(config.resources.device, config.resources.workers_per_gpu,
                              config.resources.cpu_workers)
    with make_pool(TrainingContext.create, (train_settings(config), splits), devices) as pool:
        toolbox.register("map", EvaluationMap(pool, space, run_dir / CHECKPOINT_DIR, config.seed,
                                              config.train.epochs_per_generation, observer))
        if state is None:
            halloffame = tools.HallOfFame(evolution.hall_of_fame, similar=same_uid)
            population, logbook, start_gen = toolbox.population(n=evolution.population), None, 0
        else:
            halloffame, population, logbook = state.halloffame, state.population, state.logbook
            start_gen = state.generation + 1
        common = dict(
            ngen=evolution.generations - 1, stats=PopulationStatistics(config.train.epochs_per_generation),
            halloffame=halloffame, start_gen=start_gen, logbook=logbook,
            callback=RunRecorder(run_dir, space, halloffame, observer, best_uid=halloffame[0].uid if state else None,
                                 tensorboard=TensorBoardScalars(run_dir)),
        )
        if evolution.algorithm == "epbt":
            _, logbook = eaElitist(population, toolbox, k_elites=evolution.elites, cxpb=evolution.cxpb,
                                   mutpb=evolution.mutpb, **common)
        else:
            fraction = evolution.truncation if evolution.algorithm == "pbt" else 0.0
            _, logbook = eaTruncation(population, toolbox, fraction=fraction, **common)
    best = halloffame[0]
    return RunSummary(run_dir, logbook, best.uid, best.fitness.values[0], best.metrics.get("test_accuracy"))


def run(config: Config, run_dir: Path, observer: Observer | None = None, overwrite: bool = False) -> RunSummary:
    """Run EPBT (or a baseline: ``evolution.algorithm``) as ``config`` says, into ``run_dir``.

    The config, operators, devices and data are checked before ``run_dir`` is touched.
    """
    toolbox = build_toolbox(config)
    resolve_devices(config.resources.device, config.resources.workers_per_gpu, config.resources.cpu_workers)
    train_settings(config)
    splits = load_data(config)
    prepare_run_dir(run_dir, config, overwrite)
    seed_everything(config.seed)
    return evolve(config, run_dir, toolbox, splits, observer, state=None)


def resume(run_dir: Path, observer: Observer | None = None) -> RunSummary:
    """Continue the run in ``run_dir`` from its last completed generation."""
    if not (run_dir / CONFIG_FILE).exists():
        raise RunDirError(f"{run_dir} holds no epbt-deap run (no {CONFIG_FILE})")
    config = load_config(run_dir / CONFIG_FILE)
    if config.replay_of is not None:
        raise RunDirError(f"{run_dir} is a replay, which cannot be resumed; replay {config.replay_of} again")
    toolbox = build_toolbox(config)
    state = load_state(run_dir)
    if state is None:  # killed during generation 0: nothing to keep
        logger.warning("no generation of %s had completed; starting it again", run_dir)
        return run(config, run_dir, observer, overwrite=True)
    splits = load_data(config)
    logger.info("resuming %s after generation %d", run_dir, state.generation)
    rewind_logs(run_dir, state)
    state.restore_rng()
    return evolve(config, run_dir, toolbox, splits, observer, state)
