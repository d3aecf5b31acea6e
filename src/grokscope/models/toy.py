"""Liu's toy representation model (Liu sec. 3, appendix H): trainable embeddings of the two
operands, combined by a hard-coded operation, then an MLP decoder.

``(a, b) -> Dec(E_a + E_b)`` for abelian groups (addition), ``Dec(E_a E_b)`` with matrix
embeddings for non-abelian groups (S3 with 3x3 matrices). Embeddings and decoder have their
own parameter roles (``embeddings``, ``decoder``, ``last_layer``) so that each gets its own
optimizer settings, as in the paper's code (ejmichaud/grokking-squared ``toy/train_add.py``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from grokscope.errors import ConfigError
from grokscope.models.base import MODELS, ModelSpec, Trace, TracedModel
from grokscope.models.mlp import MLP, MLPSpec


class LiuToySpec(ModelSpec):
    """Embeddings ``E`` (n_tokens, d), combined by sum or matrix product, decoded by an MLP."""

    name: Literal["liu_toy"] = "liu_toy"
    combine: Literal["sum", "product"] = "sum"
    """``sum``: E_a + E_b (addition); ``product``: E_a E_b of square matrix embeddings (S_n)."""
    embedding_dim: int | None = Field(None, ge=1)
    """d, the size of one embedding (None: 1 for ``sum``, 9 = 3x3 for ``product``, which needs
    a perfect square)."""
    embedding_init_scale: float = Field(1.0, gt=0)
    """E starts uniform in [-scale/2, scale/2] (the paper's code)."""
    decoder_widths: list[int] = [200, 200]
    """Hidden widths of the decoder (Liu: 1-200-200-30)."""
    activation: Literal["relu", "tanh", "identity", "gaussian", "gelu"] = "tanh"
    """Decoder activation (Liu: tanh)."""
    decoder_init_scale: float = Field(1.0, gt=0)
    """Multiplies the decoder's default (Kaiming-uniform) initialization (``init_scale_nn``)."""

    @model_validator(mode="after")
    def _check(self) -> LiuToySpec:
        if any(w < 1 for w in self.decoder_widths):
            raise ValueError(f"decoder_widths must be positive, got {self.decoder_widths}")
        if self.combine == "product" and math.isqrt(self.dim) ** 2 != self.dim:
            raise ValueError(f"combine product needs a square embedding_dim (k x k matrices), got {self.dim}")
        return self

    @property
    def dim(self) -> int:
        if self.embedding_dim is not None:
            return self.embedding_dim
        return 1 if self.combine == "sum" else 9


class LiuToy(TracedModel):
    """Token pairs (B, 2) -> outputs (B, output_dim) through ``Dec(combine(E_a, E_b))``."""

    def __init__(self, spec: LiuToySpec, n_tokens: int, output_dim: int) -> None:
        super().__init__()
        self.spec = spec
        self.embedding = nn.Parameter((torch.rand(n_tokens, spec.dim) - 0.5) * spec.embedding_init_scale)
        decoder = MLPSpec(
            widths=list(spec.decoder_widths),
            depth=len(spec.decoder_widths) + 1,
            activation=spec.activation,
            init_scale=spec.decoder_init_scale,
        )
        self.decoder = MLP(decoder, spec.dim, output_dim)

    def combined(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's input for token pairs ``x`` (B, 2): (B, d)."""
        a, b = self.embedding[x[:, 0]], self.embedding[x[:, 1]]  # (B, d) each
        if self.spec.combine == "sum":
            return a + b
        k = math.isqrt(self.spec.dim)
        return (a.view(-1, k, k) @ b.view(-1, k, k)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.combined(x))

    def trace(self, x: torch.Tensor) -> Trace:
        """The decoder's layers; the first one's ``input`` is the combined embedding."""
        return self.decoder.trace(self.combined(x))

    def embeddings(self) -> torch.Tensor:
        """E: (n_tokens, d) for ``sum``; (n_tokens, k, k) matrices for ``product``."""
        if self.spec.combine == "sum":
            return self.embedding
        k = math.isqrt(self.spec.dim)
        return self.embedding.view(-1, k, k)

    def param_roles(self) -> dict[str, str]:
        roles = {"embedding": "embeddings"}
        for name, role in self.decoder.param_roles().items():
            roles[f"decoder.{name}"] = "last_layer" if role == "last_layer" else "decoder"
        return roles


@MODELS.register(LiuToySpec)
def build_liu_toy(spec: LiuToySpec, task) -> LiuToy:
    x = task.x_train
    if x.is_floating_point() or x.ndim != 2 or x.shape[1] != 2 or task.vocab_size is None:
        raise ConfigError("model.name = liu_toy needs token pairs: set task.encoding: tokens (and no equals_token)")
    return LiuToy(spec, task.vocab_size, task.output_dim)
