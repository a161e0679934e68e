"""filtered_lrelu against a NumPy definition, every implementation, with first and second
derivatives in float64 (R1 differentiates the discriminator's gradient, path-length
regularisation the generator's)."""

import itertools

import numpy as np
import pytest
import torch

from networks.stylegan3 import design_lowpass_filter
from tests.conftest import assert_close
from tests.ops.naive import check_same_derivatives, naive_upfirdn2d
from torch_utils.ops import filtered_lrelu

CPU_IMPLS = [impl for impl in filtered_lrelu._IMPLS if impl != 'cuda']

def naive_filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    """The definition in NumPy: bias, upfirdn (gain up^2), leaky ReLU * gain, clamp, upfirdn."""
    x = np.asarray(x, dtype=np.float64)
    if b is not None:
        x = x + np.asarray(b, dtype=np.float64).reshape(1, -1, 1, 1)
    x = naive_upfirdn2d(x, fu, up=up, padding=padding, flip_filter=flip_filter, gain=up ** 2)
    x = np.where(x >= 0, x, x * slope) * gain
    if clamp is not None:
        x = np.clip(x, -clamp, clamp)
    return naive_upfirdn2d(x, fd, down=down, flip_filter=flip_filter)

def _filters():
    """The filter kinds StyleGAN3 layers use, small: Kaiser 1-D (T, R's upsampling), jinc
    2-D (R's downsampling), none (ToRGB), and a random asymmetric 2-D one (flip matters)."""
    rng = np.random.default_rng(0)
    return {
        'kaiser':  design_lowpass_filter(numtaps=8, cutoff=3, width=3, fs=16).double(),
        'jinc':    design_lowpass_filter(numtaps=6, cutoff=3, width=3, fs=16, radial=True).double(),
        'random':  torch.tensor(rng.normal(size=[3, 4])),
        'none':    None,
    }

FILTERS = _filters()

# (fu, fd, up, down, padding): the layer shapes of StyleGAN3 plus odd ones.
CASES = [
    ('kaiser', 'kaiser', 2, 2, [5, 5, 5, 5]),       # T, hidden layer
    ('kaiser', 'jinc',   2, 2, [4, 3, 2, 5]),       # R, hidden layer; uneven padding
    ('kaiser', 'kaiser', 4, 2, [7, 6, 7, 6]),       # sampling rate doubles in the layer
    ('none',   'none',   1, 1, 0),                  # ToRGB
    ('random', 'random', 2, 1, [1, -1, 0, 2]),      # cropping, non-symmetric taps
    ('none',   'jinc',   1, 2, [3, 2, 3, 2]),
    ('kaiser', 'none',   2, 1, [-1, 0, 2, 1]),
]

@pytest.mark.parametrize('case', CASES, ids=[f'{c[0]}-{c[1]}-up{c[2]}-down{c[3]}' for c in CASES])
def test_matches_naive(case):
    fu_name, fd_name, up, down, padding = case
    fu, fd = FILTERS[fu_name], FILTERS[fd_name]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, 7, 6], dtype=torch.float64, generator=gen)
    b = torch.randn([3], dtype=torch.float64, generator=gen)
    for (gain, slope, clamp), flip in itertools.product([(2 ** 0.5, 0.2, None), (1.0, 1.0, 0.3), (0.7, 0.0, 1.0)], [False, True]):
        args = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
        expected = naive_filtered_lrelu(x.numpy(), None if fu is None else fu.numpy(), None if fd is None else fd.numpy(), b.numpy(), **args)
        for impl in CPU_IMPLS:
            actual = filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl=impl, **args)
            assert_close(actual, torch.from_numpy(expected), rtol=1e-10, atol=1e-10, name=f'{impl} {case} {args}')

@pytest.mark.parametrize('case', CASES, ids=[f'{c[0]}-{c[1]}-up{c[2]}-down{c[3]}' for c in CASES])
def test_large_image_path_matches_naive_and_ref(case, monkeypatch):
    """Beyond upfirdn2d's matrix size limit the fast path resamples with strided 1-D
    convolutions; the limit lowered to 2 pixels sends these small images there: values against
    the NumPy definition, first and second derivatives against the reference (float64)."""
    from torch_utils.ops import upfirdn2d
    monkeypatch.setattr(upfirdn2d, '_MAX_MATRIX_LEN', 2)
    fu_name, fd_name, up, down, padding = case
    fu, fd = FILTERS[fu_name], FILTERS[fd_name]
    gen = torch.Generator().manual_seed(7)
    x = torch.randn([2, 3, 7, 6], dtype=torch.float64, generator=gen)
    b = torch.randn([3], dtype=torch.float64, generator=gen)
    for flip in (False, True):
        args = dict(up=up, down=down, padding=padding, gain=1.3, slope=0.2, clamp=1.0, flip_filter=flip)
        expected = naive_filtered_lrelu(x.numpy(), None if fu is None else fu.numpy(), None if fd is None else fd.numpy(), b.numpy(), **args)
        actual = filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl='fast', **args)
        assert_close(actual, torch.from_numpy(expected), rtol=1e-10, atol=1e-10, name=f'large-image path {case} flip={flip}')
    run = lambda impl: (lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding, clamp=1.5, impl=impl))
    check_same_derivatives(run('fast'), run('ref'), [x.requires_grad_(True), b.requires_grad_(True)], rtol=1e-10, atol=1e-10,
                           name=f'large-image path {case}')

def test_clamp_is_active_in_the_tests():
    """The clamp cases above clip a good share of the values (else they would test nothing)."""
    x = torch.randn([2, 3, 7, 6], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = filtered_lrelu.filtered_lrelu(x, None, None, None, gain=1.0, slope=1.0, clamp=0.3)
    assert 0.2 < float((y.abs() == 0.3).double().mean()) < 0.9

@pytest.mark.parametrize('case', CASES[:3] + CASES[4:5], ids=['T', 'R', 'up4', 'random'])
def test_fast_matches_ref_in_derivatives(case):
    """Values, gradients and second derivatives of the fast path equal the reference's (float64)."""
    fu_name, fd_name, up, down, padding = case
    fu, fd = FILTERS[fu_name], FILTERS[fd_name]
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([2, 3, 6, 5], dtype=torch.float64, generator=gen).requires_grad_(True)
    b = torch.randn([3], dtype=torch.float64, generator=gen).requires_grad_(True)
    def run(impl):
        return lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding, clamp=1.5, impl=impl)
    check_same_derivatives(run('fast'), run('ref'), [x, b], rtol=1e-10, atol=1e-10, name=f'fast vs ref {case}')

@pytest.mark.parametrize('impl', CPU_IMPLS)
@pytest.mark.parametrize('radial', [False, True], ids=['T', 'R'])
def test_gradcheck_and_gradgradcheck(impl, radial):
    """Finite differences agree with both derivatives (tiny sizes; inputs away from the kinks
    of the leaky ReLU and of the clamp with overwhelming probability)."""
    fu, fd = FILTERS['kaiser'], FILTERS['jinc' if radial else 'kaiser']
    gen = torch.Generator().manual_seed(4)
    x = torch.randn([1, 2, 5, 5], dtype=torch.float64, generator=gen).requires_grad_(True)
    b = torch.randn([2], dtype=torch.float64, generator=gen).requires_grad_(True)
    fn = lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[4, 3, 3, 4], clamp=0.8, impl=impl)
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))

def test_output_size_and_dtype():
    fu = design_lowpass_filter(numtaps=12, cutoff=4, width=4, fs=32)
    x = torch.randn([2, 4, 36, 36])
    for impl in CPU_IMPLS:
        y = filtered_lrelu.filtered_lrelu(x, fu, fu, up=2, down=2, padding=[11, 10, 11, 10], impl=impl)
        # (36 * 2 + 21 - 11 - 11 + 1) // 2 = 36: the layer keeps its size.
        assert y.shape == (2, 4, 36, 36) and y.dtype == torch.float32
    assert filtered_lrelu.filtered_lrelu(x.bfloat16(), fu, fu, up=2, down=2, padding=[11, 10, 11, 10]).dtype == torch.bfloat16

@pytest.mark.parametrize('kwargs, message', [
    (dict(up=0), 'up must be a positive int'),
    (dict(down=1.5), 'down must be a positive int'),
    (dict(b=torch.zeros([3])), r'b must be a tensor of shape \[4\]'),
    (dict(padding=[1, 2, 3]), 'padding must be'),
    (dict(padding=-20), 'empty output'),
    (dict(impl='nope'), 'unknown impl'),
    (dict(clamp=-1), 'clamp None or >= 0'),
])
def test_bad_arguments_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        filtered_lrelu.filtered_lrelu(torch.zeros([1, 4, 8, 8]), **kwargs)

def test_cuda_impl_refuses_cpu_tensors():
    with pytest.raises(ValueError, match='needs a CUDA tensor'):
        filtered_lrelu.filtered_lrelu(torch.zeros([1, 4, 8, 8]), impl='cuda')

def test_compiled_fast_path_matches_ref_on_cpu():
    """impl='cuda' runs the fast path through torch.compile; the same dispatch, on the CPU,
    equals the reference in value and gradient, and inside differentiable_backward() (where it
    takes the uncompiled fast path: torch.compile has no double backward) in second derivatives
    too (about 20-60 s of compilation)."""
    from torch_utils.ops import conv2d_gradfix
    fu, fd = FILTERS['kaiser'].float(), FILTERS['jinc'].float()
    gen = torch.Generator().manual_seed(5)
    x = torch.randn([2, 3, 6, 5], generator=gen, requires_grad=True)
    b = torch.randn([3], generator=gen)
    args = (fu, fd, b, 2, 2, (4, 3, 2, 5), 2 ** 0.5, 0.2, 1.0, False)
    y = filtered_lrelu._compiled_or_fast(x, *args)
    (g,) = torch.autograd.grad(y.square().sum(), [x])
    x_ref = x.detach().requires_grad_(True)
    y_ref = filtered_lrelu._filtered_lrelu_ref(x_ref, *args)
    (g_ref,) = torch.autograd.grad(y_ref.square().sum(), [x_ref])
    assert_close(y, y_ref, rtol=1e-5, atol=1e-6, name='compiled value')
    assert_close(g, g_ref, rtol=1e-5, atol=1e-5, name='compiled gradient')
    def in_context(fn):
        def run(x):
            with conv2d_gradfix.differentiable_backward():
                return fn(x, *args)
        return run
    check_same_derivatives(in_context(filtered_lrelu._compiled_or_fast), in_context(filtered_lrelu._filtered_lrelu_ref),
                           [x.detach().double().requires_grad_(True)], rtol=1e-9, atol=1e-9, name='differentiable_backward()')

@pytest.mark.gpu
@pytest.mark.parametrize('radial', [False, True], ids=['T', 'R'])
def test_cuda_matches_ref_with_derivatives(radial):
    """First derivatives through the compiled path; second ones inside differentiable_backward()."""
    from torch_utils.ops import conv2d_gradfix
    fu, fd = FILTERS['kaiser'].float().cuda(), FILTERS['jinc' if radial else 'kaiser'].float().cuda()
    gen = torch.Generator().manual_seed(6)
    x = torch.randn([2, 3, 9, 8], generator=gen).cuda().requires_grad_(True)
    b = torch.randn([3], generator=gen).cuda().requires_grad_(True)
    def run(impl):
        return lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[4, 3, 3, 4], clamp=1.5, impl=impl)
    check_same_derivatives(run('cuda'), run('ref'), [x, b], rtol=1e-4, atol=1e-5, name='cuda vs ref', second_order=False)
    with conv2d_gradfix.differentiable_backward():
        check_same_derivatives(run('cuda'), run('ref'), [x, b], rtol=1e-4, atol=1e-5, name='cuda vs ref, second order')
