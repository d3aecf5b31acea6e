"""The seed reproductions (``catalog/``) and example run configs (``configs/``)."""

from grokscope.experiments.catalog import (
    Reproduction,
    RunView,
    Verdict,
    list_reproductions,
    load_preset,
    load_reproduction,
    preset_names,
    preset_path,
    reproduce,
)
from grokscope.experiments.rules import evaluate_rule

__all__ = [
    "Reproduction",
    "RunView",
    "Verdict",
    "evaluate_rule",
    "list_reproductions",
    "load_preset",
    "load_reproduction",
    "preset_names",
    "preset_path",
    "reproduce",
]
