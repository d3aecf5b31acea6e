"""Analysis of stored runs: fit and generalization steps, phases."""

from grokscope.analysis.phases import classify_phase, first_step_reaching, summarize

__all__ = ["classify_phase", "first_step_reaching", "summarize"]
