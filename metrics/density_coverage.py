"""Density and coverage (Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative
Models", ICML 2020, eqs. 3-4).

Each real feature vector X_i is the centre of a ball whose radius r_i is its distance to its
k-th nearest other real vector. With M generated vectors Y_j and N real ones,

    density  = 1 / (k M) sum_j sum_i [ |Y_j - X_i| <= r_i ],
    coverage = 1 / N     sum_i [ min_j |Y_j - X_i| <= r_i ],

coverage being the share of real neighbourhoods that hold at least one generated sample: the
diversity counterpart of recall (Kynkaanniemi et al. 2019), which, unlike recall, does not
grow with generated outliers. k = 5 as in the paper. Features: FID Inception-v3 pool3 (2048-d),
available offline (the paper uses VGG16 fc2, so values are not comparable with its tables).
"""

import numpy as np
import torch

from metrics import metric_utils

#----------------------------------------------------------------------------

def density_coverage(real: np.ndarray, gen: np.ndarray, nhood_size: int, row_batch_size: int = 1024,
                     device: str | torch.device = 'cpu') -> tuple[float, float]:
    """(density, coverage) of `gen` [M, d] against `real` [N, d] with k = nhood_size; distances
    in float32, in blocks of row_batch_size rows."""
    real = torch.as_tensor(np.asarray(real), dtype=torch.float32, device=device)
    gen = torch.as_tensor(np.asarray(gen), dtype=torch.float32, device=device)
    assert real.ndim == gen.ndim == 2 and real.shape[1] == gen.shape[1], (real.shape, gen.shape)
    if real.shape[0] <= nhood_size:
        raise ValueError(f'density/coverage with k={nhood_size} needs more than {nhood_size} real images, got {real.shape[0]}')
    if gen.shape[0] == 0:
        raise ValueError('density/coverage needs at least one generated image')
    # Radii and memberships from the same rows (a block of reals against all reals, then against all
    # generated), so that a set scored against itself compares distances of equal rounding.
    num_inside, covered = 0, []         # Pairs (i, j) with Y_j in the ball of X_i; whether ball i holds any.
    for block in real.split(row_batch_size):
        radii = torch.cdist(block, real).kthvalue(nhood_size + 1, dim=1).values     # (k + 1: X_i itself, at 0.)
        inside = torch.cdist(block, gen) <= radii[:, None]
        num_inside += int(inside.sum())
        covered.append(inside.any(dim=1))
    covered = torch.cat(covered)
    return num_inside / (nhood_size * gen.shape[0]), float(covered.to(torch.float64).mean())

#----------------------------------------------------------------------------

def compute_dc(opts: metric_utils.MetricOptions, max_real: int | None, num_gen: int, nhood_size: int) -> tuple[float, float]:
    real, gen = metric_utils.inception_features(opts, max_real=max_real, num_gen=num_gen)
    return density_coverage(real, gen, nhood_size, device=opts.device)

#----------------------------------------------------------------------------
