"""The trace protocol: how every probe reads a model without knowing its class (DESIGN.md).

One forward pass through ``model.trace(x)`` yields every layer's local field and output, so all
probes at a checkpoint share one pass (the role TransformerLens gives its hook points).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from grokscope.registry import Registry
from grokscope.spec import Spec

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "identity": lambda h: h,
    "gaussian": lambda h: torch.exp(-h * h),
    "gelu": nn.functional.gelu,
}
"""Activation functions by config name; ``gaussian`` is exp(-h^2), the non-monotone unit of
Zhao-A sec. II."""


@dataclass
class LayerRecord:
    """One layer of a traced forward pass (shapes for a batch of B samples).

    ``h = BN(W @ input + b)`` is the local field (the activation's input, after batch norm where
    present), ``x = activation(h) (+ x[skip_from])`` the layer's output. ``skip_from`` is the index
    of the layer whose output is added as a residual (-1 for the model input), or None.
    """

    name: str
    weight: torch.Tensor | None  # (out, in)
    bias: torch.Tensor | None  # (out,)
    batch_norm: nn.Module | None
    activation: str
    input: torch.Tensor  # (B, in)
    h: torch.Tensor  # (B, out)
    x: torch.Tensor  # (B, out)
    skip_from: int | None = None


@dataclass
class Trace:
    """Everything one forward pass exposes.

    ``layers`` lists hidden layers in order and ends with the output layer. ``sequential`` is
    True when each layer's input is the previous layer's output (MLP-like stacks), which lets
    probes rebuild or linearize the tail of the network from the records alone.
    ``residual_stream`` holds a transformer's stream after each block, where one exists.
    """

    layers: list[LayerRecord]
    output: torch.Tensor
    sequential: bool = True
    residual_stream: list[torch.Tensor] | None = None

    @property
    def hidden(self) -> list[LayerRecord]:
        return self.layers[:-1]


class TracedModel(nn.Module, ABC):
    """A torch module that also implements ``trace``; every probe works on it."""

    @abstractmethod
    def trace(self, x: torch.Tensor) -> Trace:
        """Forward ``x`` and record every layer; ``trace(x).output`` equals ``forward(x)``."""

    def embeddings(self) -> torch.Tensor | None:
        """The embedding table (n_tokens, ...) for embedding models; None otherwise."""
        return None

    def param_roles(self) -> dict[str, str]:
        """Parameter name -> role (``embeddings``, ``decoder``, ``last_layer``, ``other``)."""
        return {name: "other" for name, _ in self.named_parameters()}


class ModelSpec(Spec):
    """Base of every model spec; ``name`` selects the registered model."""

    name: str


MODELS: Registry = Registry("model")


def build_model(spec: ModelSpec, task) -> TracedModel:
    """Build the model a spec describes, sized for ``task``, initialized from torch's global RNG."""
    return MODELS.builder(spec.name)(spec, task)
