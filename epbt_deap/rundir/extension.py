"""Longer runs: ``epbt-deap resume RUN_DIR --generations N`` continues a run to N generations in all.

Of a run's settings only the learning-rate milestones count epochs on the run's clock
(generation x epochs per generation), so they are the one setting an extension must
revisit: milestones set for 200 epochs would train epochs 200 to 399 of a doubled run at
the last, decayed rate. An extension therefore needs them given again (the same list
keeps them), and the milestones before the epochs already trained must stay as they were,
since those epochs trained with them. Everything else holds for any length.
"""
from __future__ import annotations

from collections.abc import Sequence

from epbt_deap.config import Config, ConfigError, Extension, build_config
from epbt_deap.rundir.layout import utc_now


def extended(config: Config, completed: int, generations: int | None = None,
             lr_milestones: Sequence[int] | None = None) -> Config:
    """``config`` continued to ``generations`` in all with ``lr_milestones``, the change recorded
    in ``extensions``; ``config`` itself when neither changes. ``completed``: generations done.

    Raises a one-line ConfigError for a smaller total, for an extension without milestones,
    for milestones that differ on the epochs already trained, and for new milestones on a
    finished run that is not extended.
    """
    total, epochs_per_generation = config.evolution.generations, config.train.epochs_per_generation
    before = list(config.train.lr_milestones)
    overrides = {"evolution.generations": total if generations is None else generations}
    if lr_milestones is not None:
        overrides["train.lr_milestones"] = lr_milestones
    longer = build_config(config.model_dump(mode="json"), overrides)  # a one-line error for a bad value
    generations = longer.evolution.generations
    if generations < total:
        raise ConfigError(f"--generations {generations}: the run is set to {total} generations already; "
                          "an extension gives a larger total")
    if generations > total and lr_milestones is None:
        raise ConfigError(f"--generations {generations}: the learning-rate milestones {before} are epochs on the run's "
                          f"clock, set for {total} generations x {epochs_per_generation} epochs; give the ones for "
                          f"{generations * epochs_per_generation} epochs with --set train.lr_milestones=[...] "
                          "(the same list keeps them)")
    after = list(longer.train.lr_milestones)
    if generations == total and after == before:
        return config
    if generations == total and completed >= total:
        raise ConfigError(f"train.lr_milestones: the run has finished its {total} generations, so new milestones "
                          "would change nothing it trains; give a larger --generations to extend it")
    trained = completed * epochs_per_generation
    kept, changed = ([m for m in sorted(milestones) if m < trained] for milestones in (before, after))
    if kept != changed:
        raise ConfigError(f"train.lr_milestones: the run has trained {trained} epochs with milestones {kept} before "
                          f"epoch {trained}; those must stay (got {changed})")
    record = Extension(after_generation=completed - 1, generations_before=total, generations=generations,
                       lr_milestones_before=before, lr_milestones=after, time=utc_now())
    return longer.model_copy(update={"extensions": [*config.extensions, record]})
