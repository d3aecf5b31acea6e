"""Attraction basins of the training samples in sample space and in weight space (Zhao-B sec.
II.D, Zhao-A sec. "Basic concepts", SPEC.md sec. 1).

- *Sample space*: inputs are mapped to [0, 1] with the minimum and maximum of the whole training
  set, Gaussian noise of standard deviation ``a`` is added, and the result is mapped back:
  ``x' = x + a (hi - lo) eps``. The curve is the fraction of noisy copies still classified as
  the original class, against ``a``.
- *Weight space*: every weight matrix and bias vector, each standardized by its own mean and
  (population) standard deviation, gets Gaussian noise of standard deviation ``a`` and is mapped
  back: ``W' = W + a std(W) eps``; the curve is the training accuracy of the perturbed network.
- *Basin size*: the amplitude where a curve first falls below a threshold, interpolated in
  log a: 0.5 (``size50``, Zhao-B) or half-way between the clean accuracy and chance
  (``size_half``).

Curves are measured on samples the network classifies correctly, averaged over trials; every
(amplitude, trial) copy runs in one batched forward pass (chunked to bound memory).

References: Zhao-B sec. II.D and figs. 4, 7; Zhao-A figs. 5-8.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from grokscope.measures.lmap import ChainLayer, argmax_prediction, run_chain
from grokscope.models.base import ACTIVATIONS

CHUNK_ELEMENTS = 2**24
"""Largest activation tensor (in elements) one batched pass of noisy copies may create."""


def log_amplitudes(low: float = 1e-4, high: float = 10.0, count: int = 20) -> torch.Tensor:
    """``count`` log-spaced noise amplitudes from ``low`` to ``high`` (float64)."""
    return torch.logspace(math.log10(low), math.log10(high), count, dtype=torch.float64)


def _chunks(total: int, per_copy: int) -> list[slice]:
    size = max(1, CHUNK_ELEMENTS // max(per_copy, 1))
    return [slice(i, min(i + size, total)) for i in range(0, total, size)]


def _predictions(output: torch.Tensor, predict: Callable) -> torch.Tensor:
    flat = predict(output.reshape(-1, output.shape[-1]))
    return flat.reshape(output.shape[:-1])


def sample_space_curves(
    layers: Sequence[ChainLayer],
    x: torch.Tensor,
    y: torch.Tensor,
    amplitudes: torch.Tensor,
    trials: int,
    generator: torch.Generator,
    low: float,
    high: float,
    predict: Callable = argmax_prediction,
    project_noise: bool = True,
) -> torch.Tensor:
    """Per-sample sample-space basin curves: (A, P) fraction of ``trials`` noisy copies of each
    sample x (P, D) still classified as y, for each amplitude. ``low``/``high`` are the minimum
    and maximum over the whole training set.

    When the input enters only through the first layer (no residual skip from the input), the
    noise is drawn directly in that layer's local-field space: ``W (x + s eps)`` with
    ``eps ~ N(0, I_D)`` has the distribution of ``W x + s U S g`` with ``W = U S V^T`` and
    ``g ~ N(0, I_r)``, r = rank <= min(D, N_1) — the same curve in expectation at a fraction of
    the cost for wide inputs (``project_noise=False`` adds the noise to the inputs themselves).
    """
    n_amplitudes, n_samples = len(amplitudes), len(x)
    scales = (amplitudes * (high - low)).to(x.dtype).to(x.device).repeat_interleave(trials)  # (A*T,)
    first = layers[0]
    hits = torch.zeros(n_amplitudes * trials, n_samples, device=x.device)
    if not project_noise or any(layer.skip_from == -1 for layer in layers):
        clean = None
    else:
        u, s, _ = torch.linalg.svd(first.weight, full_matrices=False)  # (N_1, r), (r,)
        noise_basis = u * s  # (N_1, r): W eps ~ noise_basis @ g
        clean = torch.matmul(x, first.weight.T) + (first.bias if first.bias is not None else 0)  # (P, N_1)
    width = max(layer.weight.shape[-2] for layer in layers)
    for part in _chunks(len(scales), n_samples * max(width, x.shape[1])):
        scale = scales[part].view(-1, 1, 1)
        if clean is None:
            noise = torch.randn((len(scale), *x.shape), generator=generator, device=x.device, dtype=x.dtype)
            output = run_chain(layers, x + scale * noise)
        else:
            g = torch.randn(
                (len(scale), n_samples, noise_basis.shape[1]), generator=generator, device=x.device, dtype=x.dtype
            )
            h = clean + scale * torch.matmul(g, noise_basis.T)  # (R, P, N_1), before batch norm
            if first.scale is not None:
                h = h * first.scale
            if first.shift is not None:
                h = h + first.shift
            output = run_chain(layers, ACTIVATIONS[first.activation](h), first=1)
        hits[part] = (_predictions(output, predict) == y).float()
    return hits.view(n_amplitudes, trials, n_samples).mean(1)


def weight_space_curves(
    layers: Sequence[ChainLayer],
    x: torch.Tensor,
    y: torch.Tensor,
    amplitudes: torch.Tensor,
    trials: int,
    generator: torch.Generator,
    predict: Callable = argmax_prediction,
) -> torch.Tensor:
    """Per-sample weight-space basin curves: (A, P) fraction of ``trials`` perturbed networks
    that still classify each sample x (P, D) as y. Each weight matrix and bias vector gets
    noise ``a * std * eps`` with its own population std (a tensor with zero spread, e.g. zero
    biases, is left as is); batch-norm statistics and affine parameters are not perturbed."""
    n_amplitudes, n_samples = len(amplitudes), len(x)
    scales = amplitudes.to(x.dtype).to(x.device).repeat_interleave(trials)  # (A*T,)
    hits = torch.zeros(n_amplitudes * trials, n_samples, device=x.device)
    width = max(layer.weight.shape[-2] for layer in layers)
    per_copy = max(n_samples * width, sum(layer.weight.numel() for layer in layers))
    for part in _chunks(len(scales), per_copy):
        scale = scales[part]
        noisy = [_perturbed(layer, scale, generator) for layer in layers]
        hits[part] = (_predictions(run_chain(noisy, x), predict) == y).float()
    return hits.view(n_amplitudes, trials, n_samples).mean(1)


def _perturbed(layer: ChainLayer, scale: torch.Tensor, generator: torch.Generator) -> ChainLayer:
    """``len(scale)`` copies of a layer with weight and bias noise ``scale * std * eps``."""

    def noisy(tensor: torch.Tensor) -> torch.Tensor:
        spread = tensor.std(correction=0)
        noise = torch.randn((len(scale), *tensor.shape), generator=generator, device=tensor.device, dtype=tensor.dtype)
        return tensor + (scale * spread).view(-1, *[1] * tensor.dim()) * noise

    return replace(layer, weight=noisy(layer.weight), bias=None if layer.bias is None else noisy(layer.bias))


def class_curves(per_sample: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Class-wise curves (K, A): the mean of per-sample curves (A, P) over each class's samples
    (NaN for a class without samples)."""
    one_hot = torch.nn.functional.one_hot(y, n_classes).to(per_sample.dtype)  # (P, K)
    sums = per_sample @ one_hot  # (A, K)
    counts = one_hot.sum(0)
    return (sums / counts).T


def basin_size(amplitudes: torch.Tensor, curve: torch.Tensor, threshold: float) -> float:
    """The amplitude where ``curve`` (A,) first falls below ``threshold``, interpolated linearly
    in log amplitude between the last point at or above it and the first below it. NaN when the
    curve starts below the threshold or never falls below it within the measured amplitudes."""
    below = (curve < threshold).nonzero()
    if len(below) == 0:
        return math.nan
    index = int(below[0])
    if index == 0:
        return math.nan
    a0, a1 = math.log(float(amplitudes[index - 1])), math.log(float(amplitudes[index]))
    c0, c1 = float(curve[index - 1]), float(curve[index])
    fraction = (c0 - threshold) / (c0 - c1)
    return math.exp(a0 + fraction * (a1 - a0))


def basin_sizes(amplitudes: torch.Tensor, curve: torch.Tensor, n_classes: int) -> dict[str, float]:
    """``size50`` (curve crosses 0.5, Zhao-B) and ``size_half`` (crosses half-way between the
    clean accuracy, 1 on correctly classified samples, and chance 1/K) of a mean curve."""
    return {
        "size50": basin_size(amplitudes, curve, 0.5),
        "size_half": basin_size(amplitudes, curve, 0.5 * (1.0 + 1.0 / n_classes)),
    }
