"""Frechet Inception Distance (Heusel et al., NeurIPS 2017, eq. 6):

    FID = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

over the 2048-d pool3 features of the FID Inception-v3 (metrics/inception.py).

Tr((S_r S_g)^(1/2)) without a general matrix square root: for any factor S_r = F F^T
(F is d x r), the non-zero eigenvalues of S_r S_g = F (F^T S_g) are those of
(F^T S_g) F = F^T S_g F, an r x r symmetric positive semi-definite matrix. So the trace is the
sum of the square roots of the eigenvalues of F^T S_g F. F comes from a pivoted Cholesky
factorisation (LAPACK dpstrf), which also gives the numerical rank r: with fewer images than
feature dimensions S_r is singular and the problem shrinks to r x r. Everything in float64;
exact up to rounding and several times faster than scipy.linalg.sqrtm.
"""

import numpy as np
import scipy.linalg

from metrics import metric_utils

#----------------------------------------------------------------------------

def psd_factor(sigma: np.ndarray) -> np.ndarray:
    """F [d, r] with sigma = F F^T for a symmetric PSD sigma, r its numerical rank
    (pivoted Cholesky: P^T sigma P = L L^T, so F = P L[:, :r])."""
    sigma = np.asarray(sigma, dtype=np.float64)
    chol, piv, rank, info = scipy.linalg.lapack.dpstrf((sigma + sigma.T) / 2, lower=1)
    if info < 0:
        raise ValueError(f'dpstrf: illegal argument {-info}')
    factor = np.empty([sigma.shape[0], rank], dtype=np.float64)
    factor[piv - 1] = np.tril(chol)[:, :rank]
    return factor

def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((sigma1 sigma2)^(1/2)) for symmetric PSD sigma1, sigma2."""
    factor = psd_factor(sigma1)
    middle = factor.T @ np.asarray(sigma2, dtype=np.float64) @ factor
    eigvals = scipy.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(eigvals, 0, None)).sum())

def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2),
    clamped at 0 (rounding leaves about -1e-12 for equal distributions; a distance is never negative)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    assert mu1.shape == mu2.shape and sigma1.shape == sigma2.shape == mu1.shape * 2
    mean_term = np.square(mu1 - mu2).sum()
    return max(0.0, float(mean_term + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2)))

#----------------------------------------------------------------------------

def compute_fid(opts: metric_utils.MetricOptions, max_real: int | None, num_gen: int) -> float:
    detector_kwargs = dict(return_features=True)
    mu_real, sigma_real = metric_utils.compute_feature_stats_for_dataset(
        opts=opts, detector_name='inception', detector_kwargs=detector_kwargs,
        tag='real', max_items=max_real, capture_mean_cov=True).get_mean_cov()
    mu_gen, sigma_gen = metric_utils.compute_feature_stats_for_generator(
        opts=opts, detector_name='inception', detector_kwargs=detector_kwargs,
        num_items=num_gen, capture_mean_cov=True).get_mean_cov()
    if opts.rank != 0:
        return float('nan')
    return frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)

#----------------------------------------------------------------------------
