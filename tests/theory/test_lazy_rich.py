"""Tangent kernel of two-layer linear networks and the lazy/rich map (Layerwise appendix G)."""

import numpy as np
import torch

from grokscope.measures.ntk import empirical_ntk
from grokscope.theory.lazy_rich import lazy_rich_map, linear_network_ntk


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
