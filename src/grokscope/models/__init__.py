"""Models: torch modules implementing the trace protocol, registered by name."""

from grokscope.models import mlp
from grokscope.models.base import (
    ACTIVATIONS,
    MODELS,
    LayerRecord,
    ModelSpec,
    Trace,
    TracedModel,
    build_model,
)
from grokscope.models.mlp import MLP, MLPSpec

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "MODELS",
    "LayerRecord",
    "MLPSpec",
    "ModelSpec",
    "Trace",
    "TracedModel",
    "build_model",
    "mlp",
]
