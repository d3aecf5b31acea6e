"""Probes: thin adapters that run measures on a model during training, registered by name."""

from grokscope.probes import basic, collapse, effective, embedding, layerwise, llc, ntk, oinfo, rqi, sharpness
from grokscope.probes import basins, batchnorm, geometry, modes  # Zhao framework (SPEC.md sec. 1)
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
    "basins",
    "batchnorm",
    "build_probe",
    "collapse",
    "effective",
    "embedding",
    "eval_mode",
    "geometry",
    "layerwise",
    "llc",
    "modes",
    "ntk",
    "oinfo",
    "rqi",
    "sharpness",
    "untouched",
]
