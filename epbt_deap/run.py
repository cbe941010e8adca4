"""``run(config)``: wire config, data, worker pool, toolbox and recorder into one EPBT run."""
from __future__ import annotations

import logging
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from deap import tools

from epbt_deap.algorithms import eaElitist, same_uid
from epbt_deap.config import Config
from epbt_deap.data import load_splits
from epbt_deap.evaluation import EvaluationMap, Observer
from epbt_deap.models import MODEL_NAMES, UnknownModelError
from epbt_deap.pool import make_pool, resolve_devices
from epbt_deap.recorder import CHECKPOINT_DIR, CONFIG_FILE, RunRecorder
from epbt_deap.statistics import PopulationStatistics
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


def run(config: Config, run_dir: Path, observer: Observer | None = None, overwrite: bool = False) -> RunSummary:
    """Run EPBT as ``config`` says, writing everything into ``run_dir``."""
    evolution = config.evolution
    space = config.search_space()
    settings = train_settings(config)
    devices = resolve_devices(config.resources.device, config.resources.workers_per_gpu,
                              config.resources.cpu_workers)
    toolbox = make_toolbox(space, evolution.select.spec(), evolution.mutate.spec(), evolution.mate.spec(), evaluate)
    splits = load_splits(
        config.data.dataset, config.data.dir, download=config.data.download,
        val_size=config.data.val_size, train_subset=config.data.train_subset,
        augment=config.data.augment, split_seed=config.data.split_seed,
    )
    logger.info("%s", splits.describe())
    prepare_run_dir(run_dir, config, overwrite)
    seed_everything(config.seed)
    with make_pool(TrainingContext.create, (settings, splits), devices) as pool:
        toolbox.register("map", EvaluationMap(pool, space, run_dir / CHECKPOINT_DIR, config.seed,
                                              config.train.epochs_per_generation, observer))
        halloffame = tools.HallOfFame(evolution.hall_of_fame, similar=same_uid)
        population = toolbox.population(n=evolution.population)
        _, logbook = eaElitist(
            population, toolbox, ngen=evolution.generations - 1, k_elites=evolution.elites,
            cxpb=evolution.cxpb, mutpb=evolution.mutpb, stats=PopulationStatistics(config.train.epochs_per_generation),
            halloffame=halloffame, callback=RunRecorder(run_dir, space, halloffame, observer),
        )
    best = halloffame[0]
    return RunSummary(run_dir, logbook, best.uid, best.fitness.values[0], best.metrics.get("test_accuracy"))
