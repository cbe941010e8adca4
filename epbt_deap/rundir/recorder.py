"""What a run writes after each generation: logbook, lineage, best model, state; disk kept bounded."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from deap import tools

from epbt_deap.errors import write_errors_named
from epbt_deap.evolution.space import SearchSpace
from epbt_deap.execution.protocol import Observer
from epbt_deap.rundir.checkpoints import (CheckpointError, load_checkpoint, load_pickle, remove_unreferenced,
                                          save_checkpoint, save_pickle, write_atomically)
from epbt_deap.rundir.layout import RunLayout, utc_now
from epbt_deap.rundir.logs import read_jsonl
from epbt_deap.rundir.tensorboard import TensorBoardScalars

logger = logging.getLogger("epbt_deap")


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` as JSON lines, on disk before the state that counts them is (``os.fsync``); a killed
    or failed append leaves a partial last line, which readers skip and a resume rewinds."""
    with write_errors_named(path), open(path, "a") as stream:
        for row in rows:
            stream.write(json.dumps(row) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def lineage_row(individual: Any, space: SearchSpace) -> dict[str, Any]:
    return {
        "uid": individual.uid,
        "generation": individual.generation,
        "parent": individual.parent_uid,
        "partner": individual.partner_uid,
        "genes": space.decode(individual),
        "fitness": individual.validation,
        "epochs": individual.epochs,
        **individual.metrics,
    }


@dataclass
class RunState:
    """Everything needed to continue a run after its last completed generation."""

    generation: int
    population: list
    logbook: tools.Logbook
    halloffame: tools.HallOfFame
    rng: dict[str, Any]

    @staticmethod
    def capture_rng() -> dict[str, Any]:
        return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}

    def restore_rng(self) -> None:
        random.setstate(self.rng["python"])
        np.random.set_state(self.rng["numpy"])
        torch.set_rng_state(self.rng["torch"])


def load_state(layout: RunLayout) -> RunState | None:
    """The saved state of the run, or None when no generation has completed yet.

    Checkpoint paths come back relative to the run directory (those of a state written
    before they were stored so are mapped), and every one is checked to load.
    """
    if not layout.state.exists():
        return None
    state = load_pickle(layout.state)
    if not isinstance(state, RunState):
        raise CheckpointError(f"{layout.state} is not an epbt-deap run state")
    individuals = [ind for ind in [*state.population, *state.halloffame] if ind.checkpoint]
    for individual in individuals:
        individual.checkpoint = RunLayout.stored_checkpoint(individual.checkpoint)
    for checkpoint in {individual.checkpoint for individual in individuals}:
        load_checkpoint(layout.resolve(checkpoint))  # raises a one-line CheckpointError if missing or corrupt
    return state


def rewind_logs(layout: RunLayout, state: RunState) -> None:
    """Drop log rows written after ``state`` was saved (a run killed mid-callback)."""
    rows = [json.dumps(row) + "\n" for row in state.logbook]
    write_atomically(layout.logbook, "".join(rows).encode())
    lineage = read_jsonl(layout.lineage, {}, live=True) if layout.lineage.exists() else []  # a half-written row too
    kept = [json.dumps(row) + "\n" for row in lineage if row["generation"] <= state.generation]
    write_atomically(layout.lineage, "".join(kept).encode())


@contextlib.contextmanager
def recording(layout: RunLayout, space: SearchSpace, halloffame: tools.HallOfFame,
              observer: Observer | None) -> Iterator[RunRecorder]:
    """The loop's :class:`RunRecorder`, its TensorBoard file closed when the loop ends, however it ends
    (a notebook that runs many times keeps no open file or writer thread)."""
    tensorboard = TensorBoardScalars(layout.tensorboard)
    try:
        yield RunRecorder(layout, space, halloffame, tensorboard, observer)
    finally:
        tensorboard.close()


@dataclass
class RunRecorder:
    """The EA loop's per-generation callback: writes every file of the run directory."""

    layout: RunLayout
    space: SearchSpace
    halloffame: tools.HallOfFame
    tensorboard: TensorBoardScalars  # does nothing without tensorboard installed
    observer: Observer | None = None
    best_uid: str | None = field(default=None, init=False)  # whose best.pt this recorder wrote last

    def __call__(self, generation: int, population: list, evaluated: list, logbook: tools.Logbook) -> None:
        logbook[-1]["time"] = utc_now()  # when the generation finished; kept in the state's logbook too, so a resume rewrites it
        append_jsonl(self.layout.lineage, [lineage_row(ind, self.space) for ind in evaluated])
        append_jsonl(self.layout.logbook, [logbook[-1]])
        self.save_best()
        # before the state: a kill in between repeats the generation's same scalars
        self.tensorboard.write(logbook[-1], self.space.decode(self.halloffame[0]))
        state = RunState(generation, population, logbook, self.halloffame, RunState.capture_rng())
        save_pickle(state, self.layout.state)
        live = [ind.checkpoint for ind in [*population, *self.halloffame] if ind.checkpoint]
        remove_unreferenced(self.layout.checkpoints, [self.layout.resolve(checkpoint) for checkpoint in live])
        if self.observer is not None:
            self.observer.generation_finished(dict(logbook[-1]))

    def save_best(self) -> None:
        """Write ``best.pt`` (weights and genes) when the hall of fame's leader is new."""
        best = self.halloffame[0]
        if best.checkpoint is None or best.uid == self.best_uid:
            return
        payload = load_checkpoint(self.layout.resolve(best.checkpoint))
        payload.update(uid=best.uid, genes=self.space.decode(best), fitness=best.validation,
                       test_accuracy=best.metrics.get("test_accuracy"), generation=best.generation)
        save_checkpoint(payload, self.layout.best)
        self.best_uid = best.uid
        logger.info("new best %s: fitness %s", best.uid, best.validation)
