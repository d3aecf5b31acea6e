"""Layerwise linear models (Layerwise sec. 4): deep linear networks of any widths and the
diagonal linear network, with the initializations that set lazy or rich dynamics.

- ``linear_network``: ``f(x) = c W_L ... W_1 x`` (no hidden layers: the linear model
  ``f = theta x``). Init ``gaussian`` (entries N(0, s^2 / fan_in)), ``balanced``
  (``W_{l+1}^T W_{l+1} = W_l W_l^T``, every singular value s), or ``lambda_balanced`` for two
  layers: ``W2^T W2 - W1 W1^T = lambda I`` (Dominé et al. 2024).
- ``diagonal_linear``: ``f(x) = c sum_i a_i b_i x_i`` with conserved ``a_i^2 - b_i^2 = lambda``.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from grokscope.errors import ConfigError
from grokscope.models.base import MODELS, LayerRecord, ModelSpec, Trace, TracedModel


class LinearNetworkSpec(ModelSpec):
    """A deep linear network; input and output sizes come from the task."""

    name: Literal["linear_network"] = "linear_network"
    widths: list[int] = [16]
    """Hidden widths, e.g. [64, 32] (funnel) or [32, 64] (anti-funnel); [] is the linear model."""
    bias: bool = False
    """Biases on every layer (the theory has none)."""
    init: Literal["gaussian", "balanced", "lambda_balanced"] = "gaussian"
    """``gaussian``: entries N(0, init_scale^2 / fan_in); ``balanced``: random orthonormal
    frames with every singular value init_scale; ``lambda_balanced`` (one hidden layer):
    W2^T W2 - W1 W1^T = lam I."""
    init_scale: float = Field(1.0, gt=0)
    """Scale of the initialization (small: rich, sigmoidal; large: lazy, exponential)."""
    lam: float = 0.0
    """lambda of the lambda-balanced init (SPEC.md sec. 4): > 0 needs hidden width <= output
    width, < 0 needs hidden width <= input width."""
    output_scale: float = Field(1.0, gt=0)
    """c, multiplying the output (1/Z of the scalar toy, Layerwise eq. 15)."""

    @model_validator(mode="after")
    def _check(self) -> LinearNetworkSpec:
        if any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive, got {self.widths}")
        if self.init == "lambda_balanced" and len(self.widths) != 1:
            raise ValueError(f"lambda_balanced init needs exactly one hidden layer, got widths {self.widths}")
        return self


def orthonormal_columns(rows: int, cols: int) -> torch.Tensor:
    """A (rows, cols) matrix with orthonormal columns (cols <= rows), from torch's global RNG."""
    q, r = torch.linalg.qr(torch.randn(rows, cols, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def balanced_weights(sizes: list[int], scale: float) -> list[torch.Tensor]:
    """W_l = scale Q_l Q_{l-1}^T with orthonormal (size_l, r) frames Q_l, r = min(sizes): every
    product W_{l+1}^T W_{l+1} = scale^2 Q_l Q_l^T = W_l W_l^T."""
    rank = min(sizes)
    frames = [orthonormal_columns(n, rank) for n in sizes]
    return [scale * frames[i + 1] @ frames[i].T for i in range(len(sizes) - 1)]


def lambda_balanced_weights(n_in: int, hidden: int, n_out: int, scale: float, lam: float) -> list[torch.Tensor]:
    """W1 = R diag(a) V^T, W2 = U diag(b) R^T with b_j^2 - a_j^2 = lam for every hidden direction j
    (a_j = 0 beyond the input width, b_j = 0 beyond the output width), so W2^T W2 - W1 W1^T = lam I.
    The free singular values are ``scale``."""
    if lam > 0 and hidden > n_out:
        raise ConfigError(
            f"model.lam = {lam}: lambda > 0 needs hidden width <= output width ({hidden} > {n_out}); "
            "use lam <= 0 or a narrower layer"
        )
    if lam < 0 and hidden > n_in:
        raise ConfigError(
            f"model.lam = {lam}: lambda < 0 needs hidden width <= input width ({hidden} > {n_in}); "
            "use lam >= 0 or a narrower layer"
        )
    a = torch.zeros(hidden, dtype=torch.float64)
    b = torch.zeros(hidden, dtype=torch.float64)
    for j in range(hidden):
        if lam >= 0:
            a[j] = scale if j < min(n_in, n_out) else 0.0  # lam = 0 and j >= n_out force a_j = b_j = 0
            b[j] = (a[j] ** 2 + lam) ** 0.5 if j < n_out else 0.0
        else:
            b[j] = scale if j < n_out else 0.0
            a[j] = (b[j] ** 2 - lam) ** 0.5 if j < n_in else 0.0
    k_in, k_out = min(hidden, n_in), min(hidden, n_out)
    rotation = orthonormal_columns(hidden, hidden)
    w1 = rotation[:, :k_in] @ torch.diag(a[:k_in]) @ orthonormal_columns(n_in, k_in).T
    w2 = orthonormal_columns(n_out, k_out) @ torch.diag(b[:k_out]) @ rotation[:, :k_out].T
    return [w1, w2]


class LinearNetwork(TracedModel):
    def __init__(self, spec: LinearNetworkSpec, input_dim: int, output_dim: int) -> None:
        super().__init__()
        self.spec = spec
        sizes = [input_dim, *spec.widths, output_dim]
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=spec.bias) for a, b in itertools.pairwise(sizes))
        if spec.init == "gaussian":
            weights = [
                torch.randn(b, a, dtype=torch.float64) * spec.init_scale / a**0.5 for a, b in itertools.pairwise(sizes)
            ]
        elif spec.init == "balanced":
            weights = balanced_weights(sizes, spec.init_scale)
        else:
            weights = lambda_balanced_weights(input_dim, spec.widths[0], output_dim, spec.init_scale, spec.lam)
        with torch.no_grad():
            for linear, weight in zip(self.linears, weights):
                linear.weight.copy_(weight)
                if linear.bias is not None:
                    linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for linear in self.linears:
            x = linear(x)
        return x * self.spec.output_scale if self.spec.output_scale != 1.0 else x

    def trace(self, x: torch.Tensor) -> Trace:
        x = x.flatten(1)
        records = []
        for i, linear in enumerate(self.linears[:-1]):
            h = linear(x)
            records.append(LayerRecord(f"layer{i + 1}", linear.weight, linear.bias, None, "identity", x, h, h))
            x = h
        last, c = self.linears[-1], self.spec.output_scale
        out = last(x)
        weight, bias = last.weight, last.bias
        if c != 1.0:
            out, weight, bias = out * c, weight * c, None if bias is None else bias * c
        records.append(LayerRecord("output", weight, bias, None, "identity", x, out, out))
        return Trace(layers=records, output=out)

    def end_to_end(self) -> torch.Tensor:
        """The product c W_L ... W_1 (output, input)."""
        product = self.linears[0].weight
        for linear in self.linears[1:]:
            product = linear.weight @ product
        return product * self.spec.output_scale

    def param_roles(self) -> dict[str, str]:
        last = len(self.linears) - 1
        return {n: "last_layer" if n.startswith(f"linears.{last}.") else "other" for n, _ in self.named_parameters()}


class DiagonalLinearSpec(ModelSpec):
    """f(x) = c sum_i a_i b_i x_i: one scalar output, one (a_i, b_i) pair per input."""

    name: Literal["diagonal_linear"] = "diagonal_linear"
    init: Literal["constant", "gaussian"] = "constant"
    """``constant``: every b_i = init_scale and a_i^2 = b_i^2 + lam (all positive, the
    sigmoidal solution of SPEC.md sec. 4); ``gaussian``: a_i, b_i ~ N(0, init_scale^2)."""
    init_scale: float = Field(0.01, gt=0)
    """Scale of the initialization (u_i(0) = a_i b_i = init_scale^2 when balanced)."""
    lam: float = 0.0
    """Conserved imbalance a_i^2 - b_i^2 of the constant init (0: balanced)."""
    output_scale: float = Field(1.0, gt=0)
    """c, multiplying the output."""

    @model_validator(mode="after")
    def _check(self) -> DiagonalLinearSpec:
        if self.lam < 0 and self.init_scale**2 + self.lam < 0:
            raise ValueError(f"lam = {self.lam} needs init_scale^2 + lam >= 0 (init_scale {self.init_scale})")
        return self


class DiagonalLinear(TracedModel):
    def __init__(self, spec: DiagonalLinearSpec, input_dim: int) -> None:
        super().__init__()
        self.spec = spec
        if spec.init == "gaussian":
            a, b = (torch.randn(2, input_dim, dtype=torch.float64) * spec.init_scale).unbind(0)
        else:
            s = spec.init_scale
            b = torch.full((input_dim,), s, dtype=torch.float64)
            a = torch.full((input_dim,), (s * s + spec.lam) ** 0.5, dtype=torch.float64)
        self.a = nn.Parameter(a.float())
        self.b = nn.Parameter(b.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) * (self.a * self.b)).sum(dim=1, keepdim=True) * self.spec.output_scale

    def trace(self, x: torch.Tensor) -> Trace:
        """Two layers: ``layer1`` h = a * x (weight diag(a)), then ``output`` c b^T h."""
        x = x.flatten(1)
        h = x * self.a
        first = LayerRecord("layer1", torch.diag(self.a), None, None, "identity", x, h, h)
        c = self.spec.output_scale
        out = (h * self.b).sum(dim=1, keepdim=True) * c
        last = LayerRecord("output", (self.b * c)[None, :], None, None, "identity", h, out, out)
        return Trace(layers=[first, last], output=out)

    def param_roles(self) -> dict[str, str]:
        return {"a": "other", "b": "last_layer"}


@MODELS.register(LinearNetworkSpec)
def build_linear_network(spec: LinearNetworkSpec, task) -> LinearNetwork:
    if not task.x_train.is_floating_point():
        raise ConfigError("model.name = linear_network needs float inputs; set task.encoding: onehot")
    return LinearNetwork(spec, task.input_dim, task.output_dim)


@MODELS.register(DiagonalLinearSpec)
def build_diagonal_linear(spec: DiagonalLinearSpec, task) -> DiagonalLinear:
    if not task.x_train.is_floating_point():
        raise ConfigError("model.name = diagonal_linear needs float inputs; set task.encoding: onehot")
    if task.output_dim != 1:
        raise ConfigError(
            f"model.name = diagonal_linear has one output; the task needs {task.output_dim} "
            "(use a task with a scalar target, e.g. teacher_student with output_dim 1)"
        )
    return DiagonalLinear(spec, task.input_dim)
