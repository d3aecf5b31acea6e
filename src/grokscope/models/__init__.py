"""Models: torch modules implementing the trace protocol, registered by name."""

from grokscope.models import linear, mlp, toy, transformer
from grokscope.models.base import (
    ACTIVATIONS,
    MODELS,
    LayerRecord,
    ModelSpec,
    Trace,
    TracedModel,
    build_model,
)
from grokscope.models.linear import DiagonalLinear, DiagonalLinearSpec, LinearNetwork, LinearNetworkSpec
from grokscope.models.mlp import MLP, MLPSpec
from grokscope.models.toy import LiuToy, LiuToySpec
from grokscope.models.transformer import Transformer, TransformerSpec

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "MODELS",
    "DiagonalLinear",
    "DiagonalLinearSpec",
    "LayerRecord",
    "LinearNetwork",
    "LinearNetworkSpec",
    "LiuToy",
    "LiuToySpec",
    "MLPSpec",
    "ModelSpec",
    "Trace",
    "TracedModel",
    "Transformer",
    "TransformerSpec",
    "build_model",
    "linear",
    "mlp",
    "toy",
    "transformer",
]
