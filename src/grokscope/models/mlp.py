"""Multilayer perceptron with the options of the seed papers (Zhao-A eq. 1, O-info sec. 4)."""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from grokscope.errors import ConfigError
from grokscope.models.base import ACTIVATIONS, MODELS, LayerRecord, ModelSpec, Trace, TracedModel


class MLPSpec(ModelSpec):
    """``x -> W_L f(... f(W_1 x + b_1) ...)``; sizes of input and output come from the task."""

    name: Literal["mlp"] = "mlp"
    depth: int = Field(2, ge=1)
    """Number of linear layers (hidden layers + 1): 784-200-200-10 has depth 3."""
    width: int = Field(250, ge=1)
    """Width of every hidden layer (unless ``widths`` is given)."""
    widths: list[int] | None = None
    """Explicit hidden widths, e.g. [512, 256] (overrides depth and width)."""
    activation: Literal["relu", "tanh", "identity", "gaussian", "gelu"] = "relu"
    """Hidden activation; ``gaussian`` is exp(-h^2), ``identity`` makes a linear network."""
    bias: bool = True
    """Biases on hidden layers."""
    output_bias: bool | None = None
    """Bias on the output layer (None: same as ``bias``); the O-info model has none."""
    init: Literal["default", "normal"] = "default"
    """``default``: torch's Kaiming-uniform layers; ``normal``: weights N(0, 1/fan_in) and zero
    biases (with ``init_scale: 5``, the std 5/sqrt(fan_in) of Layerwise appendix H.3)."""
    init_scale: float = Field(1.0, gt=0)
    """alpha: every layer's default (Kaiming-uniform) initialization is multiplied by it."""
    layer_init_scales: list[float] | None = None
    """One factor per linear layer (``depth`` of them), multiplying that layer's initialization
    on top of ``init_scale``."""
    upstream_init_scale: float = Field(1.0, gt=0)
    """Extra factor on the first layer's initialization (Kunin et al. 2024 "upstream"
    initialization when > 1; Layerwise sec. 3)."""
    downstream_init_scale: float = Field(1.0, gt=0)
    """Extra factor on the output layer's initialization ("downstream" initialization when > 1)."""
    output_scale: float = Field(1.0, gt=0)
    """Multiplies the network's output (Layerwise appendix H.3 "output downscaling": 0.1)."""
    zero_init_last: bool = False
    """Initialize the output layer to zero (used with large alpha, O-info sec. 4)."""
    batch_norm: bool = False
    """BatchNorm1d after each hidden linear layer, before the activation."""
    residual: bool = False
    """Residual every two layers: x^(l) = x^(l-2) + f(h^(l)) for hidden l = 3, 5, ..."""

    @model_validator(mode="after")
    def _check_shapes(self) -> MLPSpec:
        if self.widths is not None and any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive, got {self.widths}")
        if self.residual and len(set(self.hidden_widths())) > 1:
            raise ValueError("residual connections need equal hidden widths")
        layers = len(self.hidden_widths()) + 1
        if self.layer_init_scales is not None and len(self.layer_init_scales) != layers:
            raise ValueError(
                f"layer_init_scales needs one factor per linear layer ({layers}), got {len(self.layer_init_scales)}"
            )
        return self

    def init_factors(self) -> list[float]:
        """The factor multiplying each linear layer's default initialization."""
        layers = len(self.hidden_widths()) + 1
        factors = [self.init_scale * f for f in (self.layer_init_scales or [1.0] * layers)]
        factors[0] *= self.upstream_init_scale
        factors[-1] *= self.downstream_init_scale
        return factors

    def hidden_widths(self) -> list[int]:
        return list(self.widths) if self.widths is not None else [self.width] * (self.depth - 1)


class MLP(TracedModel):
    def __init__(self, spec: MLPSpec, input_dim: int, output_dim: int) -> None:
        super().__init__()
        self.spec = spec
        self.activation = spec.activation
        widths = [input_dim, *spec.hidden_widths(), output_dim]
        output_bias = spec.bias if spec.output_bias is None else spec.output_bias
        self.linears = nn.ModuleList(
            nn.Linear(n_in, n_out, bias=spec.bias if i < len(widths) - 2 else output_bias)
            for i, (n_in, n_out) in enumerate(itertools.pairwise(widths))
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(n) if spec.batch_norm else nn.Identity() for n in widths[1:-1])
        with torch.no_grad():
            for linear, factor in zip(self.linears, spec.init_factors()):
                if spec.init == "normal":
                    linear.weight.normal_(0.0, linear.in_features**-0.5)
                    if linear.bias is not None:
                        linear.bias.zero_()
                linear.weight.mul_(factor)
                if linear.bias is not None:
                    linear.bias.mul_(factor)
            if spec.zero_init_last:
                self.linears[-1].weight.zero_()
                if self.linears[-1].bias is not None:
                    self.linears[-1].bias.zero_()

    def skip_source(self, layer: int) -> int | None:
        """Index of the layer whose output layer ``layer`` adds (0-based hidden index)."""
        if self.spec.residual and layer >= 2 and layer % 2 == 0 and layer < len(self.norms):
            return layer - 2
        return None

    def trace(self, x: torch.Tensor) -> Trace:
        x = x.flatten(1)
        act = ACTIVATIONS[self.activation]
        records: list[LayerRecord] = []
        for i, (linear, norm) in enumerate(zip(self.linears[:-1], self.norms)):
            h = norm(linear(x))  # (B, width)
            out = act(h)
            skip = self.skip_source(i)
            if skip is not None:
                out = out + records[skip].x
            bn = norm if isinstance(norm, nn.BatchNorm1d) else None
            records.append(
                LayerRecord(f"layer{i + 1}", linear.weight, linear.bias, bn, self.activation, x, h, out, skip)
            )
            x = out
        weight, bias = self.output_weight_bias()
        logits = self.scaled(self.linears[-1](x))
        records.append(LayerRecord("output", weight, bias, None, "identity", x, logits, logits))
        return Trace(layers=records, output=logits)

    def scaled(self, logits: torch.Tensor) -> torch.Tensor:
        scale = self.spec.output_scale
        return logits if scale == 1.0 else logits * scale

    def output_weight_bias(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output layer's weight and bias with ``output_scale`` folded in, so that the output
        record keeps ``h = W @ input + b``."""
        last, scale = self.linears[-1], self.spec.output_scale
        if scale == 1.0:
            return last.weight, last.bias
        return last.weight * scale, None if last.bias is None else last.bias * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        act = ACTIVATIONS[self.activation]
        outputs: list[torch.Tensor] = []
        for i, (linear, norm) in enumerate(zip(self.linears[:-1], self.norms)):
            out = act(norm(linear(x)))
            skip = self.skip_source(i)
            if skip is not None:
                out = out + outputs[skip]
            outputs.append(out)
            x = out
        return self.scaled(self.linears[-1](x))

    def param_roles(self) -> dict[str, str]:
        last = len(self.linears) - 1
        return {
            name: "last_layer" if name.startswith(f"linears.{last}.") else "other"
            for name, _ in self.named_parameters()
        }


@MODELS.register(MLPSpec)
def build_mlp(spec: MLPSpec, task) -> MLP:
    if task.vocab_size is not None and not task.x_train.is_floating_point():
        raise ConfigError("model.name = mlp needs float inputs; set task.encoding: onehot or use an embedding model")
    return MLP(spec, task.input_dim, task.output_dim)
