"""O-information: known answers for Gaussian data, the batched search, and the layer pipeline."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from grokscope.measures.oinfo import (
    copula_entropy,
    copula_normalize,
    entropy_bias,
    gaussian_entropy,
    layer_oinfo,
    multiplet_search,
    normalize_timeline,
    o_information,
)


def gaussian_o_information(cov: np.ndarray) -> float:
    """Exact O-information (bits) of a Gaussian with covariance ``cov``, from its definition."""
    n = cov.shape[0]

    def h(subset):
        subset = list(subset)
        return 0.5 * math.log2(np.linalg.det(2 * math.pi * math.e * cov[np.ix_(subset, subset)]))

    everything = range(n)
    return (n - 2) * h(everything) + sum(h([j]) - h([i for i in everything if i != j]) for j in everything)


def sample(cov: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).multivariate_normal(np.zeros(len(cov)), cov, size=n)


def test_copula_entropy_of_correlated_gaussian_matches_closed_form():
    r = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, -0.4], [0.3, -0.4, 1.0]])
    expected = 0.5 * math.log(np.linalg.det(2 * math.pi * math.e * r)) / math.log(2)  # bits
    assert gaussian_entropy(r) == pytest.approx(expected, abs=1e-12)
    assert copula_entropy(sample(r, 20000)) == pytest.approx(expected, abs=0.03)


def test_copula_entropy_is_invariant_to_monotone_transforms():
    x = sample(np.array([[1.0, 0.5], [0.5, 1.0]]), 2000)
    assert copula_entropy(np.exp(x) * 3 - 1) == pytest.approx(copula_entropy(x), abs=1e-12)


def test_bias_correction_removes_small_sample_bias():
    # the plug-in estimate from N = 20 samples is biased low; the Ince correction removes it
    cov = np.eye(3)
    truth = gaussian_entropy(cov)
    rng = np.random.default_rng(1)
    plain, corrected = [], []
    for _ in range(3000):
        x = rng.normal(size=(20, 3))
        estimate = np.cov(x, rowvar=False)
        plain.append(gaussian_entropy(estimate))
        corrected.append(gaussian_entropy(estimate, n_samples=20))
    bias_bits = entropy_bias(3, 20) / math.log(2)
    assert bias_bits < -0.2
    assert np.mean(plain) == pytest.approx(truth + bias_bits, abs=0.03)
    assert np.mean(corrected) == pytest.approx(truth, abs=0.03)


def test_ties_get_average_ranks():
    z = copula_normalize(np.array([0.0, 0.0, 0.0, 1.0, 2.0]))
    assert z[0, 0] == z[1, 0] == z[2, 0]
    assert z[0, 0] < z[3, 0] < z[4, 0]


def test_o_information_of_independent_variables_is_zero():
    x = np.random.default_rng(2).normal(size=(5000, 4))
    assert abs(o_information(x)) < 0.01


def test_o_information_of_copies_is_positive_and_matches_gaussian_value():
    noise = 0.3
    cov = np.full((4, 4), 1.0) + noise**2 * np.eye(4)  # Z_i = S + noise_i
    value = o_information(sample(cov, 20000, seed=3))
    assert value > 1.0
    assert value == pytest.approx(gaussian_o_information(cov), abs=0.1)


def test_o_information_of_parity_like_triple_is_negative_and_matches_gaussian_value():
    # Z3 = Z1 + Z2 + small noise, Z1 and Z2 independent: synergy dominates
    eps = 0.1
    cov = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 2.0 + eps**2]])
    value = o_information(sample(cov, 20000, seed=4))
    assert value < -1.0
    assert value == pytest.approx(gaussian_o_information(cov), abs=0.15)


def test_batched_search_equals_each_subset_on_its_own():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    x[:, 2] = np.maximum(x[:, 2], 0)  # ties, as a ReLU makes them
    z = copula_normalize(x)
    for bias in (False, True):
        search = multiplet_search(np.cov(z, rowvar=False), min_order=3, n_samples=500 if bias else None)
        for order in range(3, 7):
            for members, value in zip(search.members[order], search.values[order]):
                assert value == pytest.approx(o_information(x[:, members], bias_correct=bias), abs=1e-9)
        assert len(search.members[3]) == math.comb(6, 3)


def test_order_two_o_information_is_zero():
    cov = np.array([[1.0, 0.7], [0.7, 1.0]])
    assert multiplet_search(cov, min_order=2).values[2][0] == pytest.approx(0.0, abs=1e-12)


def test_layer_pipeline_finds_the_synergistic_group():
    # four groups of noisy neurons: s1, s2, s1 + s2 (the synergistic triple), an independent s3;
    # plus dead (constant) neurons that must be dropped
    rng = np.random.default_rng(6)
    n, noise = 3000, 0.3
    s1, s2, s3 = rng.normal(size=(3, n))
    groups = {"a": (s1, 5), "b": (s2 * 1.5 + 4, 6), "c": (s1 + s2 - 4, 7), "d": (2 * s3 + 8, 4)}
    columns, group_of = [], []
    for name, (signal, size) in groups.items():
        for _ in range(size):
            columns.append(signal + noise * rng.normal(size=n))
            group_of.append(name)
    dead = 3
    x = np.column_stack([*columns, np.zeros((n, dead))])
    rng_order = rng.permutation(x.shape[1])
    x, group_of = x[:, rng_order], (np.array([*group_of, *["dead"] * dead]))[rng_order]

    result = layer_oinfo(x, n_bins=4)
    assert result.n_active == x.shape[1] - dead
    assert np.all(result.labels[group_of == "dead"] == -1)
    # each group is one bin
    for name in groups:
        assert len(set(result.labels[group_of == name])) == 1
    bin_of = {name: int(result.labels[group_of == name][0]) for name in groups}
    assert {bin_of["a"], bin_of["b"], bin_of["c"]} <= set(result.synergy_bins)
    assert result.synergy < -1.0
    assert result.synergy_neurons == sum(groups[g][1] for g in groups if bin_of[g] in result.synergy_bins)
    assert set(result.neurons(result.synergy_bins)) == set(np.flatnonzero(np.isin(result.labels, result.synergy_bins)))
    # an independent group adds nothing: the value is the Gaussian answer of the triple of bin
    # means (a bin of m neurons averages their noise down to variance noise^2 / m)
    na, nb, nc = (noise**2 / groups[g][1] for g in "abc")
    cov = np.array([[1.0 + na, 0.0, 1.0], [0.0, 2.25 + nb, 1.5], [1.0, 1.5, 2.0 + nc]])
    assert result.synergy == pytest.approx(gaussian_o_information(cov), abs=0.15)


def test_layer_pipeline_with_too_few_neurons_gives_nan():
    x = np.zeros((50, 5))
    x[:, 0] = np.arange(50)
    result = layer_oinfo(x)
    assert math.isnan(result.synergy) and result.n_active == 1


def test_normalize_timeline():
    assert normalize_timeline(np.array([1.0, 3.0, 2.0])).tolist() == [0.0, 1.0, 0.5]
    assert normalize_timeline(np.array([-1.0, -3.0, np.nan]), invert=True)[:2].tolist() == [0.0, 1.0]
    assert normalize_timeline(np.array([2.0, 2.0])).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("order", [3, 4])
def test_search_extremes_match_brute_force(order):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    search = multiplet_search(np.cov(copula_normalize(x), rowvar=False), min_order=order, max_order=order)
    brute = {s: o_information(x[:, s]) for s in itertools.combinations(range(5), order)}
    value, members = search.extreme("synergy")
    assert members == min(brute, key=brute.get) and value == pytest.approx(min(brute.values()))
    value, members = search.extreme("redundancy")
    assert members == max(brute, key=brute.get) and value == pytest.approx(max(brute.values()))
