"""Improved precision and recall (Kynkaanniemi et al., "Improved Precision and Recall Metric
for Assessing Generative Models", NeurIPS 2019, eqs. 1-3).

Each feature vector of a set is the centre of a ball whose radius is the distance to its k-th
nearest neighbour within that set (the (k+1)-th smallest distance, counting itself). Precision
is the fraction of generated points inside at least one ball of the real set; recall is the
fraction of real points inside at least one ball of the generated set.

Features: VGG16 fc2 (4096-d) as in the paper and StyleGAN (`pr50k3_full`, ...), or the FID
Inception-v3 pool3 features (`pr50k3_inception_full`, ...), a separately named variant for
when only the Inception weights are at hand. Their values are not interchangeable.
"""

import numpy as np
import torch

from metrics import metric_utils

#----------------------------------------------------------------------------

def _distances(rows: torch.Tensor, cols: torch.Tensor, col_batch_size: int) -> torch.Tensor:
    """Euclidean distances [len(rows), len(cols)], computed in column blocks."""
    return torch.cat([torch.cdist(rows, block) for block in cols.split(col_batch_size)], dim=1)

def _row_ranges(num_rows: int, row_batch_size: int, num_gpus: int, rank: int) -> list[tuple[int, int]]:
    starts = range(0, num_rows, row_batch_size)
    return [(lo, min(lo + row_batch_size, num_rows)) for idx, lo in enumerate(starts) if idx % num_gpus == rank]

def _gather_rows(parts: list[tuple[int, torch.Tensor]], num_rows: int, num_gpus: int) -> torch.Tensor:
    """Concatenate the row blocks computed by all processes, in row order."""
    all_parts = [parts] if num_gpus == 1 else [None] * num_gpus
    if num_gpus > 1:
        torch.distributed.all_gather_object(all_parts, [(lo, t.cpu()) for lo, t in parts])
    blocks = sorted(((lo, t) for rank_parts in all_parts for lo, t in rank_parts), key=lambda block: block[0])
    out = torch.cat([t.cpu() for _lo, t in blocks]) if blocks else torch.zeros([0])
    assert out.shape[0] == num_rows
    return out

def precision_recall(real: np.ndarray, gen: np.ndarray, nhood_size: int, row_batch_size: int = 1024,
                     col_batch_size: int = 8192, num_gpus: int = 1, rank: int = 0, device: str | torch.device = 'cpu') -> tuple[float, float]:
    """(precision, recall) of `gen` against `real` with k = nhood_size; rows are split over processes."""
    real = torch.as_tensor(np.asarray(real), dtype=torch.float32, device=device)
    gen = torch.as_tensor(np.asarray(gen), dtype=torch.float32, device=device)
    for what, feats in (('real', real), ('generated', gen)):
        if feats.shape[0] <= nhood_size:
            raise ValueError(f'precision/recall with k={nhood_size} needs more than {nhood_size} {what} images, got {feats.shape[0]}')
    results = []
    for manifold, probes in ((real, gen), (gen, real)):
        kth = [(lo, _distances(manifold[lo:hi], manifold, col_batch_size).kthvalue(nhood_size + 1, dim=1).values)
               for lo, hi in _row_ranges(manifold.shape[0], row_batch_size, num_gpus, rank)]
        kth = _gather_rows(kth, manifold.shape[0], num_gpus).to(device)
        inside = [(lo, (_distances(probes[lo:hi], manifold, col_batch_size) <= kth[None, :]).any(dim=1))
                  for lo, hi in _row_ranges(probes.shape[0], row_batch_size, num_gpus, rank)]
        results.append(float(_gather_rows(inside, probes.shape[0], num_gpus).float().mean()))
    return results[0], results[1]

#----------------------------------------------------------------------------

def compute_pr(opts: metric_utils.MetricOptions, max_real: int | None, num_gen: int, nhood_size: int,
               detector_name: str = 'vgg16') -> tuple[float, float]:
    detector_kwargs = dict(return_features=True)
    real = metric_utils.compute_feature_stats_for_dataset(
        opts=opts, detector_name=detector_name, detector_kwargs=detector_kwargs,
        tag='real', max_items=max_real, capture_all=True).get_all()
    gen = metric_utils.compute_feature_stats_for_generator(
        opts=opts, detector_name=detector_name, detector_kwargs=detector_kwargs,
        num_items=num_gen, capture_all=True).get_all()
    return precision_recall(real, gen, nhood_size, num_gpus=opts.num_gpus, rank=opts.rank, device=opts.device)

#----------------------------------------------------------------------------
