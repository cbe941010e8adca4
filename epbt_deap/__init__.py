"""epbt-deap: Enhanced Population-Based Training of TaylorGLO losses and hyperparameters.

The public names below are imported lazily, so that ``import epbt_deap`` (and the
command line's ``--help``) stays fast; torch loads only when a torch part is used.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "taylorglo_loss": "epbt_deap.execution.taylorglo",
    "Gene": "epbt_deap.evolution.space",
    "SearchSpace": "epbt_deap.evolution.space",
    "FitnessMax": "epbt_deap.evolution.individual",
    "Individual": "epbt_deap.evolution.individual",
    "mutMultiplicativeGaussian": "epbt_deap.evolution.operators",
    "make_toolbox": "epbt_deap.evolution.toolbox",
    "eaElitist": "epbt_deap.evolution.algorithms",
    "Config": "epbt_deap.config",
    "load_config": "epbt_deap.config",
    "LossSchedule": "epbt_deap.schedule",
    "register_model": "epbt_deap.models",
    "evolve": "epbt_deap.api",
    "resume": "epbt_deap.api",
    "load_run": "epbt_deap.api",
    "Run": "epbt_deap.api",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'epbt_deap' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
