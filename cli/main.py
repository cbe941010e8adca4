"""The ``epbt-deap`` command line. Each command validates its input, then calls the library."""
from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from epbt_deap.catalog import DATASETS, MODEL_NAMES
from epbt_deap.config import (BACKENDS, TRAINERS, Config, config_summary, default_of, describe, load_config,
                              named_configs, parse_assignment)
from epbt_deap.errors import EpbtError
from epbt_deap.progress import GenerationProgress
from epbt_deap.rundir.layout import RunLayout
from epbt_deap.text import accuracy_text

USER_ERROR_EXIT = 2

# Options that are shorthands for config keys.
OPTION_KEYS = {
    "dataset": "data.dataset",
    "data_dir": "data.dir",
    "model": "train.model",
    "population": "evolution.population",
    "elites": "evolution.elites",
    "generations": "evolution.generations",
    "epochs_per_generation": "train.epochs_per_generation",
    "trainer": "train.trainer",
    "workers_per_gpu": "resources.workers_per_gpu",
    "cpu_workers": "resources.cpu_workers",
    "device": "resources.device",
    "backend": "resources.backend",
    "ray_address": "resources.ray_address",
    "seed": "seed",
}


def key_help(option: str) -> str:
    """The help of a shorthand option: its config key's description and default, from the config models."""
    key = OPTION_KEYS[option]
    return f"{describe(key)} [{key}, default {default_of(key)}]"


def fail(message: str, code: int = USER_ERROR_EXIT) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def overrides_from(options: dict[str, Any], assignments: tuple[str, ...]) -> dict[str, Any]:
    """Config overrides from shorthand options (those given) and ``--set key=value`` pairs."""
    overrides = {OPTION_KEYS[name]: value for name, value in options.items() if value is not None}
    if "data.dir" in overrides:
        overrides["data.dir"] = str(overrides["data.dir"])
    overrides.update(parse_assignment(text) for text in assignments)
    return overrides


class ProgressObserver(GenerationProgress):
    """The library's progress bar on stderr (none where stderr is not a terminal), and one summary line
    after each generation."""

    def __init__(self) -> None:
        super().__init__("gen", file=sys.stderr, disable=None)

    def generation_finished(self, row: dict[str, Any]) -> None:
        super().generation_finished(row)
        click.echo(f"gen {row['gen']:>3} | evals {row['evals']:>3} | best {accuracy_text(row['max'])} | "
                   f"mean {accuracy_text(row['avg'])} | test of best {accuracy_text(row['best_test'])} | "
                   f"epoch {row['epochs']}")


STOP_HINT = "epbt_deap.stop_hint"  # the click context's meta key: what to do after the command stops


def config_stamp(run_dir: Path) -> tuple[int, int] | None:
    """The run directory's config.yaml as (inode, modification time in ns), None without one.

    Writing a config replaces the file in one rename, so any write changes the stamp."""
    try:
        status = RunLayout.at(run_dir).config.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns


def stop_hint(run_dir: Path, resumable: bool, replaced: tuple[int, int] | None = None) -> str:
    """What to do after a stop: resume a run directory that holds a run, else run the command again.

    ``replaced``: the stamp of the config of the run that this command replaces (``evolve
    --overwrite``); while the config is that one, the new run has not started."""
    layout = RunLayout.at(run_dir)
    if replaced is not None and config_stamp(run_dir) == replaced:
        return f"the run in {run_dir} was not replaced yet: run the same command again"
    if not layout.config.exists():
        return f"nothing was written to {run_dir} yet: run the same command again"
    if not resumable:
        return "a replay cannot be resumed: run the same command again with --overwrite"
    if not layout.state.exists():
        return f"no generation had completed; continue with: epbt-deap resume {run_dir} (it starts generation 0 again)"
    return f"the completed generations are kept; continue with: epbt-deap resume {run_dir}"


class OneLineErrors(click.Group):
    """Every user-facing error as one line and its exit code, in one place: usage mistakes (a wrong
    option or value, exit 2) and any :class:`EpbtError` a command raises (its own exit code, with
    how to resume where the run can continue)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EpbtError as error:
            hint = ctx.meta.get(STOP_HINT)
            fail(f"{error}; {hint()}" if error.resumable and hint is not None else str(error), error.exit_code)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as help_request:
            click.echo(help_request.format_message())
        except click.UsageError as error:
            fail(error.format_message())
        except click.Abort:
            fail("interrupted", code=130)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log progress and debug details to stderr.")
def main(verbose: bool) -> None:
    """EPBT: evolve TaylorGLO loss functions and hyperparameters while a population trains."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="YAML config file, or the name of a packaged config (see `epbt-deap configs`).")
@click.option("--dataset", help=key_help("dataset"))  # a built-in name or module:loader, checked by the config
@click.option("--data-dir", type=click.Path(path_type=Path), help=key_help("data_dir"))
@click.option("--model", help=key_help("model"))
@click.option("--population", type=int, help=key_help("population"))
@click.option("--elites", type=int, help=key_help("elites"))
@click.option("--generations", type=int, help=key_help("generations"))
@click.option("--epochs-per-generation", type=int, help=key_help("epochs_per_generation"))
@click.option("--trainer", type=click.Choice(TRAINERS), help=key_help("trainer"))
@click.option("--device", help=key_help("device"))
@click.option("--workers-per-gpu", type=int, help=key_help("workers_per_gpu"))
@click.option("--cpu-workers", type=int, help=key_help("cpu_workers"))
@click.option("--backend", type=click.Choice(BACKENDS), help=key_help("backend"))
@click.option("--ray-address", help=key_help("ray_address"))
@click.option("--seed", type=int, help=key_help("seed"))
@click.option("--run-dir", type=click.Path(path_type=Path), help="Output folder (default runs/<name>).")
@click.option("--overwrite", is_flag=True, help="Replace the run in --run-dir (any other folder is refused).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override any config key, e.g. --set evolution.mutate.sigma=0.3 (repeatable).")
def evolve(config_path: Path | None, run_dir: Path | None, overwrite: bool,
           assignments: tuple[str, ...], **options: Any) -> None:
    """Run EPBT. Without --config it runs the paper's CIFAR-10 / ResNet-32 setup with the measured defaults
    (elites retrain, learnable initial losses); --config cifar10_resnet32_epbt runs Algorithm 1 as printed."""
    config = load_config(config_path, overrides_from(options, assignments))
    run_evolution(config, run_dir or Path("runs") / config.name, overwrite)


@main.command()
def configs() -> None:
    """List the packaged configs, usable by name: --config quickstart."""
    known = named_configs()
    width = max(map(len, known), default=0)
    for name, path in known.items():
        click.echo(f"{name:<{width}}  {config_summary(path)}")


RESUME_KEYS = ("train.lr_milestones",)  # the settings a resume may change: those on the run's clock


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--generations", type=int,
              help="Extend the run to this many generations in all (generation 0 included); needs --set "
                   "train.lr_milestones=[...] for the longer clock (the same list keeps them).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help=f"Change {', '.join(RESUME_KEYS)} (epochs on the run's clock), e.g. with --generations.")
def resume(run_dir: Path, generations: int | None, assignments: tuple[str, ...]) -> None:
    """Continue an interrupted run from its last completed generation, or extend a run with --generations."""
    from epbt_deap.run import resume as resume_run

    changes = dict(parse_assignment(text) for text in assignments)
    for key in changes:
        if key not in RESUME_KEYS:
            fail(f"--set {key}: resume can change only {', '.join(RESUME_KEYS)}; the rest is what the run ran with")
    milestones = changes.get("train.lr_milestones")
    execute(lambda observer: resume_run(run_dir, observer, generations, milestones), run_dir)


@main.command()
@click.argument("source_dir", type=click.Path(path_type=Path))
@click.option("--model", help=f"Train another network on the schedule: one of {', '.join(MODEL_NAMES)}, "
                              "or an import path, module:factory.")
@click.option("--dataset", help=f"Train on another dataset: one of {', '.join(DATASETS)}, or an import path, "
                                "module:loader.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Where that dataset lives (or is downloaded to).")
@click.option("--run-dir", type=click.Path(path_type=Path), help="Output folder (default <SOURCE_DIR>_replay).")
@click.option("--overwrite", is_flag=True, help="Replace the run in --run-dir (any other folder is refused).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a config key of the replay, e.g. --set train.lr_milestones=[60,120] (repeatable).")
def replay(source_dir: Path, run_dir: Path | None, overwrite: bool, assignments: tuple[str, ...],
           **options: Any) -> None:
    """Train a fresh model, of SOURCE_DIR's or another network and dataset, on the gene schedule of
    the best lineage of SOURCE_DIR."""
    from epbt_deap.replay import replay as replay_run

    overrides = overrides_from(options, assignments)
    source = RunLayout.at(source_dir).root  # absolute: "." has no name to add _replay to
    if run_dir is None and not source.name:
        fail(f"{source_dir} is not a run directory")
    target = run_dir or source.with_name(f"{source.name}_replay")
    execute(lambda observer: replay_run(source_dir, target, observer, overwrite=overwrite, overrides=overrides),
            target, resumable=False)


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=Path("schedule.json"), show_default=True,
              help="The JSON file to write.")
def export(run_dir: Path, out_path: Path) -> None:
    """Write the best lineage's loss schedule of RUN_DIR as JSON, for any training loop."""
    from epbt_deap.schedule import LossSchedule

    schedule = LossSchedule.from_run(run_dir)
    schedule.save(out_path)
    click.echo(f"{len(schedule.steps)} steps, {schedule.epochs} epochs of {schedule.found_with.best_uid}'s "
               f"lineage written to {out_path}")
    if schedule.loss.name == "taylorglo":  # the same shifted binary view as `show` and loss_ancestry.png
        from epbt_deap.evolution.eq1 import binary_loss_formula

        click.echo("loss, binary view (y: predicted probability of the true class, shifted to 0 at y = 1):")
        for step in schedule.steps:
            formula = binary_loss_formula(schedule.theta_at(step.epoch), scale=schedule.loss.taylorglo_scale)
            click.echo(f"  epochs {step.epoch}-{step.epoch + step.epochs - 1} ({step.uid}): {formula}")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("report"), show_default=True,
              help="Folder for the tables (CSV) and figures (PNG).")
def report(run_dirs: tuple[Path, ...], out_dir: Path) -> None:
    """Tables 1 and 2 and the paper's figures from one or more run directories."""
    from epbt_deap.report.tables import format_table
    from epbt_deap.report.writer import write_report

    written = write_report(list(run_dirs), out_dir)
    click.echo("Final test accuracy (%), mean and standard deviation over runs:")
    click.echo(format_table(written.table1))
    click.echo("\nEpochs each method needs to exceed each baseline's final test accuracy:")
    click.echo(format_table(written.table2))
    click.echo(f"\nwritten to {out_dir}: " + ", ".join(written.files))


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def show(run_dir: Path) -> None:
    """Where the run in RUN_DIR stands, from its files alone (works while it runs, from any terminal)."""
    from epbt_deap.rundir.show import describe, read_view

    view = read_view(run_dir)
    click.echo("\n".join(describe(view)))


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that the run stops as on Ctrl-C.

    Like KeyboardInterrupt it is not an ``Exception``: nothing that handles a failed
    evaluation may mistake it for one.
    """


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def run_evolution(config: Config, run_dir: Path, overwrite: bool) -> None:
    from epbt_deap.run import run

    execute(lambda observer: run(config, run_dir, observer, overwrite=overwrite), run_dir, replaces=overwrite)


def execute(action: Callable[[ProgressObserver], Any], run_dir: Path, resumable: bool = True,
            replaces: bool = False) -> None:
    """Run ``action``, which writes ``run_dir`` (a new run there: ``replaces``); turn interruptions
    into one line, with what to do next, and an exit code (a user's mistake, any
    :class:`EpbtError`, becomes one in :class:`OneLineErrors`). Anything else is a bug, and keeps
    its traceback."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    hint = functools.partial(stop_hint, run_dir, resumable, config_stamp(run_dir) if replaces else None)
    previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[STOP_HINT] = hint  # for a resumable EpbtError
    try:
        with logging_redirect_tqdm():
            summary = action(ProgressObserver())
    except KeyboardInterrupt:
        fail(f"interrupted; {hint()}", code=130)
    except Terminated:
        fail(f"terminated; {hint()}", code=143)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    click.echo(f"best {summary.best_uid}: validation {accuracy_text(summary.best_fitness)}, "
               f"test {accuracy_text(summary.best_test_accuracy)}; run directory {summary.run_dir}")


if __name__ == "__main__":
    main()
