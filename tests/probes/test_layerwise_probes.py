"""linear_modes and skills probes on the catalogue's linear networks and sparse parity."""

import numpy as np
import pytest
import torch

from grokscope.errors import ConfigError
from grokscope.models.base import build_model
from grokscope.models.linear import DiagonalLinearSpec, LinearNetworkSpec
from grokscope.models.mlp import MLPSpec
from grokscope.probes.base import ProbeContext
from grokscope.probes.layerwise import LinearModes, LinearModesSpec, Skills, SkillsSpec
from grokscope.tasks.base import build_task
from grokscope.tasks.parity import SparseParitySpec
from grokscope.tasks.regression import TeacherStudentSpec
from grokscope.train.objective import Objective


def context(model, task, loss="mse"):
    return ProbeContext(model, task, Objective(task, loss), step=0, seed=0)


def test_modes_of_a_diagonal_network_are_the_products_a_b():
    task = build_task(TeacherStudentSpec(input_dim=3, scales=[3.0, 2.0, 1.0], n_train=50))
    model = build_model(DiagonalLinearSpec(init="gaussian", init_scale=0.5), task)
    output = LinearModes(LinearModesSpec())(context(model, task))
    expected = (model.a * model.b).detach().double().numpy()
    np.testing.assert_allclose([output[f"modes/{k}"] for k in range(3)], expected, rtol=1e-6)
    assert output["modes/off"] < 1e-6  # a diagonal map lies in the span of the diagonal modes


def test_modes_of_a_network_equal_to_its_teacher_are_the_singular_values():
    task = build_task(TeacherStudentSpec(input_dim=4, output_dim=3, scales=[2.0, 1.0], rotate=True, n_train=50))
    model = build_model(LinearNetworkSpec(widths=[4]), task)
    teacher = torch.from_numpy(task.metadata["teacher"]).float()
    with torch.no_grad():
        model.linears[0].weight.copy_(torch.eye(4))
        model.linears[1].weight.copy_(teacher)
    output = LinearModes(LinearModesSpec())(context(model, task))
    assert [output["modes/0"], output["modes/1"]] == pytest.approx([2.0, 1.0], rel=1e-5)
    mlp = build_model(MLPSpec(width=4), task)
    with pytest.raises(ConfigError, match="linear network"):
        LinearModes(LinearModesSpec())(context(mlp, task))


def test_skill_strength_of_the_prebuilt_skill_model():
    task = build_task(
        SparseParitySpec(n_tasks=3, n_bits=6, k=2, n_train=200, n_test=300, encoding="skills", targets="signed")
    )
    model = build_model(DiagonalLinearSpec(init="constant", init_scale=1.0), task)
    with torch.no_grad():  # skill t learned to strength u_t = a_t b_t
        model.a.copy_(torch.tensor([1.0, 0.5, 0.0]))
        model.b.copy_(torch.tensor([1.0, 1.0, 1.0]))
    output = Skills(SkillsSpec())(context(model, task))
    assert [output[f"skills/{t}"] for t in range(3)] == pytest.approx([1.0, 0.5, 0.0])
