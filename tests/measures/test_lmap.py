"""L-map, L-map pruning and LP pruning on networks whose answer is known by construction."""

from __future__ import annotations

import itertools

import pytest
import torch

from grokscope.measures.lmap import (
    ChainLayer,
    accuracy,
    batch_norm_affine,
    fit_least_squares,
    lmap_matrix,
    lmap_pruned_output,
    lmap_pruned_outputs,
    lmap_pruning_accuracy,
    lp_pruning_accuracies,
    run_chain,
)


def random_chain(widths, activation="tanh", batch_norm=False, seed=0, bias=True):
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for index, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        last = index == len(widths) - 2
        scale = shift = None
        if batch_norm and not last:
            scale = torch.rand(n_out, generator=generator, dtype=torch.float64) + 0.5
            shift = torch.randn(n_out, generator=generator, dtype=torch.float64)
        layers.append(
            ChainLayer(
                weight=torch.randn(n_out, n_in, generator=generator, dtype=torch.float64) / n_in**0.5,
                bias=torch.randn(n_out, generator=generator, dtype=torch.float64) if bias else None,
                scale=scale,
                shift=shift,
                activation="identity" if last else activation,
            )
        )
    return layers


def test_lmap_of_a_plain_network_is_the_product_of_its_weights():
    layers = random_chain([5, 7, 6, 4, 3])
    w = [layer.weight for layer in layers]
    torch.testing.assert_close(lmap_matrix(layers, 0), w[3] @ w[2] @ w[1])
    torch.testing.assert_close(lmap_matrix(layers, 1), w[3] @ w[2])
    torch.testing.assert_close(lmap_matrix(layers, 2), w[3])  # last hidden layer: W^(L)
    torch.testing.assert_close(lmap_matrix(layers, -1), w[3] @ w[2] @ w[1] @ w[0])


def test_lmap_with_batch_norm_is_the_product_of_d_w():
    layers = random_chain([5, 7, 6, 4, 3], batch_norm=True)
    dw = [torch.diag(layer.scale) @ layer.weight if layer.scale is not None else layer.weight for layer in layers]
    torch.testing.assert_close(lmap_matrix(layers, 0), dw[3] @ dw[2] @ dw[1])
    torch.testing.assert_close(lmap_matrix(layers, 1), dw[3] @ dw[2])


def test_batch_norm_affine_matches_torch_eval_mode():
    norm = torch.nn.BatchNorm1d(4).double()
    with torch.no_grad():
        norm.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        norm.running_var.copy_(torch.tensor([0.25, 4.0, 1.0, 9.0]))
        norm.weight.copy_(torch.tensor([1.0, 2.0, -0.5, 3.0]))
        norm.bias.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    norm.eval()
    h = torch.randn(10, 4, dtype=torch.float64)
    scale, shift = batch_norm_affine(norm.running_mean, norm.running_var, norm.weight, norm.bias, norm.eps)
    torch.testing.assert_close(h * scale + shift, norm(h).detach())


def test_residual_lmap_equals_the_jacobian_of_the_linearized_tail():
    # hidden layers 0..3, output 4; layer 2 adds the output of layer 0 (skip every two layers)
    layers = random_chain([5, 6, 6, 6, 6, 3], activation="relu", batch_norm=True, seed=3)
    layers[2] = ChainLayer(layers[2].weight, layers[2].bias, layers[2].scale, layers[2].shift, "relu", skip_from=0)
    dw = [torch.diag(layer.scale) @ layer.weight if layer.scale is not None else layer.weight for layer in layers]
    # linearized tail from x^(0): x1 = DW1 x0; x2 = DW2 x1 + x0; x3 = DW3 x2; out = W4 x3
    expected = dw[4] @ dw[3] @ (dw[2] @ dw[1] + torch.eye(6, dtype=torch.float64))
    torch.testing.assert_close(lmap_matrix(layers, 0), expected)

    def tail(x0):  # the same tail, with biases, through autograd
        return run_chain(layers, x0.unsqueeze(0), first=1, linear_from=1)[0]

    jacobian = torch.func.jacrev(tail)(torch.randn(6, dtype=torch.float64))
    torch.testing.assert_close(lmap_matrix(layers, 0), jacobian)
    # a later layer: its tail has no skip, the plain product
    torch.testing.assert_close(lmap_matrix(layers, 2), dw[4] @ dw[3])


def test_deep_linear_network_prunes_exactly_at_every_start_layer():
    layers = random_chain([6, 8, 8, 8, 4], activation="identity", batch_norm=True, seed=1)
    x = torch.randn(200, 6, dtype=torch.float64)
    output = run_chain(layers, x)
    y = output.argmax(1).clone()
    y[:50] = (y[:50] + 1) % 4  # a network that is wrong on a quarter of the samples
    own = accuracy(output, y)
    assert own == pytest.approx(0.75)
    for start in range(1, len(layers) + 1):
        torch.testing.assert_close(lmap_pruned_output(layers, x, start), output)
        assert lmap_pruning_accuracy(layers, x, y, start) == own
    x_test = torch.randn(100, 6, dtype=torch.float64)
    y_test = torch.randint(0, 4, (100,))
    lp = lp_pruning_accuracies(layers, x, {"train": (x, y), "test": (x_test, y_test)})
    assert lp["train"] == [own] * len(layers)
    assert lp["test"] == [accuracy(run_chain(layers, x_test), y_test)] * len(layers)


def test_least_squares_map_recovers_an_affine_map_exactly():
    features = torch.randn(50, 4, dtype=torch.float64)
    a, b = torch.randn(4, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    lp = fit_least_squares(features, features @ a + b)
    torch.testing.assert_close(lp.coefficients, a)
    torch.testing.assert_close(lp.intercept, b)


def hand_set_network():
    """x -> (relu(x), relu(-x)) -> relu(identity) -> logits (1.5, r1 + r2): class 1 iff |x| > 1.5.

    Linearized from layer 1, r1 + r2 = x - x = 0, so every sample is predicted class 0; layer 2
    only sees non-negative inputs, so linearizing it changes nothing."""
    t = torch.tensor
    return [
        ChainLayer(t([[1.0], [-1.0]]), t([0.0, 0.0]), activation="relu"),
        ChainLayer(t([[1.0, 0.0], [0.0, 1.0]]), t([0.0, 0.0]), activation="relu"),
        ChainLayer(t([[0.0, 0.0], [1.0, 1.0]]), t([1.5, 0.0])),
    ]


def test_hand_set_nonlinear_network_has_the_pruning_accuracy_computed_by_hand():
    layers = hand_set_network()
    x = torch.tensor([[-2.0], [-1.0], [0.5], [1.0], [3.0]])
    y = torch.tensor([1, 0, 0, 0, 1])
    assert accuracy(run_chain(layers, x), y) == 1.0
    # start 1: all linear -> every logit pair is (1.5, 0) -> class 0 -> 3 of 5 right
    assert lmap_pruning_accuracy(layers, x, y, 1) == pytest.approx(0.6)
    assert lmap_pruning_accuracy(layers, x, y, 2) == 1.0
    assert lmap_pruning_accuracy(layers, x, y, 3) == 1.0
    # LP from the input: a line cannot separate |x| > 1.5; from x^(1) = (relu x, relu -x) it can
    lp = lp_pruning_accuracies(layers, x, {"train": (x, y)})["train"]
    assert lp[0] < 1.0 and lp[1] == 1.0 and lp[2] == 1.0


def test_replica_dimensions_run_as_independent_networks():
    layers = random_chain([3, 4, 2], seed=2)
    x = torch.randn(7, 3, dtype=torch.float64)
    stacked = [
        ChainLayer(
            torch.stack([layer.weight, 2 * layer.weight]),
            torch.stack([layer.bias, layer.bias]),
            activation=layer.activation,
        )
        for layer in layers
    ]
    doubled = [ChainLayer(2 * layer.weight, layer.bias, activation=layer.activation) for layer in layers]
    both = run_chain(stacked, x)
    torch.testing.assert_close(both[0], run_chain(layers, x))
    torch.testing.assert_close(both[1], run_chain(doubled, x))


def test_pruned_outputs_of_every_start_layer_at_once_match_one_by_one():
    layers = random_chain([5, 6, 6, 6, 6, 3], activation="relu", batch_norm=True, seed=4)
    layers[2] = ChainLayer(layers[2].weight, layers[2].bias, layers[2].scale, layers[2].shift, "relu", skip_from=0)
    x = torch.randn(20, 5, dtype=torch.float64)
    together = lmap_pruned_outputs(layers, x)
    assert len(together) == len(layers) - 1
    for start, output in enumerate(together, start=1):
        torch.testing.assert_close(output, lmap_pruned_output(layers, x, start))
    assert not torch.allclose(together[0], together[-1])  # linearizing does change this network
