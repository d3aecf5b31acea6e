"""Probes: thin adapters that run measures on a model during training, registered by name."""

from grokscope.probes import basic, collapse, embedding, llc, oinfo, sharpness
from grokscope.probes.base import (
    PROBES,
    Probe,
    ProbeContext,
    ProbeOutput,
    ProbeSpec,
    build_probe,
    eval_mode,
    untouched,
)

__all__ = [
    "PROBES",
    "Probe",
    "ProbeContext",
    "ProbeOutput",
    "ProbeSpec",
    "basic",
    "build_probe",
    "collapse",
    "embedding",
    "eval_mode",
    "llc",
    "oinfo",
    "sharpness",
    "untouched",
]
