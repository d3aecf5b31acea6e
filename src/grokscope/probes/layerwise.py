"""Probes that read a network the way the layerwise linear theory does (Layerwise sec. 4-5).

- ``linear_modes``: the end-to-end map ``M = W_L ... W_1`` of a network whose trace is a chain
  of identity-activation layers without biases (linear and diagonal linear networks), read in
  the modes of the teacher: for a scalar output each input coordinate is a mode,
  ``modes/<i> = M[0, i]`` (the theta_i or a_i b_i of Layerwise eqs. 9-10); for a matrix teacher
  ``U diag(s) V^T``, ``modes/<k> = U_k^T M V_k`` (eq. 12, Saxe et al. 2014). These are the
  quantities the closed forms of ``theory.layerwise`` predict; ``modes/off`` is the Frobenius
  norm of what the modes leave out.
- ``skills``: per-task test accuracy (classification) or per-task skill strength
  ``E[y f(x)] / E[y^2]`` over the samples of each task (regression) on multitask sparse parity,
  to watch skills emerge one by one (Layerwise sec. 4.3, Nam et al. 2024).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from grokscope.errors import ConfigError
from grokscope.models.base import Trace
from grokscope.probes.base import PROBES, Probe, ProbeContext, ProbeOutput, ProbeSpec


class LinearModesSpec(ProbeSpec):
    """``modes/<k>``: strength of each teacher mode in the network's end-to-end linear map."""

    name: Literal["linear_modes"] = "linear_modes"


def end_to_end(trace: Trace) -> torch.Tensor:
    """``W_L ... W_1`` (out, in) of a chain of linear layers; ConfigError for anything else."""
    product = None
    for record in trace.layers:
        if record.activation != "identity" or record.bias is not None or record.batch_norm is not None:
            raise ConfigError("probes: linear_modes needs a linear network (identity activations, no biases)")
        product = record.weight if product is None else record.weight @ product
    if product is None or not trace.sequential:
        raise ConfigError("probes: linear_modes needs a sequential chain of linear layers")
    return product


def teacher_modes(context: ProbeContext) -> tuple[np.ndarray, np.ndarray]:
    """Left and right mode vectors (out, r), (in, r): the input coordinates for a scalar output,
    else the singular vectors of the teacher (task metadata ``teacher``, or the training
    input-output correlation when the task has none)."""
    teacher = context.task.metadata.get("teacher")
    if teacher is None:
        x, y = context.data("train")
        teacher = (y.T.double() @ x.flatten(1).double() / len(x)).cpu().numpy()
    teacher = np.atleast_2d(teacher)
    if teacher.shape[0] == 1:
        return np.ones((1, teacher.shape[1])), np.eye(teacher.shape[1])
    U, s, Vt = np.linalg.svd(teacher, full_matrices=False)
    keep = s > 1e-12 * max(s.max(), 1e-300)
    return U[:, keep], Vt[keep].T


@PROBES.register(LinearModesSpec)
class LinearModes(Probe):
    """Mode strengths ``U_k^T M V_k`` of the end-to-end map (Layerwise eqs. 9, 12)."""

    @torch.no_grad()
    def __call__(self, context: ProbeContext) -> ProbeOutput:
        M = end_to_end(context.trace("train", limit=1)).double().cpu().numpy()
        U, V = teacher_modes(context)
        strengths = np.einsum("or,oi,ir->r", U, M, V)
        output: ProbeOutput = {f"modes/{k}": float(u) for k, u in enumerate(strengths)}
        output["modes/off"] = float(np.linalg.norm(M - (U * strengths) @ V.T))
        return output


class SkillsSpec(ProbeSpec):
    """``skills/<t>``: test accuracy (or skill strength, for regression) of each task t."""

    name: Literal["skills"] = "skills"
    split: Literal["train", "test"] = "test"
    """Split measured (the parity task's test set has equal counts per task by default)."""


@PROBES.register(SkillsSpec)
class Skills(Probe):
    """Per-task performance on a multitask task (metadata ``<split>_task``)."""

    @torch.no_grad()
    def __call__(self, context: ProbeContext) -> ProbeOutput:
        key = f"{self.spec.split}_task"
        if key not in context.task.metadata:
            raise ConfigError(f"probes: skills needs a multitask task with metadata '{key}' (e.g. sparse_parity)")
        tasks = np.asarray(context.task.metadata[key])
        output_tensor = context.outputs(self.spec.split)
        _, y = context.data(self.spec.split)
        if context.objective.has_accuracy:
            score = context.objective.correct(output_tensor, y).double().cpu().numpy()
        else:  # regression on +-1: the skill strength u_t = E[y f] / E[y^2] (1 when learned)
            score = (y.double() * output_tensor.double()).sum(dim=1).cpu().numpy() / (y.double() ** 2).sum(
                dim=1
            ).cpu().numpy()
        return {f"skills/{t}": float(score[tasks == t].mean()) for t in np.unique(tasks)}
