"""Local learning coefficient (LLC), through the devinterp library (optional extra ``llc``).

The LLC (Lau et al. 2023) is the effective dimension singular learning theory assigns to the
neighbourhood of the current weights w*: ``lambda_hat = n beta (E_w[L_n(w)] - L_n(w*))``, the
expectation over a tempered posterior ``exp(-n beta L_n(w) - gamma/2 |w - w*|^2)`` sampled by
SGLD chains started at w*. A regular model with d parameters has lambda = d / 2; degenerate
(singular) solutions have less. Developmental interpretability reads phase transitions of
training off drops and plateaus of the LLC, which makes it a progress measure to hold against
the seeds' measures. Sampling is devinterp's; this module only adapts a grokscope model and
split to it.

References: Lau, Furman, Wang, Murfet, Wei, "The local learning coefficient" (2023);
devinterp (Timaeus), https://github.com/timaeus-research/devinterp.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from grokscope.errors import ConfigError
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec
from grokscope.train.objective import Objective

PerSampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(outputs (B, ...), targets (B, ...)) -> per-sample losses (B,)."""


def require_devinterp():
    """devinterp's ``sample`` and ``compute_llc``, or one ConfigError line saying how to get them."""
    try:
        from devinterp.slt.llc import compute_llc
        from devinterp.slt.sampling import sample
    except ImportError:
        raise ConfigError(
            "probes: llc needs the optional devinterp library; install it with "
            "pip install 'grokscope[llc]' (or pip install devinterp)"
        ) from None
    return sample, compute_llc


class _IndexRows(torch.utils.data.Dataset):
    """Sample indices dressed as devinterp's two-token ``input_ids`` (its loss is per token)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.tensor([index, 0])}


def estimate_llc(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    per_sample_loss: PerSampleLoss,
    *,
    lr: float,
    localization: float,
    nbeta: float | None = None,
    chains: int = 2,
    draws: int = 100,
    burnin: int = 0,
    batch_size: int | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std over chains) of devinterp's LLC estimate at ``model``'s current weights for
    the loss ``mean_i per_sample_loss(model(x_i), y_i)``. ``nbeta`` defaults to devinterp's
    ``batch / ln(batch)``; ``batch_size`` None is full batch. The model is not changed (devinterp
    samples on a copy)."""
    sample, compute_llc = require_devinterp()
    n = len(x)
    batch = n if batch_size is None else min(batch_size, n)
    nbeta = batch / math.log(batch) if nbeta is None else nbeta
    device = next(model.parameters()).device

    def loss_fn(sampled: torch.nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
        rows = input_ids[:, 0].to(x.device)
        return per_sample_loss(sampled(x[rows]), y[rows])[:, None]  # (B, 1): one "token"

    # devinterp draws its progress bars on stderr: keep training's output readable
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stderr(io.StringIO()):
        samples = sample(
            model,
            _IndexRows(n),
            {},
            lr=lr,
            n_beta=nbeta,
            localization=localization,
            num_chains=chains,
            num_draws=draws,
            num_burnin_steps=burnin,
            batch_size=batch,
            num_init_loss_batches=1 if batch == n else max(1, n // batch),
            init_seed=seed,
            device=str(device),
            output_path=Path(folder) / "samples.zarr",
            loss_fn=loss_fn,
        )
        result = compute_llc(samples)
        return float(result.llc_mean), float(result.llc_std)


def per_sample_loss(objective: Objective) -> PerSampleLoss:
    """Per-sample version of a run's objective: its mean over samples is ``objective.loss``."""
    if objective.loss_name == "cross_entropy":
        return lambda output, y: F.cross_entropy(output, y, reduction="none")
    return lambda output, y: (output - objective.targets(y, output.dtype)).pow(2).flatten(1).mean(dim=1)


class LLCSpec(ProbeSpec):
    """``llc/mean`` and ``llc/std`` (over chains): devinterp's local learning coefficient of the
    training loss at the current weights. Needs the optional devinterp library."""

    name: Literal["llc"] = "llc"
    lr: float = Field(1e-4, gt=0)
    """SGLD step size epsilon."""
    localization: float = Field(100.0, ge=0)
    """gamma: pull of the chains toward the current weights."""
    nbeta: float | None = Field(None, gt=0)
    """Inverse temperature n beta; None: batch / ln(batch) (devinterp's default)."""
    chains: int = Field(2, ge=1)
    """Independent SGLD chains."""
    draws: int = Field(100, ge=1)
    """SGLD steps per chain after burn-in (the estimate averages every step)."""
    burnin: int = Field(0, ge=0)
    """SGLD steps per chain before the draws."""
    batch_size: int | None = Field(None, ge=2)
    """SGLD minibatch; None: the whole (limited) training split."""
    samples: int | None = Field(None, ge=2)
    """Use only the first ``samples`` training samples; None: all."""


@PROBES.register(LLCSpec)
class LLC(Probe):
    """Local learning coefficient of the training loss (sparse cadence: each call runs
    ``chains x (burnin + draws)`` SGLD steps)."""

    default_cadence = "sparse"
    cost = "costly"

    def __init__(self, spec: LLCSpec) -> None:
        require_devinterp()  # fail when the run is built, not at the first measurement
        super().__init__(spec)
        self.spec: LLCSpec = spec

    def __call__(self, context: ProbeContext) -> ProbeOutput:
        x, y = context.data("train")
        if self.spec.samples is not None:
            x, y = x[: self.spec.samples], y[: self.spec.samples]
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=context.generator("llc")))
        mean, std = estimate_llc(
            context.model,
            x,
            y,
            per_sample_loss(context.objective),
            lr=self.spec.lr,
            localization=self.spec.localization,
            nbeta=self.spec.nbeta,
            chains=self.spec.chains,
            draws=self.spec.draws,
            burnin=self.spec.burnin,
            batch_size=self.spec.batch_size,
            seed=seed,
        )
        return {"llc/mean": mean, "llc/std": std}
