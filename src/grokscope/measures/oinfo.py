"""O-information of neuron groups with Gaussian-copula entropies (O-info sec. 3, SPEC.md sec. 2).

For variables ``Z = (Z_1..Z_n)`` the O-information (Rosas et al. 2019) is

    Omega(Z) = (n - 2) H(Z) + sum_j [H(Z_j) - H(Z without Z_j)]

positive when redundancy dominates, negative when synergy dominates. Entropies come from the
Gaussian-copula estimator (Ince et al. 2017): each variable is replaced by the standard-normal
scores of its ranks, and ``H = 0.5 log det(2 pi e C)`` with C their covariance. All values are in
bits. Every subset of the k bins of a layer shares one covariance matrix, so the exhaustive
search needs one batched log-determinant per subset size, not one estimate per multiplet.

References: Clauw, Marinazzo, Stramaglia (2024), sec. 3; Rosas et al., Phys. Rev. E 100 (2019);
Ince et al., Human Brain Mapping 38 (2017), the ``gcmi`` estimator.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtri, psi
from scipy.stats import rankdata
from sklearn.cluster import AgglomerativeClustering

LN2 = math.log(2.0)


def copula_normalize(x: np.ndarray) -> np.ndarray:
    """Gaussian-copula transform of each column of ``x`` (P samples, n variables).

    ``z = Phi^-1(rank / (P + 1))`` with ranks 1..P; tied values (e.g. the zeros of a ReLU) get
    their average rank, so equal inputs map to equal scores. Returns a float64 (P, n) array.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    ranks = rankdata(x, axis=0, method="average")
    return ndtri(ranks / (x.shape[0] + 1.0))


def entropy_bias(n_variables: int, n_samples: int) -> float:
    """Bias (nats) of the plug-in Gaussian entropy of ``n_variables`` from ``n_samples`` samples.

    ``E[H_hat] - H = sum_{i=1..d} psi((N - i) / 2) / 2 + d (ln 2 - ln(N - 1)) / 2`` for the
    covariance normalized by N - 1 (Ince et al. 2017, eq. of ``ent_g``); subtract it to correct.
    """
    d, n = n_variables, n_samples
    if n <= d:
        raise ValueError(f"bias correction needs more samples ({n}) than variables ({d})")
    return float(psi((n - np.arange(1, d + 1)) / 2.0).sum() / 2.0 + d * (LN2 - math.log(n - 1.0)) / 2.0)


def gaussian_entropy(cov: np.ndarray, n_samples: int | None = None) -> float:
    """Entropy in bits of a Gaussian with covariance ``cov`` (d x d): ``0.5 log2 det(2 pi e C)``.

    With ``n_samples`` (the number of samples ``cov`` was estimated from) the Ince bias
    correction is applied (``entropy_bias``).
    """
    cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    d = cov.shape[0]
    sign, logdet = np.linalg.slogdet(cov)
    nats = 0.5 * d * math.log(2 * math.pi * math.e) + 0.5 * logdet if sign > 0 else -math.inf
    if n_samples is not None:
        nats -= entropy_bias(d, n_samples)
    return nats / LN2


def copula_entropy(x: np.ndarray, bias_correct: bool = False) -> float:
    """Gaussian-copula entropy (bits) of the joint distribution of the columns of ``x`` (P, n)."""
    z = copula_normalize(x)
    return gaussian_entropy(np.cov(z, rowvar=False), z.shape[0] if bias_correct else None)


def o_information(x: np.ndarray, bias_correct: bool = False) -> float:
    """O-information (bits) of the n columns of ``x`` (P samples, n >= 2 variables), each entropy
    estimated on its own from the copula-normalized data (the definition, term by term).

    >>> rng = np.random.default_rng(0)
    >>> s = rng.normal(size=2000)
    >>> o_information(np.stack([s, s + 0.1 * rng.normal(size=2000), s], axis=1)) > 1  # redundant
    True
    """
    z = copula_normalize(x)
    n_samples, n = z.shape
    correct = n_samples if bias_correct else None
    cov = np.cov(z, rowvar=False).reshape(n, n)

    def entropy(subset: list[int]) -> float:
        return gaussian_entropy(cov[np.ix_(subset, subset)], correct)

    everything = list(range(n))
    omega = (n - 2) * entropy(everything)
    for j in everything:
        omega += entropy([j]) - entropy([i for i in everything if i != j])
    return float(omega)


def subset_entropies(cov: np.ndarray, n_samples: int | None = None) -> np.ndarray:
    """Entropy (bits) of every subset of the k variables of ``cov`` (k x k), indexed by bit mask.

    Entry ``m`` holds H of the variables whose bits are set in ``m`` (entry 0 is 0). One batched
    log-determinant per subset size; ``n_samples`` applies the bias correction.
    """
    cov = np.asarray(cov, dtype=np.float64)
    k = cov.shape[0]
    entropies = np.zeros(1 << k)
    for size in range(1, k + 1):
        members = np.array(list(itertools.combinations(range(k), size)))  # (n_subsets, size)
        blocks = cov[members[:, :, None], members[:, None, :]]  # (n_subsets, size, size)
        sign, logdet = np.linalg.slogdet(blocks)
        nats = 0.5 * size * math.log(2 * math.pi * math.e) + 0.5 * np.where(sign > 0, logdet, -np.inf)
        if n_samples is not None:
            nats = nats - entropy_bias(size, n_samples)
        entropies[(1 << members).sum(axis=1)] = nats / LN2
    return entropies


@dataclass
class MultipletSearch:
    """O-information of every multiplet of ``min_order..max_order`` variables out of k.

    ``members[r]`` (n_multiplets, r) lists each multiplet of order r and ``values[r]`` its
    O-information in bits.
    """

    members: dict[int, np.ndarray]
    values: dict[int, np.ndarray]

    def extreme(self, most: str) -> tuple[float, tuple[int, ...]]:
        """(value, members) of the most negative (``synergy``) or most positive (``redundancy``)
        multiplet over all orders."""
        best_value, best_members = math.nan, ()
        for order, values in self.values.items():
            finite = np.where(np.isfinite(values), values, np.nan)
            if np.all(np.isnan(finite)):
                continue
            index = int(np.nanargmin(finite) if most == "synergy" else np.nanargmax(finite))
            value = float(finite[index])
            better = value < best_value if most == "synergy" else value > best_value
            if math.isnan(best_value) or better:
                best_value, best_members = value, tuple(int(i) for i in self.members[order][index])
        return best_value, best_members

    def by_order(self, most: str) -> np.ndarray:
        """Per order (min_order..max_order): the most negative or most positive value."""
        reduce = np.nanmin if most == "synergy" else np.nanmax
        return np.array([reduce(v) if np.isfinite(v).any() else np.nan for v in self.values.values()])


def multiplet_search(
    cov: np.ndarray, min_order: int = 3, max_order: int | None = None, n_samples: int | None = None
) -> MultipletSearch:
    """O-information of every multiplet of ``min_order..max_order`` of the k variables whose
    (copula) covariance is ``cov`` (k x k), all from one table of subset entropies.

    ``Omega(S) = (|S| - 2) H(S) + sum_{j in S} [H(j) - H(S - j)]`` (O-info eq. 1); order 2 is
    identically 0. ``n_samples`` applies the Ince bias correction to every entropy.
    """
    k = np.asarray(cov).shape[0]
    max_order = k if max_order is None else min(max_order, k)
    entropies = subset_entropies(cov, n_samples)
    singles = entropies[1 << np.arange(k)]
    members_by_order: dict[int, np.ndarray] = {}
    values_by_order: dict[int, np.ndarray] = {}
    for order in range(max(min_order, 1), max_order + 1):
        members = np.array(list(itertools.combinations(range(k), order)))  # (n_multiplets, order)
        bits = 1 << members
        masks = bits.sum(axis=1)
        leave_one_out = entropies[masks[:, None] - bits]  # H(S - j), (n_multiplets, order)
        with np.errstate(invalid="ignore"):  # -inf - -inf for degenerate (singular) subsets
            values = (order - 2) * entropies[masks] + (singles[members] - leave_one_out).sum(axis=1)
        members_by_order[order] = members
        values_by_order[order] = values
    return MultipletSearch(members_by_order, values_by_order)


@dataclass
class LayerOInfo:
    """The O-info pipeline's result for one layer at one checkpoint (bits).

    ``labels`` maps each neuron to its bin (-1: constant, dropped; all -1 when fewer than 3
    neurons vary), ``n_active`` counts the non-constant neurons. ``synergy`` is the most
    negative O-information over all multiplets (its ``synergy_bins`` and the number of neurons
    in them, the size of the synergistic sub-network); ``redundancy`` the most positive.
    ``synergy_by_order`` / ``redundancy_by_order`` hold the extremes of each order 3..k.
    """

    labels: np.ndarray
    n_bins: int
    n_active: int
    synergy: float = math.nan
    synergy_bins: tuple[int, ...] = ()
    synergy_neurons: int = 0
    redundancy: float = math.nan
    redundancy_bins: tuple[int, ...] = ()
    redundancy_neurons: int = 0
    synergy_by_order: np.ndarray = field(default_factory=lambda: np.zeros(0))
    redundancy_by_order: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def neurons(self, bins: tuple[int, ...]) -> np.ndarray:
        """Indices of the neurons in ``bins``."""
        return np.flatnonzero(np.isin(self.labels, bins) & (self.labels >= 0))


def cluster_neurons(activations: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin label of each neuron (column of ``activations``, P x n) by agglomerative clustering of
    the neurons' activation vectors with scikit-learn's defaults (Ward linkage, Euclidean), as in
    O-info sec. 3. Labels are renumbered by first appearance so they do not depend on sklearn's
    internal order."""
    n = activations.shape[1]
    if n_bins >= n:
        return np.arange(n)
    raw = AgglomerativeClustering(n_clusters=n_bins).fit(np.ascontiguousarray(activations.T)).labels_
    _, first = np.unique(raw, return_index=True)
    renumber = np.empty(n_bins, dtype=np.int64)
    renumber[raw[np.sort(first)]] = np.arange(n_bins)
    return renumber[raw]


def layer_oinfo(
    activations: np.ndarray,
    n_bins: int = 10,
    min_order: int = 3,
    max_order: int | None = None,
    bias_correct: bool = False,
) -> LayerOInfo:
    """The O-info pipeline on one layer's outputs ``activations`` (P samples x n neurons).

    1. drop constant neurons (e.g. dead ReLUs); 2. group the rest into ``n_bins`` bins by
    agglomerative clustering (``cluster_neurons``); each bin's signal is the mean activation of
    its neurons; 3. copula-normalize the bin signals (ties averaged) and take their covariance;
    4. O-information of every multiplet of ``min_order..max_order`` bins (``multiplet_search``);
    report the most synergistic and most redundant multiplets with their neuron counts.
    Fewer than 3 non-constant neurons give NaN values. (O-info sec. 3, SPEC.md sec. 2.)
    """
    activations = np.asarray(activations, dtype=np.float64)
    n_samples, n_neurons = activations.shape
    active = np.flatnonzero(np.ptp(activations, axis=0) > 0)
    labels = np.full(n_neurons, -1, dtype=np.int64)
    k = min(n_bins, len(active))
    if k < max(min_order, 3):
        return LayerOInfo(labels=labels, n_bins=k, n_active=len(active))
    labels[active] = cluster_neurons(activations[:, active], k)
    counts = np.bincount(labels[active], minlength=k)
    membership = np.zeros((len(active), k))
    membership[np.arange(len(active)), labels[active]] = 1.0 / counts[labels[active]]
    signals = activations[:, active] @ membership  # (P, k) mean activation of each bin
    cov = np.cov(copula_normalize(signals), rowvar=False)
    search = multiplet_search(cov, min_order, max_order, n_samples if bias_correct else None)
    synergy, synergy_bins = search.extreme("synergy")
    redundancy, redundancy_bins = search.extreme("redundancy")
    return LayerOInfo(
        labels=labels,
        n_bins=k,
        n_active=len(active),
        synergy=synergy,
        synergy_bins=synergy_bins,
        synergy_neurons=int(counts[list(synergy_bins)].sum()),
        redundancy=redundancy,
        redundancy_bins=redundancy_bins,
        redundancy_neurons=int(counts[list(redundancy_bins)].sum()),
        synergy_by_order=search.by_order("synergy"),
        redundancy_by_order=search.by_order("redundancy"),
    )


def normalize_timeline(values: np.ndarray, invert: bool = False) -> np.ndarray:
    """Rescale a timeline to [0, 1] over its finite values (O-info sec. 3: "we normalize both
    synergy and redundancy between 0 and 1 while inverting the synergy"). ``invert`` maps the
    most negative value to 1 (for O-information minima, i.e. synergy). A constant timeline
    maps to 0; NaNs stay NaN."""
    values = np.asarray(values, dtype=np.float64)
    if invert:
        values = -values
    finite = np.isfinite(values)
    if not finite.any():
        return np.full_like(values, np.nan)
    low, high = values[finite].min(), values[finite].max()
    if high == low:
        return np.where(finite, 0.0, np.nan)
    return np.where(finite, (values - low) / (high - low), np.nan)
