"""Replay: train a fresh model on the best lineage's schedule of genes, and nothing else.

EPBT's best model inherits weights along a chain of ancestors, each trained E epochs with
its own loss. Replaying that chain (its :class:`~epbt_deap.schedule.LossSchedule`) from a
new initialisation, each step with the ancestor's genes at the ancestor's place on the
epoch clock (so the same learning-rate step), tells whether the discovered *schedule*
alone transfers: to the same network, or with overrides to another model or dataset.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from epbt_deap.config import Config, ConfigError, build_config
from epbt_deap.data import ImageSplits
from epbt_deap.errors import RunDirError
from epbt_deap.evolution.algorithms import BestHallOfFame, eaSchedule, same_uid
from epbt_deap.evolution.individual import Individual
from epbt_deap.evolution.statistics import PopulationStatistics
from epbt_deap.execution.protocol import Observer
from epbt_deap.run import (RunPlan, RunSummary, anchored, check_new_run_dir, evaluating, load_data, locked,
                           prepare_run_dir, seed_everything, summarize)
from epbt_deap.rundir.layout import RunLayout
from epbt_deap.rundir.recorder import recording
from epbt_deap.schedule import LossSchedule

logger = logging.getLogger("epbt_deap")

#: Config keys the schedule fixes: a replay may change the model, the data and the rest.
SCHEDULE_KEYS = ("evolution", "train.loss", "train.epochs_per_generation", "name", "replay_of")


def replay_config(source: Config, source_root: Path, schedule: LossSchedule,
                  overrides: Mapping[str, Any]) -> Config:
    """The source run's config with ``overrides`` (e.g. ``train.model``) applied, named as its
    replay, and as many generations as the schedule has steps (an old elite's lineage is shorter).
    The source's extensions are its history, not the replay's: the replay records none."""
    for key in overrides:
        if any(key == fixed or key.startswith(f"{fixed}.") for fixed in SCHEDULE_KEYS):
            raise ConfigError(f"{key}: a replay follows the source run's schedule, which fixes "
                              f"{', '.join(SCHEDULE_KEYS[:3])}")
    update = {**overrides, "name": f"{source.name}_replay", "replay_of": str(source_root),
              "evolution.generations": schedule.steps[-1].generation + 1, "extensions": []}
    return anchored(build_config(source.model_dump(mode="json"), update))


def warn_unlearnable(schedule: LossSchedule, num_classes: int | None) -> None:
    """One warning line when steps of ``schedule`` fail the learnability check for another number of classes."""
    if num_classes is None or num_classes == schedule.num_classes:
        return
    failing = schedule.unlearnable_steps(num_classes)
    if failing:
        logger.warning("%d of %d steps of the schedule (found with %s classes) fail the learnability check for "
                       "%d classes: %s", len(failing), len(schedule.steps), schedule.num_classes, num_classes,
                       ", ".join(step.uid for step in failing))


def replay(source_dir: Path, run_dir: Path, observer: Observer | None = None, overwrite: bool = False,
           overrides: Mapping[str, Any] = {}) -> RunSummary:
    """Replay the best lineage of the run in ``source_dir`` into a new run directory ``run_dir``.

    ``overrides`` (dotted config keys) train it on another model or dataset; a key the
    schedule fixes (``SCHEDULE_KEYS``) is a one-line error.
    """
    source_layout, layout = RunLayout.at(source_dir), RunLayout.at(run_dir)
    if not source_layout.config.exists():
        raise RunDirError(f"{source_dir} holds no epbt-deap run (no {source_layout.config.name})")
    if layout.root.resolve() == source_layout.root.resolve():
        raise RunDirError(f"{run_dir} is the run to replay: give the replay another --run-dir")
    schedule, source = LossSchedule.with_config(source_dir)
    config = replay_config(source, source_layout.root, schedule, overrides)
    plan = RunPlan.of(config)
    check_new_run_dir(layout, overwrite)
    splits = load_data(config)
    plan = plan.for_data(splits)
    warn_unlearnable(schedule, splits.num_classes)
    with locked(layout):
        prepare_run_dir(layout, config, overwrite, splits)
        seed_everything(config.seed)
        logger.info("replaying %d steps of %s's best lineage", len(schedule.steps), source_dir)
        return replay_schedule(plan, layout, splits, schedule, observer)


def replay_schedule(plan: RunPlan, layout: RunLayout, splits: ImageSplits, schedule: LossSchedule,
                    observer: Observer | None) -> RunSummary:
    """Train one fresh model on ``schedule``'s steps (:func:`eaSchedule`), recording each as a generation."""
    config, space = plan.config, plan.space
    halloffame = BestHallOfFame(1, similar=same_uid)
    steps = [(step.generation, [step.genes[name] for name in space.names]) for step in schedule.steps]
    stats = PopulationStatistics(config.train.epochs_per_generation)
    with (evaluating(plan, layout, splits, observer, "replay", max_workers=1),  # one model: one worker
          recording(layout, space, halloffame, observer) as recorder):
        _, logbook = eaSchedule(Individual(), plan.toolbox, steps, stats, halloffame, recorder)
    return summarize(layout.root, logbook, halloffame)
