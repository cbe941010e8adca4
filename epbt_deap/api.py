"""The Python entry point, for notebooks and scripts: ``evolve``, ``resume`` and ``load_run`` return a :class:`Run`.

    import epbt_deap
    run = epbt_deap.evolve("quickstart", evolution={"generations": 2})
    run.best_test, run.best_genes, run.schedule

The progress bar shows in Jupyter as in a terminal (``tqdm.auto``); the library prints
nothing else (it logs).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from epbt_deap.config import Config, build_config, load_config
from epbt_deap.errors import RunDirError
from epbt_deap.progress import GenerationProgress
from epbt_deap.rundir.layout import RunLayout
from epbt_deap.rundir.logs import best_ancestry, read_run_logs

if TYPE_CHECKING:  # torch: imported with the schedule, not with the API
    from epbt_deap.schedule import LossSchedule


@dataclass(frozen=True)
class Run:
    """A run directory read back: its config, logs and best individual (by validation accuracy)."""

    run_dir: Path
    config: Config
    logbook: list[dict[str, Any]]
    lineage: list[dict[str, Any]]

    @cached_property
    def best(self) -> dict[str, Any]:
        """The best individual's lineage row (uid, genes, fitness, test_accuracy, measures), found once."""
        chain = best_ancestry(self.lineage)
        if not chain:
            raise RunDirError(f"{self.run_dir}: no individual in its lineage (no lineage.jsonl, or an empty one)")
        return chain[-1]

    @property
    def best_uid(self) -> str:
        return self.best["uid"]

    @property
    def best_genes(self) -> dict[str, float]:
        """The best individual's decoded genes (theta_0 .. theta_7 and any others)."""
        return dict(self.best["genes"])

    @property
    def best_validation(self) -> float | None:
        return self.best["fitness"]

    @property
    def best_test(self) -> float | None:
        return self.best.get("test_accuracy")

    @property
    def schedule(self) -> LossSchedule:
        """The best lineage's :class:`~epbt_deap.schedule.LossSchedule` (loss and genes, epoch by epoch)."""
        from epbt_deap.schedule import LossSchedule

        return LossSchedule.from_run(self.run_dir)


def load_run(run_dir: str | Path) -> Run:
    """The run in ``run_dir``, from its files alone (finished or not: a half-written last line is left out)."""
    layout, logs = RunLayout.at(run_dir), read_run_logs(run_dir, live=True)
    return Run(layout.root, build_config(logs.config), logs.logbook, logs.lineage)


def dotted(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"evolution": {"generations": 2}}`` as ``{"evolution.generations": 2}``, as ``--set`` takes them: an
    operator that names a new operator and the genes and model arguments stay whole, an operator's other
    arguments (``{"mutate": {"sigma": 0.3}}``) change that argument alone."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and not (name in WHOLE_VALUES or (name in OPERATOR_KEYS and "name" in value)):
            flat.update(dotted(value, f"{name}."))
        else:
            flat[name] = value
    return flat


WHOLE_VALUES = ("evolution.genes", "train.model_args")
OPERATOR_KEYS = ("evolution.select", "evolution.mutate", "evolution.mate")


def config_of(config: str | Path | Mapping[str, Any] | Config, overrides: Mapping[str, Any]) -> Config:
    """A config from a YAML path, a packaged config's name, a mapping or a Config, with nested ``overrides``."""
    flat = dotted(overrides)
    if isinstance(config, Config):
        return build_config(config.model_dump(mode="json"), flat)
    if isinstance(config, Mapping):
        return build_config(config, flat)
    return load_config(Path(config), flat)


def evolve(config: str | Path | Mapping[str, Any] | Config = "quickstart", run_dir: str | Path | None = None,
           overwrite: bool = False, progress: bool = True, **overrides: Any) -> Run:
    """Run EPBT (or a baseline) as ``config`` says, with ``overrides`` by section, e.g.
    ``evolve("quickstart", evolution={"generations": 2}, seed=3)``; the run directory defaults
    to ``runs/<name>``. Returns the finished :class:`Run`."""
    from epbt_deap.run import run

    resolved = config_of(config, overrides)
    target = Path(run_dir) if run_dir is not None else Path("runs") / resolved.name
    run(resolved, target, GenerationProgress() if progress else None, overwrite=overwrite)
    return load_run(target)


def resume(run_dir: str | Path, generations: int | None = None, lr_milestones: Sequence[int] | None = None,
           progress: bool = True) -> Run:
    """Continue the run in ``run_dir`` (or extend it to ``generations``, with ``lr_milestones``)."""
    from epbt_deap.run import resume as resume_run

    resume_run(Path(run_dir), GenerationProgress() if progress else None, generations, lr_milestones)
    return load_run(run_dir)
