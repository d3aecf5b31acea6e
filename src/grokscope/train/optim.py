"""Optimizers with parameter groups by role (embeddings / decoder / last layer / other)."""

from __future__ import annotations

from typing import Literal

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


def _group_key(role: str, spec: OptimizerSpec) -> str:
    if role in spec.groups:
        return role
    if role == "last_layer" and "decoder" in spec.groups:
        return "decoder"
    return "default"


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
    if spec.name == "sgd":
        return torch.optim.SGD(param_groups, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov)
    optimizer = torch.optim.AdamW if spec.name == "adamw" else torch.optim.Adam
    return optimizer(param_groups, lr=spec.lr, betas=spec.betas, eps=spec.eps)
