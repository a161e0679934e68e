"""Metric formulas against closed forms, scipy, direct loops and toy sets with known answers."""

import itertools

import numpy as np
import pytest
import scipy.linalg
import torch

from metrics import frechet_inception_distance as fid_mod
from metrics import inception_score, kernel_inception_distance, metric_utils, perceptual_path_length, precision_recall

#----------------------------------------------------------------------------
# FID.

def _random_cov(rng, dim, rank=None):
    a = rng.standard_normal([dim, rank or dim + 3])
    return a @ a.T / a.shape[1]

def test_fid_closed_form_commuting_gaussians():
    # Covariances sharing an eigenbasis Q: FID = |m1 - m2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    rng = np.random.default_rng(1)
    dim = 16
    q, _ = np.linalg.qr(rng.standard_normal([dim, dim]))
    a, b = rng.uniform(0.1, 4, dim), rng.uniform(0, 4, dim)
    m1, m2 = rng.standard_normal(dim), rng.standard_normal(dim)
    expected = np.square(m1 - m2).sum() + np.square(np.sqrt(a) - np.sqrt(b)).sum()
    actual = fid_mod.frechet_distance(m1, q @ np.diag(a) @ q.T, m2, q @ np.diag(b) @ q.T)
    assert abs(actual - expected) < 1e-9 * max(1, expected)

def test_fid_same_distribution_is_zero_and_symmetric():
    rng = np.random.default_rng(2)
    s1, s2 = _random_cov(rng, 32), _random_cov(rng, 32)
    mu = rng.standard_normal(32)
    assert abs(fid_mod.frechet_distance(mu, s1, mu, s1)) < 1e-9
    for seed in range(20):   # Rounding leaves about +-1e-12 for equal distributions: never printed as negative.
        s = _random_cov(np.random.default_rng(seed), 64)
        assert fid_mod.frechet_distance(mu[:1].repeat(64), s, mu[:1].repeat(64), s) >= 0
    d12 = fid_mod.frechet_distance(mu, s1, mu + 1, s2)
    d21 = fid_mod.frechet_distance(mu + 1, s2, mu, s1)
    assert abs(d12 - d21) < 1e-9 * d12

@pytest.mark.parametrize('rank1', [None, 20])   # Full rank and singular.
def test_trace_sqrt_product_vs_scipy_sqrtm(rank1):
    rng = np.random.default_rng(3)
    for _trial in range(3):
        s1, s2 = _random_cov(rng, 48, rank1), _random_cov(rng, 48)
        expected = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
        actual = fid_mod.trace_sqrt_product(s1, s2)
        assert abs(actual - expected) < 1e-7 * abs(expected), (actual, expected)

def test_psd_factor_full_rank_matches_symmetric_root():
    rng = np.random.default_rng(4)
    s1, s2 = _random_cov(rng, 40), _random_cov(rng, 40)
    factor = fid_mod.psd_factor(s1)
    assert factor.shape == (40, 40) and np.allclose(factor @ factor.T, s1, atol=1e-12)
    eigvals, eigvecs = np.linalg.eigh(s1)
    root = (eigvecs * np.sqrt(eigvals)) @ eigvecs.T
    via_root = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()
    assert abs(fid_mod.trace_sqrt_product(s1, s2) - via_root) < 1e-9 * via_root

def test_psd_factor_singular_finds_rank_and_exact_trace():
    # sigma1 = A A^T with A 40 x 7 (as with 8 images of 40-d features): rank 7, and the trace
    # equals sum sqrt eig(A^T sigma2 A) exactly. (A symmetric root would add sqrt(1e-16)-sized
    # terms for the 33 rounding-noise eigenvalues.)
    rng = np.random.default_rng(5)
    a = rng.standard_normal([40, 7])
    s1, s2 = a @ a.T, _random_cov(rng, 40)
    factor = fid_mod.psd_factor(s1)
    assert factor.shape == (40, 7) and np.allclose(factor @ factor.T, s1, atol=1e-12)
    expected = np.sqrt(np.linalg.eigvalsh(a.T @ s2 @ a)).sum()
    assert abs(fid_mod.trace_sqrt_product(s1, s2) - expected) < 1e-10 * expected

#----------------------------------------------------------------------------
# Feature statistics.

def test_feature_stats_mean_cov_truncation_and_bytes():
    rng = np.random.default_rng(5)
    x = rng.standard_normal([37, 6]).astype(np.float32)
    stats = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True, max_items=30)
    for chunk in np.array_split(x, 4):
        stats.append(chunk)
    assert stats.num_items == 30 and stats.is_full()
    mean, cov = stats.get_mean_cov()
    ref = x[:30].astype(np.float64)
    assert np.allclose(mean, ref.mean(0), atol=1e-12)
    assert np.allclose(cov, np.cov(ref, rowvar=False, bias=True), atol=1e-12)
    assert np.array_equal(stats.get_all(), x[:30])
    again = metric_utils.FeatureStats.from_bytes(stats.to_bytes())
    assert again.num_items == 30 and np.array_equal(again.get_all(), x[:30])
    assert np.array_equal(again.get_mean_cov()[1], cov)

#----------------------------------------------------------------------------
# KID.

def test_kid_matches_direct_double_loop():
    rng = np.random.default_rng(6)
    real = rng.standard_normal([15, 5])
    gen = rng.standard_normal([12, 5]) + 0.3
    num_subsets, m, dim = 3, 8, 5
    kernel = lambda u, v: (np.dot(u, v) / dim + 1) ** 3
    draws = np.random.default_rng(0)
    expected = 0.0
    for _subset in range(num_subsets):
        x = gen[draws.choice(len(gen), m, replace=False)]
        y = real[draws.choice(len(real), m, replace=False)]
        kxx = sum(kernel(x[i], x[j]) for i, j in itertools.product(range(m), repeat=2) if i != j)
        kyy = sum(kernel(y[i], y[j]) for i, j in itertools.product(range(m), repeat=2) if i != j)
        kxy = sum(kernel(x[i], y[j]) for i, j in itertools.product(range(m), repeat=2))
        expected += (kxx + kyy) / (m * (m - 1)) - 2 * kxy / m ** 2
    expected /= num_subsets
    actual = kernel_inception_distance.kernel_inception_distance(real, gen, num_subsets, max_subset_size=m, seed=0)
    assert abs(actual - expected) < 1e-10 * max(1, abs(expected))

def test_kid_near_zero_for_same_distribution_and_positive_for_shift():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal([400, 8]), rng.standard_normal([400, 8])
    same = kernel_inception_distance.kernel_inception_distance(a, b, 20, 200)
    shifted = kernel_inception_distance.kernel_inception_distance(a, b + 1, 20, 200)
    assert abs(same) < 0.02 and shifted > 0.2

#----------------------------------------------------------------------------
# Precision / recall on a toy manifold.

def test_precision_recall_toy_manifold():
    # Real: 20 points (i, 0). Generated: 10 points (i + 0.5, 0) near the real line and 10 far away.
    # k = 3: real radii are 2 (3 at the two ends); generated radii likewise. Precision: the 10 near
    # points lie inside real balls, the far ones do not -> 0.5. Recall: the generated ball around
    # (9.5, 0) has radius 3 and reaches x = 12.5, so real points 0..12 are covered -> 13 / 20.
    real = np.stack([np.arange(20.0), np.zeros(20)], axis=1)
    gen = np.concatenate([np.stack([np.arange(10) + 0.5, np.zeros(10)], axis=1),
                          np.stack([np.arange(10) + 100.0, np.full(10, 50.0)], axis=1)])
    for row_batch_size in (3, 1024):
        precision, recall = precision_recall.precision_recall(real, gen, nhood_size=3, row_batch_size=row_batch_size, col_batch_size=7)
        assert precision == 0.5 and abs(recall - 0.65) < 1e-6

def test_precision_recall_identical_sets_and_too_few_points():
    x = np.random.default_rng(8).standard_normal([50, 4])
    assert precision_recall.precision_recall(x, x, nhood_size=3) == (1.0, 1.0)
    with pytest.raises(ValueError, match='more than 3 generated'):
        precision_recall.precision_recall(x, x[:3], nhood_size=3)

#----------------------------------------------------------------------------
# Inception Score.

def test_inception_score_known_values():
    # 40 images, 10 splits of 4; each split holds one-hot predictions of 4 distinct classes -> IS = 4.
    probs = np.zeros([40, 1008])
    probs[np.arange(40), np.arange(40) % 4 + 100] = 1
    mean, std = inception_score.inception_score(probs, num_splits=10)
    assert abs(mean - 4) < 1e-9 and std < 1e-9
    # Every image predicts the same distribution -> IS = 1.
    same = np.tile(np.random.default_rng(9).dirichlet(np.ones(1008)), [20, 1])
    assert abs(inception_score.inception_score(same, num_splits=10)[0] - 1) < 1e-9

#----------------------------------------------------------------------------
# PPL helpers.

def test_slerp_endpoints_and_norm():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn([5, 7], generator=gen, dtype=torch.float64), torch.randn([5, 7], generator=gen, dtype=torch.float64)
    unit = lambda v: v / v.norm(dim=1, keepdim=True)
    assert torch.allclose(perceptual_path_length.slerp(a, b, torch.zeros([5, 1], dtype=torch.float64)), unit(a), atol=1e-12)
    assert torch.allclose(perceptual_path_length.slerp(a, b, torch.ones([5, 1], dtype=torch.float64)), unit(b), atol=1e-12)
    mid = perceptual_path_length.slerp(a, b, torch.full([5, 1], 0.5, dtype=torch.float64))
    assert torch.allclose((mid * unit(a)).sum(1), (mid * unit(b)).sum(1), atol=1e-12)  # Equal angles to both ends.

def test_percentile_mean_drops_outliers():
    # 1000 values, 5 huge outliers on each side: the 1st/99th percentiles fall inside the bulk.
    dist = np.concatenate([np.full(990, 5.0), np.full(5, 1e9), np.full(5, -1e9)])
    assert perceptual_path_length.percentile_mean(dist) == 5.0
    assert perceptual_path_length.percentile_mean(np.arange(1000.0)) == np.arange(9, 991).mean()

#----------------------------------------------------------------------------
