"""Loss and accuracy for a task: cross-entropy, MSE on scaled one-hots or on target vectors."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch.func import vmap

from grokscope.tasks.base import Task

LossName = Literal["cross_entropy", "mse"]


class Objective:
    """What the trainer minimizes and how a prediction counts as correct.

    - ``cross_entropy``: softmax cross-entropy on class ids.
    - ``mse``: mean over samples and outputs of the squared error to ``target_scale * one_hot(y)``,
      or to ``target_vectors[y]`` when the task defines them (Liu's regression to random
      vectors), or to ``y`` itself for regression tasks.

    Accuracy is argmax == y, or nearest target vector == y (Liu sec. 3); regression tasks have none.
    """

    def __init__(self, task: Task, loss: LossName, target_scale: float = 1.0) -> None:
        self.loss_name = loss
        self.target_scale = target_scale
        self.kind = task.kind
        self.n_classes = task.n_classes
        self.target_vectors = task.target_vectors
        if loss == "cross_entropy" and (task.kind != "classification" or task.target_vectors is not None):
            raise ValueError("cross_entropy needs a classification task with class outputs; use mse")

    def to(self, device: torch.device) -> Objective:
        if self.target_vectors is not None:
            self.target_vectors = self.target_vectors.to(device)
        return self

    def targets(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Regression targets for labels ``y`` (MSE only)."""
        if self.kind == "regression":
            return y
        if self.target_vectors is not None:
            return self.target_vectors[y]
        return F.one_hot(y, self.n_classes).to(dtype) * self.target_scale

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "cross_entropy":
            return F.cross_entropy(output, y)
        return F.mse_loss(output, self.targets(y, output.dtype))

    def losses(self, outputs: torch.Tensor, y: torch.Tensor, shared: bool) -> torch.Tensor:
        """``loss`` of each of several models at once (C,): ``outputs`` (C, N, ...) stacked along a
        leading axis of models, labels ``y`` shared by them (``shared``: (N, ...)) or each model's
        own (C, N, ...). MSE is written on the stack: the squared errors, then each model's mean,
        which reduces each model's row as the mean of one tensor does, so that each loss and its
        gradient are bitwise the model's alone (0.3 ms against vmap's 1 ms on 100 Liu toy models).
        Cross-entropy, and MSE targets that broadcast, are ``vmap``ped: cross-entropy then rounds
        otherwise than alone (``tests/train/test_objective.py``)."""
        if self.loss_name == "mse":
            target = self.targets(y, outputs.dtype)
            if target.shape == (outputs.shape[1:] if shared else outputs.shape):
                squares = F.mse_loss(outputs, target.expand_as(outputs), reduction="none")
                return squares.flatten(1).mean(1)
        return vmap(self.loss, in_dims=(0, None if shared else 0))(outputs, y)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Predicted class ids (N,)."""
        if self.target_vectors is not None:
            return torch.cdist(output, self.target_vectors.to(output.dtype)).argmin(dim=1)
        return output.argmax(dim=1)

    def correct(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Boolean (N,) of correctly classified samples."""
        return self.predict(output) == y

    @property
    def has_accuracy(self) -> bool:
        return self.kind == "classification"
