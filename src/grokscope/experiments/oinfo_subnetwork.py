"""The synergistic sub-network test (O-info sec. 7): are the neurons of the most synergistic
multiplet at the emergence phase the ones that generalize?

From a trained run with the O-info probe: take the step of peak synergy before generalization
(the emergence phase), rebuild the weights of that step by replaying the run (training is
deterministic on CPU), find the max-synergy multiplet there with the probe's own settings (bins,
orders), and continue training three copies
of that checkpoint with a fresh optimizer: the *sub-network* (only the multiplet's neurons; every
other hidden neuron zeroed and frozen), its *inverse* (only the other neurons) and the *full*
model. Masks are torch parametrizations ``W -> W * mask`` on the hidden layer's incoming weights
and bias and the next layer's outgoing weights, so a masked neuron is silent and stays silent
whatever the optimizer does.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from grokscope.config import RunConfig, merge, parse_config
from grokscope.errors import ConfigError
from grokscope.measures.oinfo import layer_oinfo
from grokscope.models.base import TracedModel
from grokscope.probes.base import eval_mode
from grokscope.report.figures import COLORS, plt, save
from grokscope.report.oinfo import oinfo_timeline
from grokscope.runner import Experiment, Run, run
from grokscope.train.trainer import Callback, Trainer


class Mask(nn.Module):
    """Parametrization ``W -> W * mask`` (the mask is a buffer, so it moves with the model)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


def _owner(model: nn.Module, tensor: torch.Tensor) -> tuple[nn.Module, str]:
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if parameter is tensor:
                return module, name
    raise ConfigError("sub-network: a traced layer's weight is not a parameter of the model")


def keep_hidden_neurons(model: TracedModel, layer: int, keep: torch.Tensor, sample: torch.Tensor) -> None:
    """Silence every neuron of hidden layer ``layer`` whose ``keep`` entry (bool, (n,)) is False:
    its incoming weights and bias and its outgoing weights in the next layer are zeroed and
    masked by parametrizations, so they stay zero through training. ``sample`` is any model
    input (one forward pass finds the layer's parameters through the trace protocol)."""
    with torch.no_grad(), eval_mode(model):
        trace = model.trace(sample)
    if not trace.sequential or any(record.skip_from is not None for record in trace.layers):
        raise ConfigError("sub-network: needs a plain sequential model (no residual connections)")
    record, consumer = trace.layers[layer], trace.layers[layer + 1]
    keep = keep.to(record.weight.device)
    masks = [
        (record.weight, keep[:, None].expand_as(record.weight)),  # incoming: rows of this layer
        (consumer.weight, keep[None, :].expand_as(consumer.weight)),  # outgoing: columns of the next
    ]
    if record.bias is not None:
        masks.append((record.bias, keep))
    for tensor, mask in masks:
        module, name = _owner(model, tensor)
        mask = mask.to(tensor.dtype).contiguous()
        with torch.no_grad():
            tensor.mul_(mask)
        parametrize.register_parametrization(module, name, Mask(mask))


class StartFrom(Callback):
    """Before the first measurement, load ``weights`` and (optionally) keep only some neurons."""

    def __init__(self, weights: dict[str, torch.Tensor], layer: int = 0, keep: torch.Tensor | None = None) -> None:
        self.weights = weights
        self.layer = layer
        self.keep = keep

    def on_train_start(self, trainer: Trainer) -> None:
        trainer.model.load_state_dict(self.weights)
        if self.keep is not None:
            keep_hidden_neurons(trainer.model, self.layer, self.keep, trainer.task.x_train[:2])


def replay(config: RunConfig, steps: int) -> Experiment:
    """The experiment of ``config`` trained for its first ``steps`` updates (bitwise the run's
    weights at that step on CPU: same seed, same data order; on GPU up to nondeterminism)."""
    shortened = parse_config(merge(config.to_dict(), {"training": {"steps": steps}, "provenance": None}))
    experiment = Experiment(shortened)
    experiment.trainer(callbacks=[]).fit()
    return experiment


def emergence_step(base: Run) -> int:
    """Step of maximum synergy between step 1 and the generalization step (budget if none)."""
    rows = oinfo_timeline(base)
    horizon = base.summary.get("generalization_step") or base.summary.get("budget")
    rows = rows[rows["step"] <= horizon]
    if rows.empty:
        raise ConfigError(f"sub-network test: run {base.path} has no O-info measurements before step {horizon}")
    return int(rows.loc[rows["oinfo/synergy"].idxmax(), "step"])


def _arm(base: RunConfig, name: str, steps: int, out: Path, start: StartFrom) -> Run:
    config = parse_config(
        merge(
            base.to_dict(),
            {
                "name": name,
                "provenance": None,
                "training": {"steps": steps},
                "probes": [{"name": "loss_accuracy"}, {"name": "weight_norm"}],
            },
        )
    )
    # always retrained: an arm depends on the base run's checkpoint, which its own config does
    # not record, and masked checkpoints cannot be resumed into an unmasked model
    return run(config, out=out / name, force=True, progress=False, callbacks=[start])


def subnetwork_test(runs: dict[str, Run], out: Path, smoke: bool) -> dict[str, Any]:
    """Numbers of ``oinfo_subnetwork``: for each arm (sub, inverse, full) its generalization step
    counted from the checkpoint (inf if never), final and best test accuracy, and its neurons;
    the checkpoint step, and the synergy there (stored by the probe and recomputed on the replay,
    which must agree)."""
    base = runs["base"]
    probe = next((p for p in base.config.probes if p.name == "oinfo"), None)
    if probe is None:
        raise ConfigError(f"sub-network test: run {base.path.name} has no oinfo probe")
    step = emergence_step(base)
    experiment = replay(base.config, step)
    with torch.no_grad(), eval_mode(experiment.model):
        record = experiment.model.trace(experiment.task.x_train).hidden[probe.layer]
    signal = record.x if probe.signal == "x" else record.h
    result = layer_oinfo(signal.double().cpu().numpy(), probe.bins, 3, probe.max_order, probe.bias_correct)
    synergistic = torch.zeros(signal.shape[1], dtype=torch.bool)
    synergistic[result.neurons(result.synergy_bins)] = True
    weights = {k: v.clone() for k, v in experiment.model.state_dict().items()}
    remaining = max(1, base.config.training.steps - step)
    arms = {
        "sub": StartFrom(weights, probe.layer, synergistic),
        "inverse": StartFrom(weights, probe.layer, ~synergistic),
        "full": StartFrom(weights),
    }
    trained = {name: _arm(base.config, name, remaining, out, start) for name, start in arms.items()}
    stored = base.metrics.set_index("step").loc[step, "oinfo/synergy"]
    numbers: dict[str, Any] = {
        "checkpoint_step": step,
        "synergy_stored": float(stored),
        "synergy_replayed": -result.synergy,
        "neurons_sub": int(synergistic.sum()),
        "neurons_inverse": int((~synergistic).sum()),
        "bins_sub": len(result.synergy_bins),
    }
    for name, arm in trained.items():
        step_reached = arm.summary.get("generalization_step")
        numbers[f"gen_{name}"] = math.inf if step_reached is None else float(step_reached)
        numbers[f"final_{name}"] = float(arm.metrics["test/acc"].dropna().iloc[-1])
        numbers[f"best_{name}"] = float(arm.metrics["test/acc"].max())
    neurons = {"sub": numbers["neurons_sub"], "inverse": numbers["neurons_inverse"], "full": len(synergistic)}
    draw(base, trained, neurons, step, out / "figure.png")
    return numbers


def draw(base: Run, arms: dict[str, Run], neurons: dict[str, int], step: int, path: Path) -> list[Path]:
    """Test (solid) and train (dashed) accuracy of the three arms against steps since the
    checkpoint, with the original run's test curve shifted to the same origin (gray)."""
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    original = base.metrics[["step", "test/acc"]].dropna()
    original = original[original["step"] > step]
    axis.plot(original["step"] - step, original["test/acc"], color="gray", label="original run (test)")
    for index, (name, arm) in enumerate(arms.items()):
        metrics = arm.metrics[arm.metrics["step"] >= 1]
        label = f"{name}, {neurons[name]} neurons"
        axis.plot(metrics["step"], metrics["test/acc"], color=COLORS[index], label=f"{label} (test)")
        axis.plot(metrics["step"], metrics["train/acc"], color=COLORS[index], linestyle="--", alpha=0.6)
    axis.set_xscale("log")
    axis.set_xlabel(f"steps after the checkpoint at step {step} (dashed: train)")
    axis.set_ylabel("accuracy")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title("synergistic sub-network, its inverse and the full model (O-info fig. 6)", fontsize=10)
    return save(figure, path)
