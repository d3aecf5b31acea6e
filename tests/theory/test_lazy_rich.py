"""Tangent kernel of two-layer linear networks and the lazy/rich map (Layerwise appendix G)."""

import numpy as np
import pytest
import torch

from grokscope.measures.ntk import empirical_ntk
from grokscope.theory.lazy_rich import lazy_rich_map, linear_network_ntk, ntk_path


def test_closed_form_kernel_equals_autograd_kernel():
    rng = np.random.default_rng(0)
    W1, W2, X = rng.standard_normal((3, 4)), rng.standard_normal((2, 3)), rng.standard_normal((5, 4))
    network = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False), torch.nn.Linear(3, 2, bias=False)).double()
    with torch.no_grad():
        network[0].weight.copy_(torch.from_numpy(W1))
        network[1].weight.copy_(torch.from_numpy(W2))
    np.testing.assert_allclose(
        empirical_ntk(network, torch.from_numpy(X), "full").numpy(), linear_network_ntk(W1, W2, X), atol=1e-12
    )


def test_balanced_small_start_is_rich_and_strong_imbalance_is_lazy():
    result = lazy_rich_map([-8.0, 0.0, 8.0], [0.05], time=60.0)
    lazy_neg, rich, lazy_pos = result.kernel_distance[:, 0]
    assert rich > 0.1
    assert max(lazy_neg, lazy_pos) < 0.01 * rich
    assert np.all(result.final_loss < 0.01)


def test_ntk_path_starts_at_zero_distance_and_full_loss_and_heavy_output_funnel_stays_lazy():
    times = np.concatenate([[0.0], np.geomspace(1e-2, 30.0, 12)])
    lazy = ntk_path(12, 4, 2, 0.03, 3.0, times)  # heavy output layer of a funnel: only W1 learns
    assert abs(lazy.kernel_distance[0]) < 1e-12
    assert lazy.relative_loss[-1] < 1e-8 and lazy.kernel_distance[-1] < 1e-3
    rich = ntk_path(12, 4, 2, 0.1, 0.1, times)  # small balanced start: the kernel moves as it learns
    assert rich.relative_loss[0] == pytest.approx(1.0, abs=0.02)  # f(0) ~ 0.01: the loss of f = 0
    assert rich.kernel_distance[-1] > 0.1 and rich.relative_loss[-1] < 1e-8
