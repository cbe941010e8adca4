"""The evolution's defaults: the paper's operators and rates, and the measured choices (docs/results.md).

They live beside the EA so that it needs nothing of the config layer; the config's ``evolution.*``
defaults are these values, so the Python API and a YAML file start from the same run.
"""
from __future__ import annotations

from types import MappingProxyType

#: The operators, each a spec ``{"name": ..., **arguments}``: tournament of 2, multiplicative Gaussian with reset,
#: uniform crossover (Algorithm 1 of Liang, Gonzalez & Miikkulainen).
SELECT = MappingProxyType({"name": "selTournament", "tournsize": 2})
MUTATE = MappingProxyType({"name": "mutMultiplicativeGaussian", "sigma": 0.2, "indpb": 1.0, "reset_prob": 0.05})
MATE = MappingProxyType({"name": "cxUniform", "indpb": 0.5})
OPERATORS = MappingProxyType({"select": SELECT, "mutate": MUTATE, "mate": MATE})
CXPB = 1.0  # every child is crossed
MUTPB = 1.0  # and mutated
ELITES_TRAIN = True  # elites train every generation too, as copies with their own uid
TRUNCATION = 0.25  # PBT: the fraction copied from the top over the bottom
PARTNER_CHOICES = ("population", "parents")
PARTNERS = "population"  # a child is crossed with any other member of the population
REPAIR_TRIES = 0  # a child whose loss fails the learnability check is kept as it is
INITS = ("uniform", "learnable")
INIT = "learnable"  # initial theta that fail the learnability check are drawn again
