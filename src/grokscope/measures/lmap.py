"""The L-map, L-map pruning and least-squares (LP) pruning (Zhao-A sec. "Quantities", Zhao-B
sec. II.C, SPEC.md sec. 1).

A network is described here as a chain of ``ChainLayer``s in running-statistics (eval) mode:

    h^(l) = scale^(l) * (W^(l) x^(l-1) + b^(l)) + shift^(l)       (batch norm folded, eq. 4)
    x^(l) = f(h^(l)) (+ x^(skip_from))                             (residual, Zhao-A eq. 2)

with ``scale = gamma / sqrt(running_var + eps)`` and ``shift = beta - scale * running_mean``
(``batch_norm_affine``). Layers are indexed from 0; the last one is the output layer; index -1
is the model input. Every function accepts weights with leading replica dimensions
(``(R, out, in)``), so perturbed copies of a network run as one batched matmul (basins.py).

References: Lin, Zhang, Feng, Zhao, "An analysis framework for understanding deep neural
networks based on network dynamics" (Zhao-A) and "Network dynamics-based framework for
understanding deep neural networks" (Zhao-B), eq. (2) and (4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from grokscope.models.base import ACTIVATIONS


@dataclass(frozen=True)
class ChainLayer:
    """One layer of a sequential network in running-statistics mode (shapes for one copy;
    ``weight`` and ``bias`` may carry leading replica dimensions)."""

    weight: torch.Tensor  # (out, in)
    bias: torch.Tensor | None = None  # (out,)
    scale: torch.Tensor | None = None  # (out,) batch norm gamma / sigma_running, or None
    shift: torch.Tensor | None = None  # (out,) batch norm beta - scale * mu_running, or None
    activation: str = "identity"
    skip_from: int | None = None

    def local_field(self, x: torch.Tensor, with_bias: bool = True) -> torch.Tensor:
        """``h = scale * (W x + b) + shift`` for a batch ``x`` (..., B, in) -> (..., B, out)."""
        h = torch.matmul(x, self.weight.transpose(-1, -2))
        if with_bias and self.bias is not None:
            h = h + self.bias.unsqueeze(-2)
        if self.scale is not None:
            h = h * self.scale
        if with_bias and self.shift is not None:
            h = h + self.shift
        return h

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D W, D b + shift)``: the layer's affine map with batch norm folded in (Zhao-B eq. 4)."""
        out_features = self.weight.shape[-2]
        scale = (
            self.scale
            if self.scale is not None
            else torch.ones(out_features, dtype=self.weight.dtype, device=self.weight.device)
        )
        bias = self.bias if self.bias is not None else torch.zeros_like(scale)
        shift = self.shift if self.shift is not None else torch.zeros_like(scale)
        return scale.unsqueeze(-1) * self.weight, scale * bias + shift


def batch_norm_affine(
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    gamma: torch.Tensor | None,
    beta: torch.Tensor | None,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch norm in running-statistics mode as ``h -> scale * h + shift`` (Zhao-B eq. 4):
    ``scale = gamma / sqrt(var + eps)`` (the diagonal of D), ``shift = beta - scale * mean``.
    ``gamma`` / ``beta`` None mean a batch norm without affine parameters (1 and 0)."""
    scale = torch.rsqrt(running_var + eps)
    if gamma is not None:
        scale = gamma * scale
    shift = -scale * running_mean
    if beta is not None:
        shift = shift + beta
    return scale, shift


def run_chain(
    layers: Sequence[ChainLayer],
    x: torch.Tensor,
    *,
    first: int = 0,
    linear_from: int | None = None,
    with_bias: bool = True,
    earlier: Mapping[int, torch.Tensor] | None = None,
    collect: bool = False,
) -> torch.Tensor | list[torch.Tensor]:
    """Apply ``layers[first:]`` to ``x``, the output of layer ``first - 1`` (the model input when
    ``first == 0``), shape (..., B, in).

    ``linear_from``: activations of layers with index >= it become the identity (biases and batch
    norm affine kept unless ``with_bias`` is False). ``earlier``: outputs of layers before
    ``first - 1`` that residual skips read; a skip from a layer not given contributes nothing
    (what a Jacobian with respect to ``x`` alone needs). Returns the output (..., B, K), or with
    ``collect`` the list of every applied layer's output.
    """
    outputs: dict[int, torch.Tensor] = dict(earlier or {})
    outputs[first - 1] = x
    collected = []
    linear_from = len(layers) if linear_from is None else linear_from
    for index in range(first, len(layers)):
        layer = layers[index]
        h = layer.local_field(x, with_bias)
        activation = "identity" if index >= linear_from else layer.activation
        x = ACTIVATIONS[activation](h)
        if layer.skip_from is not None and layer.skip_from in outputs:
            x = x + outputs[layer.skip_from]
        outputs[index] = x
        collected.append(x)
    return collected if collect else x


def lmap_matrix(layers: Sequence[ChainLayer], layer: int) -> torch.Tensor:
    """The L-map ``M_l`` of hidden layer ``layer`` (0-based): the linear substitute of everything
    after it, shape (K, N_l).

    The tail ``layers[layer + 1:]`` with every activation replaced by the identity and every bias
    (batch norm shift included) removed, applied to the identity basis of ``x^(l)``. For a plain
    chain this is ``W^(L) D^(L-1) W^(L-1) ... D^(l+1) W^(l+1)`` (Zhao-B eq. 4 in PyTorch's
    out x in convention); with residual connections it is the Jacobian of the linearized tail
    with respect to ``x^(l)``. For the last hidden layer it is ``W^(L)``; ``layer = -1`` gives
    the L-map of the model input (the whole network linearized).
    """
    reference = layers[max(layer, 0)].weight
    width = reference.shape[-1] if layer == -1 else reference.shape[-2]
    basis = torch.eye(width, dtype=reference.dtype, device=reference.device)
    image = run_chain(layers, basis, first=layer + 1, linear_from=layer + 1, with_bias=False)
    return image.transpose(-1, -2)


def argmax_prediction(output: torch.Tensor) -> torch.Tensor:
    """Predicted class = index of the largest output (..., K) -> (...)."""
    return output.argmax(dim=-1)


def accuracy(output: torch.Tensor, y: torch.Tensor, predict: Callable = argmax_prediction) -> float:
    """Fraction of samples whose predicted class equals ``y``."""
    return float((predict(output) == y).double().mean())


def lmap_pruned_output(layers: Sequence[ChainLayer], x: torch.Tensor, start: int) -> torch.Tensor:
    """Output of the network pruned by its L-map from hidden layer ``start`` (1-based, SPEC.md
    sec. 1): the activations of layers start, start+1, ..., L-1 are replaced by the identity,
    biases and batch-norm affine maps kept, so layers start..L act as one affine map of
    ``x^(start-1)`` (Zhao-B fig. 3h: "pruning accuracy as a function of the starting layer").
    ``start = 1`` linearizes the whole network; ``start = L`` leaves it unchanged."""
    return run_chain(layers, x, linear_from=start - 1)


def lmap_pruned_outputs(layers: Sequence[ChainLayer], x: torch.Tensor) -> list[torch.Tensor]:
    """``lmap_pruned_output`` for every start layer 1..L-1 at once: the network runs once, and
    each pruned tail starts from the stored ``x^(start-1)`` (with the earlier outputs its
    residual skips read)."""
    outputs = run_chain(layers, x, collect=True)
    stored = {-1: x, **dict(enumerate(outputs))}
    pruned = []
    for first in range(len(layers) - 1):  # start layer = first + 1
        earlier = {index: value for index, value in stored.items() if index < first - 1}
        pruned.append(run_chain(layers, stored[first - 1], first=first, linear_from=first, earlier=earlier))
    return pruned


def lmap_pruning_accuracy(
    layers: Sequence[ChainLayer],
    x: torch.Tensor,
    y: torch.Tensor,
    start: int,
    predict: Callable = argmax_prediction,
) -> float:
    """Accuracy of ``lmap_pruned_output`` on (x, y)."""
    return accuracy(lmap_pruned_output(layers, x, start), y, predict)


@dataclass(frozen=True)
class LeastSquaresMap:
    """``output ~ features @ coefficients + intercept``, fitted by least squares."""

    coefficients: torch.Tensor  # (N, K)
    intercept: torch.Tensor  # (K,)

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.coefficients + self.intercept


def fit_least_squares(features: torch.Tensor, targets: torch.Tensor) -> LeastSquaresMap:
    """The linear perceptron (LP) of Zhao-A: the affine map of least squared error from
    ``features`` (P, N) to ``targets`` (P, K), minimum-norm when underdetermined. Solved by the
    pseudo-inverse in float64 (on the tensors' device) so near-collinear features stay exact."""
    wide = torch.float32 if features.device.type == "mps" else torch.float64  # mps has no float64
    design = torch.cat([features.to(wide), torch.ones(len(features), 1, dtype=wide, device=features.device)], 1)
    solution = torch.linalg.pinv(design) @ targets.to(wide)  # (N + 1, K)
    return LeastSquaresMap(solution[:-1].to(features.dtype), solution[-1].to(features.dtype))


def lp_pruning_accuracies(
    layers: Sequence[ChainLayer],
    x_fit: torch.Tensor,
    evaluations: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    predict: Callable = argmax_prediction,
) -> dict[str, list[float]]:
    """LP pruning accuracy for every start layer l = 1..L (Zhao-A fig. 3a, SPEC.md sec. 1): a
    least-squares map fitted on the training inputs ``x_fit`` from ``x^(l-1)`` to the network's
    output local fields ``h^(L)`` replaces layers l..L. ``l = 1`` reads the model input, ``l = L``
    the last hidden layer. Returns {name: [accuracy at l = 1, ..., L]} for each (x, y) in
    ``evaluations`` (e.g. train and test)."""
    fit_outputs = run_chain(layers, x_fit, collect=True)
    fit_features = [x_fit, *fit_outputs[:-1]]  # x^(0) .. x^(L-1)
    maps = [fit_least_squares(features, fit_outputs[-1]) for features in fit_features]
    result: dict[str, list[float]] = {}
    for name, (x, y) in evaluations.items():
        features = [x, *run_chain(layers, x, collect=True)[:-1]]
        result[name] = [accuracy(lp(f), y, predict) for lp, f in zip(maps, features)]
    return result
