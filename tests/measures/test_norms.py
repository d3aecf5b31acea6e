"""Weight norms: a 3-4-5 triangle, and a stack of models equal to each model alone."""

import math

import pytest
import torch

from grokscope.measures.norms import parameter_norms, stacked_parameter_norms


def test_norms_of_a_known_model():
    total, per_module = parameter_norms(
        {"a.weight": torch.tensor([[3.0]]), "a.bias": torch.tensor([4.0]), "b.weight": torch.tensor([[12.0]])}
    )
    assert per_module == {"a": 5.0, "b": 12.0}
    assert total == 13.0


def test_stacked_norms_equal_each_model_alone():
    generator = torch.Generator().manual_seed(0)
    stacks = {
        "layer.weight": torch.randn(5, 7, 3, generator=generator),
        "layer.bias": torch.randn(5, 7, generator=generator),
        "scale": torch.randn(5, generator=generator),  # a scalar parameter, stacked
    }
    total, per_module = stacked_parameter_norms(stacks)
    assert total.shape == (5,)
    for model in range(5):
        alone_total, alone = parameter_norms({name: stack[model] for name, stack in stacks.items()})
        assert total[model] == pytest.approx(alone_total, rel=1e-12)
        for module, norm in alone.items():
            assert per_module[module][model] == pytest.approx(norm, rel=1e-12)
    expected = math.sqrt(sum(float(s[2].double().pow(2).sum()) for s in stacks.values()))
    assert total[2] == pytest.approx(expected, rel=1e-12)
