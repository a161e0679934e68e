"""Nearest-neighbour collapse index: a number for mode collapse.

For a set of feature vectors, the nearest-neighbour distance of a vector is its Euclidean
distance to the closest *other* vector of the same set. With d_real the nearest-neighbour
distances within n real images and d_gen those within n generated images,

    collapse index = mean_j [ d_gen_j < median(d_real) ],

the share of generated samples that have a closer twin than a typical real image has. A set
distributed like the reals scores about 0.5 by construction of the median (the real set
itself: 0.5 less the ties at the median, which mutual nearest neighbours make common, so
0.5 - 1/n or so); a generator repeating a few images scores near 1, and one that spreads its
samples more than the data does, below 0.5.

Features: the FID Inception-v3 pool3 vectors (2048-d), as recall and coverage use here, rather
than pixels, so that two images count as twins when they look alike, not only when they are
aligned pixel for pixel. n = 256 each (the generated images by seed as every metric here; the
real ones a random subset of the dataset, drawn with the metric seed, unflipped).
"""

import numpy as np
import torch

from metrics import metric_utils

#----------------------------------------------------------------------------

def nearest_neighbour_distances(feats: torch.Tensor) -> torch.Tensor:
    """float64 [n]: distance of each row to the closest other row."""
    feats = feats.to(torch.float64)
    dist = torch.cdist(feats, feats)
    dist.fill_diagonal_(float('inf'))
    return dist.min(dim=1).values

def collapse_index(real: np.ndarray, gen: np.ndarray) -> float:
    """Share of `gen` rows whose nearest other row is closer than the median nearest-neighbour
    distance among the `real` rows. real, gen: [n, d] features, n >= 2."""
    real, gen = torch.as_tensor(np.asarray(real)), torch.as_tensor(np.asarray(gen))
    assert real.ndim == gen.ndim == 2 and real.shape[1] == gen.shape[1], (real.shape, gen.shape)
    for what, feats in (('real', real), ('generated', gen)):
        if feats.shape[0] < 2:
            raise ValueError(f'the collapse index needs at least 2 {what} images, got {feats.shape[0]}')
    threshold = torch.quantile(nearest_neighbour_distances(real), 0.5)     # (An even count: the mean of the two middle values.)
    return float((nearest_neighbour_distances(gen) < threshold).to(torch.float64).mean())

#----------------------------------------------------------------------------

def compute_collapse_index(opts: metric_utils.MetricOptions, num_items: int) -> float:
    """Collapse index of num_items generated images against num_items real ones (a random
    subset of the data drawn with opts.seed, unflipped), on Inception features."""
    opts.dataset_kwargs.update(max_size=num_items, random_seed=opts.seed, xflip=False)
    real, gen = metric_utils.inception_features(opts, max_real=num_items, num_gen=num_items)
    return collapse_index(real, gen)

#----------------------------------------------------------------------------
