"""The metric registry: names as in StyleGAN2-ADA / StyleGAN3, plus smaller sizes that fit a CPU.

`calc_metric(name, G=..., dataset_kwargs=..., ...)` returns
EasyDict(results, metric, total_time, total_time_str, num_gpus); `report_metric` prints it as
one JSON line and appends it to `<run_dir>/metric-<name>.jsonl`, as upstream.

Naming: `<metric><N>k[_full]`. `_full` means all real images (the dataset's max_size and
xflip are switched off); without it (legacy names fid50k, kid50k, pr50k3) the real side is
the first 50k images of the dataset as configured (xflip kept) and the metric refuses to run
on fewer. N thousand generated images; `pr<N>k3` uses k = 3 neighbours; `*_inception_full`
is precision/recall on Inception features instead of VGG16.
"""

import functools
import json
import os
import time

import dnnlib
from metrics import frechet_inception_distance, inception_score, kernel_inception_distance
from metrics import metric_utils, perceptual_path_length, precision_recall

#----------------------------------------------------------------------------
# Registry: name -> function(opts) -> dict of results.

_metric_dict = dict()

def register_metric(name: str, fn, **kwargs) -> None:
    assert name not in _metric_dict, name
    _metric_dict[name] = functools.partial(fn, name=name, **kwargs)

def is_valid_metric(metric: str) -> bool:
    return metric in _metric_dict

def list_valid_metrics() -> list[str]:
    return list(_metric_dict.keys())

#----------------------------------------------------------------------------
# Top-level entry points.

def calc_metric(metric: str, **kwargs) -> dnnlib.EasyDict:
    """Compute one metric. kwargs: see metric_utils.MetricOptions (G, G_kwargs, dataset_kwargs,
    fakes_kwargs, num_gpus, rank, device, progress, cache, detectors, seed). Every rank returns
    rank 0's results."""
    if not is_valid_metric(metric):
        raise ValueError(f'unknown metric "{metric}"; valid metrics: {", ".join(list_valid_metrics())}')
    opts = metric_utils.MetricOptions(**kwargs)
    start_time = time.time()
    results = _metric_dict[metric](opts)
    total_time = time.time() - start_time
    results = metric_utils.broadcast_object({k: float(v) for k, v in results.items()}, opts.num_gpus)
    return dnnlib.EasyDict(
        results         = dnnlib.EasyDict(results),
        metric          = metric,
        total_time      = total_time,
        total_time_str  = dnnlib.util.format_time(total_time),
        num_gpus        = opts.num_gpus,
    )

def report_metric(result_dict: dict, run_dir: str | None = None, snapshot_pkl: str | None = None) -> str:
    """Print the result as one JSON line and append it to <run_dir>/metric-<name>.jsonl.
    snapshot_pkl is stored relative to run_dir. Returns the line."""
    metric = result_dict['metric']
    assert is_valid_metric(metric)
    if run_dir is not None and snapshot_pkl is not None:
        snapshot_pkl = os.path.relpath(snapshot_pkl, run_dir)
    line = json.dumps(dict(result_dict, snapshot_pkl=snapshot_pkl, timestamp=time.time()))
    print(line, flush=True)
    if run_dir is not None and os.path.isdir(run_dir):
        with open(os.path.join(run_dir, f'metric-{metric}.jsonl'), 'at') as f:
            f.write(line + '\n')
    return line

#----------------------------------------------------------------------------
# How the real side is chosen.

def _use_full_dataset(opts: metric_utils.MetricOptions) -> None:
    """`_full` metrics: every real image, unflipped."""
    opts.dataset_kwargs.update(max_size=None, xflip=False)

def _require_real_images(opts: metric_utils.MetricOptions, name: str, num_real: int) -> None:
    """Legacy metrics are defined on exactly `num_real` real images: refuse fewer."""
    if opts.dataset_kwargs.get('class_name') is None:
        return
    dataset = metric_utils.construct_dataset(opts.dataset_kwargs)
    if len(dataset) < num_real:
        raise ValueError(f'{name} needs {num_real} real images but the data ({opts.dataset_kwargs.get("path", "dataset")}) '
                         f'has {len(dataset)}; use {name}_full (all real images) instead')

#----------------------------------------------------------------------------
# Metric definitions.

def fid(opts, name, num_gen, max_real=None, full=True):
    if full:
        _use_full_dataset(opts)
    else:
        _require_real_images(opts, name, max_real)
    return {name: frechet_inception_distance.compute_fid(opts, max_real=max_real, num_gen=num_gen)}

def kid(opts, name, num_gen, max_real, full=True):
    if full:
        _use_full_dataset(opts)
    else:
        _require_real_images(opts, name, max_real)
    value = kernel_inception_distance.compute_kid(opts, max_real=max_real, num_gen=num_gen, num_subsets=100, max_subset_size=1000)
    return {name: value}

def pr(opts, name, num_gen, max_real, detector_name='vgg16', full=True):
    if full:
        _use_full_dataset(opts)
    else:
        _require_real_images(opts, name, max_real)
    precision, recall = precision_recall.compute_pr(opts, max_real=max_real, num_gen=num_gen, nhood_size=3, detector_name=detector_name)
    return {f'{name}_precision': precision, f'{name}_recall': recall}

def inception_score_metric(opts, name, num_gen):
    _use_full_dataset(opts)
    mean, std = inception_score.compute_is(opts, num_gen=num_gen, num_splits=10)
    return {f'{name}_mean': mean, f'{name}_std': std}

def ppl(opts, name, space, sampling, crop, num_samples=50000):
    value = perceptual_path_length.compute_ppl(opts, num_samples=num_samples, epsilon=1e-4, space=space,
                                               sampling=sampling, crop=crop, batch_size=2)
    return {name: value}

#----------------------------------------------------------------------------
# The registry. Upstream names first (in upstream's order), then CPU-sized variants.

register_metric('fid50k_full', fid, num_gen=50000)
register_metric('kid50k_full', kid, num_gen=50000, max_real=1000000)
register_metric('pr50k3_full', pr, num_gen=50000, max_real=200000)
register_metric('ppl2_wend',   ppl, space='w', sampling='end', crop=False)
register_metric('is50k',       inception_score_metric, num_gen=50000)
register_metric('ppl_zfull',   ppl, space='z', sampling='full', crop=True)
register_metric('ppl_wfull',   ppl, space='w', sampling='full', crop=True)
register_metric('ppl_zend',    ppl, space='z', sampling='end', crop=True)
register_metric('ppl_wend',    ppl, space='w', sampling='end', crop=True)
register_metric('fid50k',      fid, num_gen=50000, max_real=50000, full=False)
register_metric('kid50k',      kid, num_gen=50000, max_real=50000, full=False)
register_metric('pr50k3',      pr, num_gen=50000, max_real=50000, full=False)
register_metric('pr50k3_inception_full', pr, num_gen=50000, max_real=200000, detector_name='inception')

for _num_k in (10, 5, 2):
    register_metric(f'fid{_num_k}k_full', fid, num_gen=_num_k * 1000)
    register_metric(f'kid{_num_k}k_full', kid, num_gen=_num_k * 1000, max_real=1000000)
    register_metric(f'pr{_num_k}k3_full', pr, num_gen=_num_k * 1000, max_real=200000)
    register_metric(f'pr{_num_k}k3_inception_full', pr, num_gen=_num_k * 1000, max_real=200000, detector_name='inception')
    register_metric(f'is{_num_k}k', inception_score_metric, num_gen=_num_k * 1000)
    register_metric(f'ppl2_wend{_num_k}k', ppl, space='w', sampling='end', crop=False, num_samples=_num_k * 1000)

#----------------------------------------------------------------------------
