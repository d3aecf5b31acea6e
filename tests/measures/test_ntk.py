"""Kernel distance (Fort et al. 2020) and the empirical NTK."""

import numpy as np
import pytest
import torch

from grokscope.measures.ntk import empirical_ntk, kernel_distance


def test_kernel_distance_known_values():
    K = np.random.default_rng(0).standard_normal((6, 6))
    K = K @ K.T
    assert kernel_distance(K, 3.7 * K) == pytest.approx(0.0, abs=1e-12)
    orthogonal = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    assert kernel_distance(*orthogonal) == pytest.approx(1.0)
    assert 0 < kernel_distance(K, np.eye(6)) < 1
    with pytest.raises(ValueError):
        kernel_distance(np.zeros((2, 2)), np.eye(2))


def test_ntk_of_a_linear_model_is_the_gram_matrix():
    # f(x) = w . x + b: gradient (x, 1), so K = X X^T + 1
    model = torch.nn.Linear(3, 1).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    expected = x @ x.T + 1
    torch.testing.assert_close(empirical_ntk(model, x), expected)
    full = empirical_ntk(torch.nn.Linear(3, 2).double(), x, "full")
    assert full.shape == (10, 10)
    # outputs are independent: the cross-output blocks vanish, each diagonal block is X X^T + 1
    blocks = full.reshape(5, 2, 5, 2)
    torch.testing.assert_close(blocks[:, 0, :, 1], torch.zeros(5, 5, dtype=torch.float64))
    torch.testing.assert_close(blocks[:, 1, :, 1], expected)


def test_ntk_reads_token_inputs_and_ignores_frozen_parameters():
    embedding = torch.nn.Embedding(4, 2).double()
    embedding.weight.requires_grad_(False)
    model = torch.nn.Sequential(embedding, torch.nn.Flatten(), torch.nn.Linear(4, 1).double())
    tokens = torch.tensor([[0, 1], [2, 3], [1, 1]])
    features = embedding(tokens).flatten(1)
    torch.testing.assert_close(empirical_ntk(model, tokens), features @ features.T + 1)
