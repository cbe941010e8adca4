"""Replay: train a fresh model on the best lineage's schedule of genes, and nothing else.

EPBT's best model inherits weights along a chain of ancestors, each trained E epochs with
its own loss. Replaying that chain from a new initialisation, each step with the
ancestor's genes at the ancestor's place on the epoch clock (so the same learning-rate
step), tells whether the discovered *schedule* alone transfers.
"""
from __future__ import annotations

import logging
from pathlib import Path

from deap import tools

from epbt_deap.algorithms import evaluate_invalid, finish_generation
from epbt_deap.config import load_config
from epbt_deap.contract import Observer, RunLayout, best_ancestry, read_run_logs
from epbt_deap.errors import RunDirError
from epbt_deap.individual import Individual
from epbt_deap.provenance import provenance, record_provenance
from epbt_deap.recorder import RunRecorder
from epbt_deap.run import RunPlan, RunSummary, hall_of_fame, load_data, prepare_run_dir, seed_everything, summarize
from epbt_deap.statistics import PopulationStatistics

logger = logging.getLogger("epbt_deap")


def replay(source_dir: Path, run_dir: Path, observer: Observer | None = None, overwrite: bool = False) -> RunSummary:
    """Replay the best lineage of the run in ``source_dir`` into a new run directory ``run_dir``."""
    source_layout, layout = RunLayout.at(source_dir), RunLayout.at(run_dir)
    if not source_layout.config.exists():
        raise RunDirError(f"{source_dir} holds no epbt-deap run (no {source_layout.config.name})")
    source = load_config(source_layout.config)
    chain = best_ancestry(read_run_logs(source_dir).lineage)
    if not chain:
        raise RunDirError(f"{source_dir} has no evaluated individual to replay")
    config = source.model_copy(update={"name": f"{source.name}_replay", "replay_of": str(source_layout.root)})
    plan = RunPlan.of(config)
    splits = load_data(config)
    prepare_run_dir(layout, config, overwrite)
    seed_everything(config.seed)
    logger.info("replaying %d steps of %s's best lineage", len(chain), source_dir)

    toolbox, space = plan.toolbox, plan.space
    halloffame = hall_of_fame(config, 1)
    recorder = RunRecorder(layout, space, halloffame, observer)
    stats = PopulationStatistics(config.train.epochs_per_generation)
    logbook = tools.Logbook()
    replayed = Individual()
    with plan.pool(splits, max_workers=1) as pool:  # one model: one worker
        record_provenance(layout, provenance("replay", pool, config.resources.backend))
        toolbox.register("map", plan.evaluation_map(pool, layout, observer))
        for ancestor in chain:
            generation = ancestor["generation"]
            replayed[:] = [ancestor["genes"][name] for name in space.names]
            replayed.parent_uid, replayed.uid = replayed.uid, f"g{generation:03d}-replay"
            replayed.generation = generation
            del replayed.fitness.values
            evaluated = evaluate_invalid([replayed], toolbox)
            finish_generation(generation, [replayed], evaluated, logbook, stats, halloffame, recorder)
    return summarize(layout.root, logbook, halloffame)
