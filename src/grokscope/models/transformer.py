"""A small decoder-only transformer for ``a o b mod p`` (Power et al. 2022; Liu sec. 5).

Token and position embeddings, ``n_layers`` pre-norm blocks (causal multi-head attention, then
an MLP), a final layer norm and a linear unembedding read at the last position (the ``=``
token when the task appends one) or, as in Liu sec. 5, from all positions concatenated.

The trace (``sequential=False``): one record per block for its MLP hidden layer, at the last
position (h = W_in LN(stream) + b_in, x = activation(h)), then the unembedding; the residual
stream after each block, (B, T, d_model), is in ``residual_stream``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from grokscope.errors import ConfigError
from grokscope.models.base import ACTIVATIONS, MODELS, LayerRecord, ModelSpec, Trace, TracedModel


class TransformerSpec(ModelSpec):
    """Decoder-only transformer over token ids; vocabulary and length come from the task."""

    name: Literal["transformer"] = "transformer"
    n_layers: int = Field(1, ge=1, le=4)
    """Number of blocks (the seed papers use 1 or 2)."""
    d_model: int = Field(128, ge=1)
    """Width of the residual stream and of the token embeddings (Liu: 256)."""
    n_heads: int = Field(4, ge=1)
    """Attention heads; must divide d_model."""
    d_mlp: int | None = Field(None, ge=1)
    """Hidden width of each block's MLP (None: 4 d_model)."""
    activation: Literal["relu", "gelu"] = "relu"
    """The MLP's activation."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on attention weights and on each sublayer's output (Liu fig. 7: removes grokking)."""
    layer_norm: bool = True
    """Pre-norm LayerNorms (False: none, as in Nanda et al.'s one-layer model)."""
    readout: Literal["last", "concat"] = "last"
    """``last``: unembed the last position; ``concat``: all positions concatenated (Liu sec. 5)."""

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerSpec:
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads = {self.n_heads} must divide d_model = {self.d_model}")
        return self


class Block(nn.Module):
    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        d, mlp = spec.d_model, spec.d_mlp or 4 * spec.d_model
        self.n_heads = spec.n_heads
        self.ln_attn = nn.LayerNorm(d) if spec.layer_norm else nn.Identity()
        self.qkv = nn.Linear(d, 3 * d)
        self.attn_out = nn.Linear(d, d)
        self.ln_mlp = nn.LayerNorm(d) if spec.layer_norm else nn.Identity()
        self.mlp_in = nn.Linear(d, mlp)
        self.mlp_out = nn.Linear(mlp, d)
        self.dropout = nn.Dropout(spec.dropout)
        self.activation = spec.activation

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, H, T, c)
        scores = q @ k.transpose(-2, -1) / math.sqrt(C // self.n_heads)  # (B, H, T, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        weights = self.dropout(scores.masked_fill(~causal, float("-inf")).softmax(dim=-1))
        return self.attn_out((weights @ v).transpose(1, 2).reshape(B, T, C))

    def forward(self, stream: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The stream after the block, with the MLP's input, pre-activation and activation."""
        stream = stream + self.dropout(self.attention(self.ln_attn(stream)))
        mlp_input = self.ln_mlp(stream)  # (B, T, d)
        h = self.mlp_in(mlp_input)  # (B, T, d_mlp)
        hidden = ACTIVATIONS[self.activation](h)
        return stream + self.dropout(self.mlp_out(hidden)), mlp_input, h, hidden


class Transformer(TracedModel):
    def __init__(self, spec: TransformerSpec, vocab_size: int, length: int, output_dim: int) -> None:
        super().__init__()
        self.spec = spec
        self.token_embedding = nn.Embedding(vocab_size, spec.d_model)
        self.position_embedding = nn.Embedding(length, spec.d_model)
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.n_layers))
        self.ln_final = nn.LayerNorm(spec.d_model) if spec.layer_norm else nn.Identity()
        readout_width = spec.d_model * (length if spec.readout == "concat" else 1)
        self.unembed = nn.Linear(readout_width, output_dim)

    def readout(self, stream: torch.Tensor) -> torch.Tensor:
        final = self.ln_final(stream)  # (B, T, d)
        return final[:, -1] if self.spec.readout == "last" else final.flatten(1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[1], device=x.device)
        return self.token_embedding(x) + self.position_embedding(positions)  # (B, T, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stream = self.embed(x)
        for block in self.blocks:
            stream = block(stream)[0]
        return self.unembed(self.readout(stream))

    def trace(self, x: torch.Tensor) -> Trace:
        stream = self.embed(x)
        records, streams = [], []
        for i, block in enumerate(self.blocks):
            stream, mlp_input, h, hidden = block(stream)
            streams.append(stream)
            records.append(
                LayerRecord(
                    f"block{i + 1}.mlp",
                    block.mlp_in.weight,
                    block.mlp_in.bias,
                    None,
                    block.activation,
                    mlp_input[:, -1],
                    h[:, -1],
                    hidden[:, -1],
                )
            )
        features = self.readout(stream)
        logits = self.unembed(features)
        records.append(
            LayerRecord("output", self.unembed.weight, self.unembed.bias, None, "identity", features, logits, logits)
        )
        return Trace(layers=records, output=logits, sequential=False, residual_stream=streams)

    def embeddings(self) -> torch.Tensor:
        """The token embedding table (vocab_size, d_model)."""
        return self.token_embedding.weight

    def param_roles(self) -> dict[str, str]:
        def role(name: str) -> str:
            if name.startswith("token_embedding."):
                return "embeddings"
            return "last_layer" if name.startswith("unembed.") else "other"

        return {name: role(name) for name, _ in self.named_parameters()}


@MODELS.register(TransformerSpec)
def build_transformer(spec: TransformerSpec, task) -> Transformer:
    x = task.x_train
    if x.is_floating_point() or x.ndim != 2 or task.vocab_size is None:
        raise ConfigError("model.name = transformer needs token ids: set task.encoding: tokens")
    return Transformer(spec, task.vocab_size, x.shape[1], task.output_dim)
