"""Class-centre cosines and the SVD projection on constructed representations."""

from __future__ import annotations

import math

import pytest
import torch

from grokscope.measures.geometry import between_centre_cosine, centre_cosines, class_centres, svd_projection


def test_centre_cosines_of_orthogonal_spread_around_orthogonal_centres():
    e = torch.eye(4, dtype=torch.float64)
    # class 0: 3 e0 +- 4 e2 (centre 3 e0, cosine 3/5); class 1: 4 e1 +- 3 e3 (centre 4 e1, cosine 4/5)
    x = torch.stack([3 * e[0] + 4 * e[2], 3 * e[0] - 4 * e[2], 4 * e[1] + 3 * e[3], 4 * e[1] - 3 * e[3]])
    y = torch.tensor([0, 0, 1, 1])
    torch.testing.assert_close(class_centres(x, y, 2), torch.stack([3 * e[0], 4 * e[1]]))
    torch.testing.assert_close(centre_cosines(x, y, 2), torch.tensor([0.6, 0.6, 0.8, 0.8], dtype=torch.float64))
    assert between_centre_cosine(class_centres(x, y, 2)) == pytest.approx(0.0)


def test_between_centre_cosine_of_centres_at_45_degrees_skips_empty_classes():
    centres = torch.tensor([[1.0, 0.0], [1.0, 1.0], [math.nan, math.nan]], dtype=torch.float64)
    assert between_centre_cosine(centres) == pytest.approx(1 / math.sqrt(2))


def test_svd_projection_reads_the_two_leading_right_singular_directions():
    w = torch.tensor([[3.0, 0, 0, 0], [0, 0, 0, -2.0], [0, 0, 1.0, 0]], dtype=torch.float64)
    x = torch.randn(10, 4, dtype=torch.float64)
    torch.testing.assert_close(svd_projection(w, x), x[:, [0, 3]])  # v1 = e0, v2 = +-e3 (sign fixed)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    # rotating the weight and the representations together leaves the projection unchanged
    torch.testing.assert_close(svd_projection(w @ rotation.T, x @ rotation.T).abs(), x[:, [0, 3]].abs())
