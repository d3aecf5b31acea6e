"""Models: torch modules implementing the trace protocol, registered by name."""

from grokscope.models import mlp, toy
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
from grokscope.models.toy import LiuToy, LiuToySpec

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "MODELS",
    "LayerRecord",
    "LiuToy",
    "LiuToySpec",
    "MLPSpec",
    "ModelSpec",
    "Trace",
    "TracedModel",
    "build_model",
    "mlp",
    "toy",
]
