"""``epbt-deap show``: where a run stands, from its files alone.

It reads only what the run writes (config, logbook, lineage, provenance), leaving out a
half-written last line, so it works while the run is in progress, from another terminal
or another machine that sees the run directory.
"""
from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from epbt_deap.errors import RunDirError
from epbt_deap.evolution.eq1 import binary_loss_formula
from epbt_deap.evolution.space import PARAMETER_NAMES
from epbt_deap.rundir.layout import RunLayout
from epbt_deap.rundir.lock import Holder, describe_holder, lock_holder
from epbt_deap.rundir.logs import RunLogs, best_ancestry, read_provenance, read_run_logs
from epbt_deap.text import accuracy_text

RECENT_GENERATIONS = 5  # the estimate to finish averages the latest generations of the latest start
FAILURES_LISTED = 5


@dataclass(frozen=True)
class RunView:
    """One run's progress as its files tell it at ``now``."""

    logs: RunLogs
    starts: list[datetime.datetime]  # every start and resume, oldest first
    now: datetime.datetime
    held: bool | None = False  # whether a live process holds the run's lock (None: this file system cannot tell)
    holder: Holder | None = None
    provenance_error: str | None = None  # why provenance.json could not be read (its starts are then unknown)

    @property
    def epochs(self) -> int:
        return int(self.logs.logbook[-1]["epochs"]) if self.logs.logbook else 0

    @property
    def total_epochs(self) -> int:
        return self.logs.generations * int(self.logs.setting("train.epochs_per_generation") or 1)

    @cached_property
    def row_times(self) -> list[datetime.datetime | None]:
        """When each logbook row's generation finished (None in logbooks written before timestamps)."""
        logbook = RunLayout.at(self.logs.run_dir).logbook
        return [_parse_time(row.get("time"), f"{logbook}, generation {row['gen']}") for row in self.logs.logbook]

    @property
    def stopped(self) -> bool:
        """Not finished, and no live process holds its lock: nothing is training it."""
        return not self.logs.finished and self.held is False

    @property
    def in_progress(self) -> bool:
        return not (self.logs.finished or self.stopped)

    @property
    def elapsed(self) -> datetime.timedelta | None:
        """Time at work: from each start (or resume) to the last generation it completed, and from the latest
        to now while the run is in progress. The idle time between a stop and the next resume is left out."""
        last = self.row_times[-1] if self.row_times else None
        if not self.starts or (last is None and not self.in_progress):
            return None
        total = datetime.timedelta(0)
        for start, next_start in zip(self.starts, [*self.starts[1:], None]):
            done = self.times_between(start, next_start)
            end = self.now if next_start is None and self.in_progress else done[-1] if done else start
            total += end - start
        return total

    def times_between(self, start: datetime.datetime | None, end: datetime.datetime | None) -> list[datetime.datetime]:
        """When each generation that finished from ``start`` (None: the first) until ``end`` (None: for good)
        finished."""
        return [time for time in self.row_times
                if time is not None and (start is None or start <= time) and (end is None or time < end)]

    @property
    def seconds_per_generation(self) -> float | None:
        """The mean duration of the latest generations since the latest start (or resume)."""
        latest_start = self.starts[-1:]
        marks = latest_start + self.times_between(latest_start[0] if latest_start else None, None)
        durations = [(end - begin).total_seconds() for begin, end in zip(marks, marks[1:])][-RECENT_GENERATIONS:]
        return sum(durations) / len(durations) if durations else None

    @property
    def remaining(self) -> datetime.timedelta | None:
        """The estimated time to finish, for a run not finished (None when there is nothing to go on)."""
        pace = self.seconds_per_generation
        if not self.in_progress or pace is None:
            return None
        return datetime.timedelta(seconds=pace * (self.logs.generations - 1 - self.logs.generation))

    @property
    def best(self) -> dict[str, Any] | None:
        """The lineage row of the best individual (the latest one of a run without validation)."""
        chain = best_ancestry(self.logs.lineage)
        return chain[-1] if chain else None

    @property
    def failures(self) -> list[dict[str, Any]]:
        """The lineage rows of evaluations that failed or diverged."""
        return [row for row in self.logs.lineage if row.get("status", "ok") != "ok"]


def _parse_time(text: Any, where: str) -> datetime.datetime | None:
    """An ISO 8601 time the run wrote (UTC where it names no zone); None for none, a RunDirError for a damaged one."""
    if text is None:
        return None
    try:
        time = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise RunDirError(f"{where}: {text!r} is not a time (ISO 8601)") from None
    return time if time.tzinfo else time.replace(tzinfo=datetime.timezone.utc)


def read_view(run_dir: str | Path, now: datetime.datetime | None = None) -> RunView:
    """The run in ``run_dir`` as its files stand now; raises a one-line RunDirError for a folder without a run."""
    logs = read_run_logs(run_dir, live=True)
    layout = RunLayout.at(run_dir)
    try:  # a damaged provenance.json costs the timing only: resume keeps it aside and starts a new one
        entries = read_provenance(layout)
        starts = sorted(_parse_time(entry["started"], str(layout.provenance))
                        for entry in entries if entry.get("started"))
        problem = None
    except RunDirError as error:
        starts, problem = [], str(error)
    held, holder = lock_holder(layout.root)
    return RunView(logs, starts, now or datetime.datetime.now(datetime.timezone.utc), held, holder, problem)


def duration(span: datetime.timedelta) -> str:
    """``2h 05m``, ``3m 07s`` or ``12 s``."""
    seconds = max(0, round(span.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds} s"


def describe(view: RunView) -> list[str]:
    """The lines ``epbt-deap show`` prints."""
    logs = view.logs
    if view.held:
        state = f"running, {describe_holder(view.holder)}"
    elif view.logs.finished:
        state = "finished"
    elif logs.setting("replay_of") is not None:
        state = ("stopped before its end (a replay cannot be resumed: replay again with --overwrite)"
                 if view.held is False else "not finished (in progress, or stopped: replay again with --overwrite)")
    elif view.held is False:
        state = "stopped before its end (no process holds its lock): epbt-deap resume continues it"
    else:
        state = "not finished (in progress, or stopped: resume continues it; this file system has no locks to tell)"
    done = f"0 to {view.logs.generation}" if view.logs.generation >= 0 else "generation 0 is training, or was stopped"
    lines = [f"run {logs.name} in {logs.run_dir}: {state}",
             f"generations: {view.logs.generation + 1} of {view.logs.generations} done ({done}), "
             f"epoch {view.epochs} of {view.total_epochs} on the run's clock"]
    lines += timing_lines(view)
    lines += best_lines(view, logs.setting("train.loss") or "taylorglo",
                        logs.setting("train.taylorglo_scale") or 1.0)
    lines += failure_lines(view.failures, len(logs.lineage))
    return lines


def timing_lines(view: RunView) -> list[str]:
    """Elapsed time, time since the last generation and the estimate to finish."""
    if view.elapsed is None:
        reason = (view.provenance_error if view.provenance_error else "no provenance.json" if not view.starts
                  else "stopped before generation 0 ended"
                  if view.stopped and not view.row_times else "this run's logbook has no timestamps")
        return [f"elapsed: unknown ({reason})"]
    since = f"the start at {view.starts[0]:%Y-%m-%d %H:%M:%S} UTC"
    sittings = len(view.starts)
    if sittings > 1:
        since += f", in {sittings} sittings (the time between them not counted)"
    lines = [f"ran {duration(view.elapsed)} from {since} to its last completed generation" if view.stopped
             else f"elapsed {duration(view.elapsed)} since {since}"]
    last = view.row_times[-1] if view.row_times else None
    if not view.logs.finished and last is not None:
        lines.append(f"last generation finished {duration(view.now - last)} ago")
        remaining = view.remaining
        if remaining is not None:
            lines.append(f"about {duration(remaining)} to finish, if it is running "
                         f"({duration(datetime.timedelta(seconds=view.seconds_per_generation))} a generation)")
    return lines


def best_lines(view: RunView, loss: str, scale: float) -> list[str]:
    """The best individual: accuracies, genes and its loss (times ``scale``) as a formula."""
    best = view.best
    if best is None:
        return ["best: none yet (no evaluation has succeeded)"]
    lines = [f"best {best['uid']} (generation {best['generation']}, {best['epochs']} epochs trained): "
             f"validation {accuracy_text(best['fitness'], 'n/a (no validation set)')}, "
             f"test {accuracy_text(best.get('test_accuracy'))}"]
    genes = best["genes"]
    if genes:
        lines.append("genes: " + ", ".join(f"{name} {value:.4g}" for name, value in genes.items()))
    if loss == "taylorglo" and all(name in genes for name in PARAMETER_NAMES):
        formula = binary_loss_formula([genes[name] for name in PARAMETER_NAMES], scale=scale)
        lines.append(f"loss, binary view (y: predicted probability of the true class, shifted to 0 at y = 1): "
                     f"{formula}")
    else:
        lines.append(f"loss: {loss}")
    return lines


def failure_lines(failures: list[dict[str, Any]], evaluations: int) -> list[str]:
    """How many evaluations failed or diverged, and the latest of them with their reasons."""
    counts = Counter(row["status"] for row in failures)
    lines = [f"evaluations: {evaluations - len(failures)} ok, {counts['diverged']} diverged, "
             f"{counts['failed']} failed"]
    for row in failures[-FAILURES_LISTED:]:
        detail = f": {row['detail']}" if row.get("detail") else ""
        lines.append(f"  {row['uid']} {row['status']}{detail}")
    return lines
