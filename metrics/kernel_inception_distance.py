"""Kernel Inception Distance (Binkowski et al., "Demystifying MMD GANs", ICLR 2018):
the unbiased estimate of the squared MMD with the cubic polynomial kernel
k(x, y) = (x . y / d + 1)^3 on Inception pool3 features, averaged over random subsets.

For subsets X (generated), Y (real) of m items each:

    MMD^2 = 1/(m(m-1)) sum_{i!=j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_{i,j} k(x_i, y_j)
"""

import numpy as np

from metrics import metric_utils

#----------------------------------------------------------------------------

def kernel_inception_distance(real: np.ndarray, gen: np.ndarray, num_subsets: int, max_subset_size: int, seed: int = 0) -> float:
    """Mean over `num_subsets` random subsets (without replacement, m = min(len(real),
    len(gen), max_subset_size)) of the unbiased MMD^2 estimate."""
    real, gen = np.asarray(real, np.float64), np.asarray(gen, np.float64)
    n = real.shape[1]
    m = min(real.shape[0], gen.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f'KID needs at least 2 real and 2 generated images, got {real.shape[0]} and {gen.shape[0]}')
    rng = np.random.default_rng(seed)
    total = 0.0
    for _subset in range(num_subsets):
        x = gen[rng.choice(gen.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        total += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(total / num_subsets / m)

#----------------------------------------------------------------------------

def compute_kid(opts: metric_utils.MetricOptions, max_real: int | None, num_gen: int, num_subsets: int, max_subset_size: int) -> float:
    real, gen = metric_utils.inception_features(opts, max_real=max_real, num_gen=num_gen)
    if opts.rank != 0:
        return float('nan')
    return kernel_inception_distance(real, gen, num_subsets, max_subset_size, seed=opts.seed)

#----------------------------------------------------------------------------
