"""upfirdn2d and its helpers against NumPy/SciPy, every implementation, with gradients."""

import itertools

import numpy as np
import pytest
import torch

from tests.conftest import assert_close
from tests.ops.naive import check_same_derivatives, naive_upfirdn2d, scipy_upfirdn2d_separable
from torch_utils.ops import upfirdn2d

CPU_IMPLS = [impl for impl in upfirdn2d._IMPLS if impl != 'cuda']
UPS = [1, 2, [2, 1], [1, 3]]
DOWNS = [1, 2, [1, 2], [3, 2]]
PADDINGS = [0, [2, 1], [1, -1, 0, 2], [-1, -2, 3, 0], [-2, 3, 1, -1]]

def _filters():
    rng = np.random.default_rng(0)
    return {
        'none':          None,
        '1331 2-D':      upfirdn2d.setup_filter([1, 3, 3, 1]),                  # StyleGAN2's filter
        '121 separable': upfirdn2d.setup_filter([1, 2, 1], separable=True),
        '8-tap sep':     upfirdn2d.setup_filter(rng.normal(size=8) + 1),        # separable by default
        'random 3x2':    torch.tensor(rng.normal(size=[3, 2]), dtype=torch.float32), # not separable
        'int rank1 3x5': torch.tensor(np.outer([1, -2, 3], [2, 1, -1, 4, 1]) / 16, dtype=torch.float32), # exact in float32
    }

FILTERS = _filters()

#----------------------------------------------------------------------------

@pytest.mark.parametrize('filter_name', list(FILTERS))
def test_upfirdn2d_matches_naive(filter_name):
    f = FILTERS[filter_name]
    x = torch.randn([1, 2, 11, 10], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    checked = 0
    for (up, down, padding, flip_filter), gain in zip(itertools.product(UPS, DOWNS, PADDINGS, [False, True]), itertools.cycle([1.5, -0.7])):
        args = dict(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
        try:
            expected = naive_upfirdn2d(x.numpy(), None if f is None else f.numpy(), **args)
        except ValueError: # NumPy refuses the negative size of an output cropped away entirely.
            expected = np.zeros([0, 0, 0, 0])
        for impl in CPU_IMPLS:
            if min(expected.shape[2:]) < 1:
                with pytest.raises(ValueError, match='empty output'):
                    upfirdn2d.upfirdn2d(x, f, impl=impl, **args)
                continue
            actual = upfirdn2d.upfirdn2d(x, f, impl=impl, **args)
            assert_close(actual, torch.from_numpy(expected), rtol=1e-10, atol=1e-10, name=f'{impl} {filter_name} {args}')
        checked += min(expected.shape[2:]) >= 1
    assert checked > 100 # Of 160 combinations; the rest must raise.

@pytest.mark.parametrize('filter_name', ['121 separable', '8-tap sep'])
def test_naive_matches_scipy_upfirdn(filter_name):
    """The NumPy loop agrees with scipy.signal.upfirdn applied along each axis."""
    f = FILTERS[filter_name].numpy()
    x = np.random.default_rng(1).normal(size=[1, 2, 9, 8])
    for up, down, padding in itertools.product(UPS, DOWNS, PADDINGS):
        try:
            actual = naive_upfirdn2d(x, f, up=up, down=down, padding=padding, gain=2)
        except ValueError: # Cropped away entirely.
            continue
        if min(actual.shape[2:]) < 1:
            continue
        expected = scipy_upfirdn2d_separable(x, f, up=up, down=down, padding=padding, gain=2)
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12, err_msg=f'{up} {down} {padding}')

#----------------------------------------------------------------------------
# The helpers used by the networks: exact output sizes and the StyleGAN2 paddings.

@pytest.mark.parametrize('impl', CPU_IMPLS)
def test_helpers_match_naive(impl):
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([2, 3, 8, 8], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fx = f.numpy()
    y = upfirdn2d.upsample2d(x, f, impl=impl)
    assert y.shape == (2, 3, 16, 16)
    assert_close(y, torch.from_numpy(naive_upfirdn2d(x.numpy(), fx, up=2, padding=[2, 1, 2, 1], gain=4)), 1e-10, 1e-10, 'up')
    y = upfirdn2d.downsample2d(x, f, impl=impl)
    assert y.shape == (2, 3, 4, 4)
    assert_close(y, torch.from_numpy(naive_upfirdn2d(x.numpy(), fx, down=2, padding=1)), 1e-10, 1e-10, 'down')
    y = upfirdn2d.filter2d(x, f, impl=impl)
    assert y.shape == (2, 3, 8, 8)
    assert_close(y, torch.from_numpy(naive_upfirdn2d(x.numpy(), fx, padding=[2, 1, 2, 1])), 1e-10, 1e-10, 'filter')
    # A constant image stays constant away from the border (normalised filter, gain up**2).
    ones = torch.ones([1, 1, 8, 8], dtype=torch.float64)
    assert_close(upfirdn2d.upsample2d(ones, f, impl=impl)[:, :, 2:-2, 2:-2], torch.ones([1, 1, 12, 12], dtype=torch.float64), 1e-12, 1e-12, 'dc up')
    assert_close(upfirdn2d.downsample2d(ones, f, impl=impl)[:, :, 1:-1, 1:-1], torch.ones([1, 1, 2, 2], dtype=torch.float64), 1e-12, 1e-12, 'dc down')

@pytest.mark.parametrize('impl', CPU_IMPLS)
@pytest.mark.parametrize('taps', [[1, 3, 3, 1], [1, 2, 1], [1, 1], list(range(1, 9))])
def test_helper_sizes_are_exact_multiples(impl, taps):
    f = upfirdn2d.setup_filter(taps)
    x = torch.randn([1, 2, 8, 12])
    for factor in (2, 4):
        assert upfirdn2d.upsample2d(x, f, up=factor, impl=impl).shape == (1, 2, 8 * factor, 12 * factor)
        assert upfirdn2d.downsample2d(x, f, down=factor, impl=impl).shape == (1, 2, 8 // factor, 12 // factor)
    assert upfirdn2d.filter2d(x, f, impl=impl).shape == x.shape
    assert upfirdn2d.filter2d(x, f, padding=[1, 2, 0, 3], impl=impl).shape == (1, 2, 11, 15)

def test_fast_path_takes_the_matrix_route_for_separable_filters():
    assert upfirdn2d._separable_taps(upfirdn2d.setup_filter([1, 3, 3, 1])) == ((0.125, 0.375, 0.375, 0.125),) * 2
    taps_x, taps_y = upfirdn2d._separable_taps(FILTERS['int rank1 3x5'])
    assert torch.equal(torch.tensor(taps_y)[:, None] * torch.tensor(taps_x)[None, :], FILTERS['int rank1 3x5'].double())
    assert upfirdn2d._separable_taps(FILTERS['random 3x2']) is None

def test_fast_path_falls_back_for_large_images(monkeypatch):
    monkeypatch.setattr(upfirdn2d, '_MAX_MATRIX_LEN', 4)
    f = FILTERS['1331 2-D']
    x = torch.randn([1, 2, 11, 10], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for args in (dict(up=2, padding=[2, 1, 2, 1]), dict(down=2, padding=1), dict(padding=[1, 2, 0, 3])):
        expected = naive_upfirdn2d(x.numpy(), f.numpy(), **args)
        assert_close(upfirdn2d.upfirdn2d(x, f, impl='fast', **args), torch.from_numpy(expected), 1e-10, 1e-10, str(args))

def test_setup_filter():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    assert torch.allclose(f, torch.tensor([1., 3, 3, 1]).ger(torch.tensor([1., 3, 3, 1])) / 64)
    assert upfirdn2d.setup_filter(list(range(8))).shape == (8,)                  # >= 8 taps: separable
    assert upfirdn2d.setup_filter([1, 2, 1], separable=True).shape == (3,)
    assert upfirdn2d.setup_filter(list(range(8)), separable=False).shape == (8, 8)
    assert torch.allclose(upfirdn2d.setup_filter([1, 2], flip_filter=True), torch.tensor([[1., 2], [2, 4]]).flip([0, 1]) / 9)
    assert torch.allclose(upfirdn2d.setup_filter([1, 2, 1], gain=4).sum(), torch.tensor(4.))
    sep = upfirdn2d.setup_filter([1, 2, 1], gain=4, separable=True)              # gain ** 0.5 per pass
    assert torch.allclose(sep.sum(), torch.tensor(2.))
    assert torch.equal(upfirdn2d.setup_filter(None), torch.ones([1, 1]))
    assert torch.equal(upfirdn2d.setup_filter([2., 2.], normalize=False), torch.full([2, 2], 4.))
    with pytest.raises(ValueError, match='separable=True needs a 1-D filter'):
        upfirdn2d.setup_filter([[1, 2], [3, 4]], separable=True)

def test_bad_arguments():
    x = torch.zeros([1, 1, 4, 4])
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    with pytest.raises(ValueError, match='x must be a 4-D tensor'):
        upfirdn2d.upfirdn2d(torch.zeros([4, 4]), f)
    with pytest.raises(ValueError, match='padding must be'):
        upfirdn2d.upfirdn2d(x, f, padding=[1, 2, 3])
    with pytest.raises(ValueError, match='up must be a positive int'):
        upfirdn2d.upfirdn2d(x, f, up=0)
    with pytest.raises(ValueError, match='empty output'):
        upfirdn2d.upfirdn2d(x, f, padding=-1)
    with pytest.raises(ValueError, match="unknown impl 'nope'"):
        upfirdn2d.upfirdn2d(x, f, impl='nope')

#----------------------------------------------------------------------------
# Gradients: gradcheck / gradgradcheck in float64, and every implementation == reference.

GRAD_CASES = [
    dict(up=2, padding=[2, 1, 2, 1]),       # upsample2d
    dict(down=2, padding=1),                # downsample2d
    dict(padding=[2, 1, 2, 1]),             # filter2d
    dict(up=[2, 1], down=[1, 2], padding=[0, -1, 1, 2]),
]

@pytest.mark.parametrize('impl', CPU_IMPLS)
@pytest.mark.parametrize('case', range(len(GRAD_CASES)))
@pytest.mark.parametrize('filter_name', ['1331 2-D', '121 separable', 'random 3x2'])
def test_gradcheck(impl, case, filter_name):
    f = FILTERS[filter_name].double()
    x = torch.randn([1, 2, 5, 4], dtype=torch.float64, requires_grad=True, generator=torch.Generator().manual_seed(0))
    fn = lambda x: upfirdn2d.upfirdn2d(x, f, impl=impl, gain=-1.3, **GRAD_CASES[case])
    assert torch.autograd.gradcheck(fn, [x], fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, [x], fast_mode=True)

FAST_CASES = GRAD_CASES + [dict(up=2, down=2, padding=1), dict(up=[2, 1], down=[1, 3], padding=[3, 0, -1, 2])]
FAST_DTYPE_CASES = [(torch.float64, name) for name in FILTERS] + \
    [(dtype, name) for dtype in (torch.float32, torch.bfloat16) for name in ('1331 2-D', '8-tap sep', 'random 3x2')]

@pytest.mark.parametrize('impl', [impl for impl in CPU_IMPLS if impl != 'ref'])
@pytest.mark.parametrize('dtype, filter_name', FAST_DTYPE_CASES, ids=str)
def test_impl_matches_ref_with_derivatives(impl, dtype, filter_name):
    f = FILTERS[filter_name]
    x = torch.randn([2, 2, 10, 9], generator=torch.Generator().manual_seed(0)).to(dtype).requires_grad_(True)
    tol = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 5e-2}[dtype]
    for case in FAST_CASES if dtype == torch.float64 else FAST_CASES[:3]:
        check_same_derivatives(lambda x: upfirdn2d.upfirdn2d(x, f, impl=impl, **case),
                               lambda x: upfirdn2d.upfirdn2d(x, f, impl='ref', **case),
                               [x], rtol=tol, atol=tol, name=f'{impl} {dtype} {filter_name} {case}')

#----------------------------------------------------------------------------
# CUDA plugin vs reference (run on the GPU machine).

@pytest.mark.gpu
@pytest.mark.parametrize('filter_name', list(FILTERS))
def test_cuda_matches_ref(filter_name):
    f = FILTERS[filter_name]
    f = None if f is None else f.cuda()
    x = torch.randn([2, 5, 12, 11], generator=torch.Generator().manual_seed(0)).cuda().requires_grad_(True)
    for case in FAST_CASES:
        check_same_derivatives(lambda x: upfirdn2d.upfirdn2d(x, f, impl='cuda', **case),
                               lambda x: upfirdn2d.upfirdn2d(x, f, impl='ref', **case),
                               [x], rtol=1e-4, atol=1e-4, name=f'cuda {filter_name} {case}')

#----------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize('filter_name', list(FILTERS))
def test_cuda_float64_matches_ref_tightly(filter_name):
    f = FILTERS[filter_name]
    f = None if f is None else f.cuda()
    x = torch.randn([2, 3, 10, 9], dtype=torch.float64, generator=torch.Generator().manual_seed(0)).cuda().requires_grad_(True)
    for case in FAST_CASES:
        check_same_derivatives(lambda x: upfirdn2d.upfirdn2d(x, f, impl='cuda', gain=-1.3, **case),
                               lambda x: upfirdn2d.upfirdn2d(x, f, impl='ref', gain=-1.3, **case),
                               [x], rtol=1e-10, atol=1e-10, name=f'cuda float64 {filter_name} {case}')

@pytest.mark.gpu
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_cuda_half_precision(dtype):
    """A 2-D filter is accumulated in float32 and rounded once: within a unit in the last place
    of exact maths. A separable filter runs as two passes, so its intermediate is rounded too:
    within a few units of the largest output."""
    rel = {torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}[dtype]
    x = torch.randn([4, 8, 16, 15], generator=torch.Generator().manual_seed(0)).cuda().to(dtype)
    for name in ('1331 2-D', 'random 3x2', 'int rank1 3x5', '8-tap sep'):
        f = FILTERS[name].cuda()
        for case in FAST_CASES:
            y = upfirdn2d.upfirdn2d(x, f, impl='cuda', **case)
            assert y.dtype == dtype
            expected = upfirdn2d.upfirdn2d(x.double(), f, impl='ref', **case)
            if f.ndim == 2:
                assert_close(y.double(), expected, rtol=rel, atol=1e-3 * rel, name=f'cuda {dtype} {name} {case}')
            else:
                scale = float(expected.abs().max()) * float(f.abs().sum()) ** 2
                assert_close(y.double(), expected, rtol=0, atol=2 * rel * scale, name=f'cuda {dtype} {name} {case}')

@pytest.mark.gpu
def test_cuda_output_larger_than_one_grid():
    """More output pixels than 65536 blocks x 256 threads: the grid-stride loop covers them all."""
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device='cuda')
    x = torch.randn([20, 256, 32, 32], device='cuda', generator=torch.Generator(device='cuda').manual_seed(0))
    y = upfirdn2d.upsample2d(x, f, impl='cuda')
    assert y.numel() > 65536 * 256
    assert_close(y, upfirdn2d.upsample2d(x, f, impl='ref'), rtol=1e-5, atol=1e-5, name='large cuda upsample2d')
