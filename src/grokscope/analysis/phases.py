"""Fit and generalization steps, and the phase of learning (Liu appendix A, table 1)."""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

Phase = Literal["comprehension", "grokking", "memorization", "confusion"]
PHASES: tuple[str, ...] = get_args(Phase)


def first_step_reaching(steps: np.ndarray, values: np.ndarray, threshold: float) -> int | None:
    """The first evaluated step whose value is >= threshold, or None if none is.

    >>> first_step_reaching(np.array([0, 10, 20]), np.array([0.1, 0.95, 0.5]), 0.9)
    10
    """
    reached = np.flatnonzero(np.asarray(values) >= threshold)
    return int(np.asarray(steps)[reached[0]]) if reached.size else None


def classify_phase(fit_step: int | None, generalization_step: int | None, gap: int) -> Phase:
    """Liu appendix A: with train and test accuracy thresholds reached at ``fit_step`` and
    ``generalization_step`` (None: not within the budget),

    - comprehension: both reached and generalization_step - fit_step < gap;
    - grokking: both reached and the difference >= gap;
    - memorization: only the training set reached;
    - confusion: the training set not reached (whatever the test set does).
    """
    if fit_step is None:
        return "confusion"
    if generalization_step is None:
        return "memorization"
    return "grokking" if generalization_step - fit_step >= gap else "comprehension"


def summarize(
    metrics: pd.DataFrame, thresholds: list[float], phase_threshold: float, gap: int, delay_ratio: float
) -> dict[str, Any]:
    """The analysis part of summary.json from a metrics table with ``train/acc`` and ``test/acc``.

    Keys: ``fit_step`` and ``generalization_step`` (at ``phase_threshold``), the same at every
    threshold (``fit_step@0.99``...), ``gap_steps``, ``delay_ratio`` (generalization over fit
    step), ``delayed`` (ratio >= ``delay_ratio``), ``phase``.
    """
    result: dict[str, Any] = {}
    if "train/acc" not in metrics or "test/acc" not in metrics:
        return result
    # NaN (a step where the split was not evaluated) never reaches a threshold
    steps = metrics["step"].to_numpy()
    train, test = metrics["train/acc"].to_numpy(dtype=float), metrics["test/acc"].to_numpy(dtype=float)
    for threshold in sorted({*thresholds, phase_threshold}):
        fit = first_step_reaching(steps, train, threshold)
        gen = first_step_reaching(steps, test, threshold)
        result[f"fit_step@{threshold:g}"] = fit
        result[f"generalization_step@{threshold:g}"] = gen
    fit = result[f"fit_step@{phase_threshold:g}"]
    gen = result[f"generalization_step@{phase_threshold:g}"]
    result["fit_step"] = fit
    result["generalization_step"] = gen
    result["gap_steps"] = gen - fit if fit is not None and gen is not None else None
    ratio = gen / max(fit, 1) if fit is not None and gen is not None else None
    result["delay_ratio"] = ratio
    result["delayed"] = bool(ratio is not None and ratio >= delay_ratio and gen > fit)
    result["phase"] = classify_phase(fit, gen, gap)
    return result
