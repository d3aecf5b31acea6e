"""One schedule: which steps are evaluated and when each probe runs (DESIGN.md)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from grokscope.spec import Spec

Cadence = Literal["every", "sparse", "final"] | list[int]


class ScheduleSpec(Spec):
    """Evaluation steps = log grid U linear grid U extra steps; ``sparse`` is a thinner copy."""

    log_points_per_decade: int = Field(20, ge=1)
    """Points per decade of the log grid that starts at step 1 (step 0 is always included)."""
    linear_points: int = Field(100, ge=1)
    """The linear grid evaluates every budget/linear_points steps."""
    sparse_log_points_per_decade: int = Field(5, ge=1)
    """Log-grid density of the ``sparse`` cadence used by costly probes."""
    sparse_linear_points: int = Field(20, ge=1)
    """The ``sparse`` cadence also runs every budget/sparse_linear_points steps."""
    extra_steps: list[int] = []
    """Steps to evaluate in addition to the grids (e.g. around a known transition)."""


def log_grid(budget: int, per_decade: int) -> set[int]:
    """{0} and round(10^(k / per_decade)) for every k with a value <= budget."""
    if budget <= 0:
        return {0}
    n = int(np.floor(np.log10(budget) * per_decade + 1e-9)) + 1
    values = np.round(10.0 ** (np.arange(n) / per_decade)).astype(int)
    return {0, *(int(v) for v in values if v <= budget)}


def linear_grid(budget: int, points: int) -> set[int]:
    """Every max(1, budget // points) steps from 0, and the budget itself."""
    stride = max(1, budget // points)
    return {*range(0, budget + 1, stride), budget}


class Schedule:
    """The step sets of one run; ``steps_for(cadence)`` resolves a probe's cadence."""

    def __init__(self, spec: ScheduleSpec, budget: int) -> None:
        self.budget = budget
        self.sparse = frozenset(
            log_grid(budget, spec.sparse_log_points_per_decade) | linear_grid(budget, spec.sparse_linear_points)
        )
        extra = {s for s in spec.extra_steps if 0 <= s <= budget}
        self.every = frozenset(
            log_grid(budget, spec.log_points_per_decade) | linear_grid(budget, spec.linear_points) | extra | self.sparse
        )
        self.final = frozenset({budget})

    def steps_for(self, cadence: Cadence) -> frozenset[int]:
        if isinstance(cadence, list):
            return frozenset(s for s in cadence if 0 <= s <= self.budget)
        return {"every": self.every, "sparse": self.sparse, "final": self.final}[cadence]
