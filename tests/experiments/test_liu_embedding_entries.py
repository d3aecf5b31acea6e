"""Helpers of the Liu transformer-embedding entry: the ring read on two principal components and
the fall of the effective dimension around generalization."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grokscope.experiments.liu import EmbeddingTimeline, top_two_ring


def ring_table(p: int = 53, k: int = 7, d: int = 16, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Tokens on the ring of frequency k in a random plane of R^d, plus isotropic noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(p)
    plane = np.stack([np.cos(2 * np.pi * k * t / p), np.sin(2 * np.pi * k * t / p)], axis=1)
    basis, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    return 5.0 * plane @ basis.T + noise * rng.standard_normal((p, d))


def test_a_ring_on_the_first_two_components_reads_one_and_noise_reads_low():
    assert top_two_ring(ring_table()) == pytest.approx(1.0, abs=1e-9)
    assert top_two_ring(np.random.default_rng(1).standard_normal((53, 16))) < 0.25
    assert top_two_ring(ring_table(noise=1.0)) > 0.9
    # a ring beside a larger unstructured cloud in an orthogonal plane: its own first two PCs
    # are the cloud, the first two PCs of the clean ring (the basis given) show the ring
    rng = np.random.default_rng(2)
    ring = ring_table()
    ring_plane = np.linalg.svd(ring, full_matrices=False)[2][:2]  # (2, d)
    other, _ = np.linalg.qr(np.concatenate([ring_plane.T, rng.standard_normal((16, 2))], axis=1))
    cloud = 20.0 * rng.standard_normal((53, 2)) @ other[:, 2:].T
    assert top_two_ring(ring + cloud) < 0.3
    assert top_two_ring(ring + cloud, ring) == pytest.approx(1.0, abs=1e-9)


def timeline(dims: tuple[float, float, float, float]) -> EmbeddingTimeline:
    init, peak, at_generalization, end = dims
    return EmbeddingTimeline(
        label="r",
        fit_step=10,
        generalization_step=100,
        init_step=0,
        before_step=10,
        end_step=1000,
        ring_init=0.1,
        ring_before=0.1,
        ring_end=0.1,
        ring_at_generalization=0.1,
        ring_init_on_final=0.1,
        dim_init=init,
        dim_peak=peak,
        dim_at_generalization=at_generalization,
        dim_end=end,
    )


def test_dimension_drop_and_its_share_after_generalization():
    row = timeline((30.0, 40.0, 30.0, 10.0))  # falls 40 -> 10, 30 -> 10 of it after generalization
    assert row.dim_drop == pytest.approx(0.75)
    assert row.drop_after_generalization == pytest.approx(2 / 3)
    assert math.isnan(timeline((30.0, 30.0, 30.0, 30.0)).drop_after_generalization)
