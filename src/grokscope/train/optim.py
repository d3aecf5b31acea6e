"""Optimizers with parameter groups by role (embeddings / decoder / last layer / other)."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from grokscope.models.base import TracedModel
from grokscope.spec import Spec

Role = Literal["embeddings", "decoder", "last_layer", "other"]


class GroupSpec(Spec):
    """Overrides for the parameters of one role; unset fields take the optimizer's values."""

    lr: float | None = Field(None, gt=0)
    """Learning rate of this group."""
    weight_decay: float | None = Field(None, ge=0)
    """Weight decay of this group."""


class OptimizerSpec(Spec):
    """The optimizer and its hyperparameters."""

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    """``adamw`` (decoupled weight decay), ``adam`` (L2 added to the gradient) or ``sgd``."""
    lr: float = Field(1e-3, gt=0)
    """Learning rate."""
    weight_decay: float = Field(0.0, ge=0)
    """Weight decay (decoupled for adamw, L2 for adam and sgd)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam's moment decay rates."""
    eps: float = Field(1e-8, gt=0)
    """Adam's denominator guard."""
    momentum: float = Field(0.0, ge=0, lt=1)
    """SGD momentum."""
    nesterov: bool = False
    """Nesterov momentum for SGD."""
    groups: dict[Role, GroupSpec] = {}
    """Per-role lr and weight decay, e.g. ``{embeddings: {lr: 1e-3}, decoder: {lr: 1e-4}}``.
    A model tags its parameters with roles; ``decoder`` also covers ``last_layer`` parameters
    unless ``last_layer`` has its own entry."""
    weight_norm: Annotated[float, Field(gt=0)] | Literal["initial"] | None = None
    """Hold the L2 norm of all trainable parameters fixed (Omnigrok, Liu et al. 2022; O-info
    sec. 4): ``initial`` keeps the norm of the initialization, a number first rescales the
    initial weights to that norm. Re-imposed right after every optimizer step; None: free."""


def _group_key(role: str, spec: OptimizerSpec) -> str:
    if role in spec.groups:
        return role
    if role == "last_layer" and "decoder" in spec.groups:
        return "decoder"
    return "default"


# torch has a fused Adam / AdamW kernel for these devices (and every floating dtype)
_FUSED_DEVICES = ("cpu", "cuda")


def _fused_kernel_applies(params: list[torch.nn.Parameter]) -> bool | None:
    """True where torch's fused Adam kernel can step ``params``; None (torch's default) elsewhere.

    One implementation for every path: the batched ensemble steps its stacks with this kernel,
    and torch's default (a for-loop on CPU, ``foreach`` on CUDA) rounds differently, enough to
    move a cell that sits at a phase boundary across it over a long run. The kernel is also the
    faster of the three. The choice is saved with the optimizer's state, so a run checkpointed
    before grokscope made it resumes with the implementation it started with."""
    fused = all(p.device.type in _FUSED_DEVICES and p.is_floating_point() for p in params)
    return True if fused else None


def build_optimizer(model: TracedModel, spec: OptimizerSpec) -> torch.optim.Optimizer:
    """One torch optimizer whose param groups follow ``spec.groups`` (deterministic order)."""
    roles = model.param_roles()
    grouped: dict[str, list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            grouped.setdefault(_group_key(roles.get(name, "other"), spec), []).append(parameter)
    param_groups = []
    for key, params in grouped.items():
        override = spec.groups.get(key, GroupSpec())
        param_groups.append(
            {
                "params": params,
                "lr": spec.lr if override.lr is None else override.lr,
                "weight_decay": spec.weight_decay if override.weight_decay is None else override.weight_decay,
                "role": key,
            }
        )
    params = [p for group in param_groups for p in group["params"]]
    if spec.name == "sgd":
        optimizer = torch.optim.SGD(param_groups, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov)
    else:
        kind = torch.optim.AdamW if spec.name == "adamw" else torch.optim.Adam
        optimizer = kind(param_groups, lr=spec.lr, betas=spec.betas, eps=spec.eps, fused=_fused_kernel_applies(params))
    if spec.weight_norm is not None:
        constraint = WeightNormConstraint(params, None if spec.weight_norm == "initial" else spec.weight_norm)
        optimizer.register_step_post_hook(lambda *_: constraint.apply())
    return optimizer


class WeightNormConstraint:
    """Rescales a set of parameters so that their joint L2 norm ``sqrt(sum_p |p|^2)`` equals
    ``target`` (the norm they have now when None; then the current weights are kept as they are).

    Attached to the optimizer as a step post-hook, so it acts right after every
    ``optimizer.step()``. The target derives from the initialization alone (same seed, same
    target), so a resumed run re-imposes exactly the same norm.
    """

    def __init__(self, params: list[torch.nn.Parameter], target: float | None = None) -> None:
        self.params = params
        self.target = float(self.norm()) if target is None else float(target)
        if target is not None:
            self.apply()

    @torch.no_grad()
    def norm(self) -> torch.Tensor:
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p) for p in self.params]))

    @torch.no_grad()
    def apply(self) -> None:
        norm = self.norm()
        if norm > 0:
            factor = self.target / norm
            for p in self.params:
                p.mul_(factor)
