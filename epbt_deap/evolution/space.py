"""Search spaces: named genes with bounds, an initialisation range and a scale."""
from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Scale = Literal["linear", "log"]

#: The TaylorGLO parameters theta_0 .. theta_7 of Eq. 1, in the paper's order.
PARAMETER_NAMES = tuple(f"theta_{i}" for i in range(8))


@dataclass(frozen=True)
class Gene:
    """One hyperparameter: values stay in ``[low, high]``; new values come from the init range."""

    name: str
    low: float
    high: float
    init_low: float
    init_high: float
    scale: Scale = "linear"

    def __post_init__(self) -> None:
        if self.scale not in ("linear", "log"):
            raise ValueError(f"gene {self.name}: scale must be linear or log, got {self.scale!r}")
        if not all(map(math.isfinite, (self.low, self.high))):
            raise ValueError(f"gene {self.name}: bounds must be finite numbers, got [{self.low}, {self.high}]")
        if not self.low < self.high:
            raise ValueError(f"gene {self.name}: low ({self.low}) must be below high ({self.high})")
        if not self.low <= self.init_low <= self.init_high <= self.high:
            raise ValueError(
                f"gene {self.name}: init range [{self.init_low}, {self.init_high}] "
                f"must lie within [{self.low}, {self.high}]"
            )
        if self.scale == "log" and self.low <= 0:
            raise ValueError(f"gene {self.name}: a log-scale gene needs low > 0, got {self.low}")

    def sample(self, rng: random.Random | None = None) -> float:
        """A fresh value drawn uniformly (log-uniformly for log genes) from the init range."""
        rng = rng or random
        if self.scale == "log":
            return math.exp(rng.uniform(math.log(self.init_low), math.log(self.init_high)))
        return rng.uniform(self.init_low, self.init_high)

    def clip(self, value: float) -> float:
        return min(max(value, self.low), self.high)


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of genes; individuals are lists of floats in this order.

    It may be empty: a baseline that trains models without evolving anything.
    """

    genes: tuple[Gene, ...]

    def __post_init__(self) -> None:
        names = [gene.name for gene in self.genes]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate gene names: {', '.join(duplicates)}")

    @classmethod
    def taylorglo(
        cls,
        low: float = -10.0,
        high: float = 10.0,
        init_low: float | None = None,
        init_high: float | None = None,
        extra: Iterable[Gene] = (),
    ) -> SearchSpace:
        """The 8 TaylorGLO parameters (paper, Section 4.1: bounded and initialised in [-10, 10])."""
        init_low = low if init_low is None else init_low
        init_high = high if init_high is None else init_high
        thetas = tuple(Gene(name, low, high, init_low, init_high) for name in PARAMETER_NAMES)
        return cls(thetas + tuple(extra))

    def __len__(self) -> int:
        return len(self.genes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(gene.name for gene in self.genes)

    @property
    def lows(self) -> list[float]:
        return [gene.low for gene in self.genes]

    @property
    def highs(self) -> list[float]:
        return [gene.high for gene in self.genes]

    def sample(self, rng: random.Random | None = None) -> list[float]:
        return [gene.sample(rng) for gene in self.genes]

    def clip(self, values: list[float]) -> None:
        """Clip ``values`` to the bounds, in place."""
        for i, gene in enumerate(self.genes):
            values[i] = gene.clip(values[i])

    def decode(self, values: Sequence[float]) -> dict[str, float]:
        """Genes as a ``{name: value}`` dict."""
        return {gene.name: float(value) for gene, value in zip(self.genes, values)}
