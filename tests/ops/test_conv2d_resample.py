"""conv2d_resample against an explicit NumPy composition, fast paths == reference path
(values, first and second derivatives), and conv2d_gradfix."""

import itertools

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.conftest import assert_close
from tests.ops.naive import check_same_derivatives, naive_conv2d, naive_upfirdn2d
from torch_utils.ops import conv2d_gradfix, conv2d_resample, upfirdn2d

def naive_conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    """Upsample (zero insertion + filter, gain up**2), pad, convolve, filter + downsample,
    step by step in NumPy. The padding is the user's plus what upsample2d()/downsample2d()
    add for the filter, all applied before the convolution."""
    fh, fw = (1, 1) if f is None else (f.shape[0], f.shape[-1])
    px0, px1, py0, py1 = (padding,) * 4 if isinstance(padding, int) else padding
    if up > 1:
        px0, px1, py0, py1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1, py0, py1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    y = naive_upfirdn2d(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], flip_filter=flip_filter, gain=up ** 2)
    y = naive_conv2d(y, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        y = naive_upfirdn2d(y, f, down=down, flip_filter=flip_filter)
    return y

# (kernel size, up, down, padding): every combination the StyleGAN2 networks use, plus
# asymmetric and negative paddings that exercise the remaining branches.
NETWORK_CASES = [
    (3, 1, 1, 1),   # G/D 3x3 conv, D epilogue
    (1, 1, 1, 0),   # toRGB, fromRGB
    (3, 2, 1, 1),   # G upsampling conv (transposed conv + filter)
    (3, 1, 2, 1),   # D downsampling conv (filter + strided conv)
    (1, 1, 2, 0),   # D resnet skip (1x1 + down)
    (1, 2, 1, 0),   # 1x1 + up
]
EXTRA_CASES = [
    (3, 2, 2, 1), (3, 2, 2, 0), (1, 2, 2, 0), (2, 2, 1, 0), (4, 2, 1, [2, 1, 0, 3]), (3, 1, 1, [1, 0, 2, 1]),
    (3, 1, 1, -1), (3, 2, 1, -1), (3, 2, 1, [-2, -2, -3, -3]), (3, 1, 2, [0, 2, -1, 1]), (3, 4, 1, 1), (3, 1, 4, 1),
]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('case', NETWORK_CASES + EXTRA_CASES, ids=str)
def test_matches_naive(case):
    k, up, down, padding = case
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    gen = torch.Generator().manual_seed(0)
    for groups, flip_weight, flip_filter in itertools.product([1, 2], [True, False], [False, True]):
        x = torch.randn([2, 4, 8, 8], dtype=torch.float64, generator=gen)
        w = torch.randn([6, 4 // groups, k, k], dtype=torch.float64, generator=gen)
        args = dict(up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight, flip_filter=flip_filter)
        expected = torch.from_numpy(naive_conv2d_resample(x.numpy(), w.numpy(), f.numpy(), **args))
        assert_close(conv2d_resample.conv2d_resample(x, w, f, **args), expected, 1e-10, 1e-10, f'fast {case} {args}')
        assert_close(conv2d_resample._conv2d_resample_ref(x, w, f, **args), expected, 1e-10, 1e-10, f'ref {case} {args}')

def test_network_output_sizes():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([2, 4, 16, 16])
    w3, w1 = torch.randn([5, 4, 3, 3]), torch.randn([5, 4, 1, 1])
    assert conv2d_resample.conv2d_resample(x, w3, f, up=2, padding=1).shape == (2, 5, 32, 32)
    assert conv2d_resample.conv2d_resample(x, w3, f, down=2, padding=1).shape == (2, 5, 8, 8)
    assert conv2d_resample.conv2d_resample(x, w1, f, down=2).shape == (2, 5, 8, 8)
    assert conv2d_resample.conv2d_resample(x, w3, padding=1).shape == (2, 5, 16, 16)

@pytest.mark.parametrize('case', NETWORK_CASES + [(3, 2, 2, 1), (3, 1, 1, [1, 0, 2, 1])], ids=str)
def test_fast_matches_ref_with_derivatives(case):
    k, up, down, padding = case
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn([2, 4, 6, 6], dtype=torch.float64, generator=gen).requires_grad_(True)
    w = torch.randn([4, 2, k, k], dtype=torch.float64, generator=gen).requires_grad_(True)
    check_same_derivatives(lambda x, w: conv2d_resample.conv2d_resample(x, w, f, up=up, down=down, padding=padding, groups=2),
                           lambda x, w: conv2d_resample._conv2d_resample_ref(x, w, f, up=up, down=down, padding=padding, groups=2),
                           [x, w], rtol=1e-10, atol=1e-10, name=str(case))

@pytest.mark.parametrize('case', NETWORK_CASES, ids=str)
def test_gradcheck(case):
    k, up, down, padding = case
    f = upfirdn2d.setup_filter([1, 3, 3, 1]).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn([1, 2, 4, 4], dtype=torch.float64, generator=gen).requires_grad_(True)
    w = torch.randn([2, 2, k, k], dtype=torch.float64, generator=gen).requires_grad_(True)
    fn = lambda x, w: conv2d_resample.conv2d_resample(x, w, f, up=up, down=down, padding=padding)
    assert torch.autograd.gradcheck(fn, [x, w], fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, [x, w], fast_mode=True)

def test_bad_arguments():
    x, w = torch.zeros([1, 4, 8, 8]), torch.zeros([2, 4, 3, 3])
    with pytest.raises(ValueError, match='needs a filter f'):
        conv2d_resample.conv2d_resample(x, w, None, up=2)
    with pytest.raises(ValueError, match='groups=3 does not fit x with 4 channels'):
        conv2d_resample.conv2d_resample(x, torch.zeros([3, 1, 3, 3]), groups=3)
    with pytest.raises(ValueError, match="w must be a 4-D tensor .* of x's dtype"):
        conv2d_resample.conv2d_resample(x, w.double())

#----------------------------------------------------------------------------
# conv2d_gradfix: the wrappers, and the claim behind no_weight_gradients() being a no-op.

class _RecordConvBackwardMasks(TorchDispatchMode):
    """Records the output_mask (input, weight, bias) of every convolution_backward call."""
    def __init__(self):
        super().__init__()
        self.masks = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution_backward.default:
            self.masks.append(tuple(args[-1]))
        return func(*args, **(kwargs or {}))

def test_gradfix_wrappers_match_torch():
    x, w, b = torch.randn([2, 4, 7, 7]), torch.randn([6, 2, 3, 3]), torch.randn([6])
    assert torch.equal(conv2d_gradfix.conv2d(x, w, stride=2, padding=1, groups=2),
                       torch.nn.functional.conv2d(x, w, stride=2, padding=1, groups=2))
    assert torch.equal(conv2d_gradfix.conv2d(x, w, b, stride=2, padding=1, groups=2),      # With a bias: torch's own.
                       torch.nn.functional.conv2d(x, w, b, stride=2, padding=1, groups=2))
    wt = torch.randn([4, 3, 3, 3])
    assert torch.equal(conv2d_gradfix.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1, groups=2),
                       torch.nn.functional.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1, groups=2))

# (transpose, x shape, w shape, stride, padding, output_padding, groups): the networks' cases
# (3x3 stride 1 and 2, 1x1, transposed stride 2) and odd sizes whose last rows a stride skips.
GRADFIX_CASES = [
    (False, [2, 4, 8, 8], [6, 4, 3, 3], 1, 1, 0, 1),
    (False, [2, 4, 9, 9], [6, 2, 3, 3], 2, 0, 0, 2),
    (False, [2, 4, 8, 7], [6, 4, 3, 3], 2, [1, 0], 0, 1),
    (False, [2, 4, 6, 6], [6, 4, 1, 1], 1, 0, 0, 1),
    (True,  [2, 4, 5, 5], [4, 3, 3, 3], 2, 0, 0, 1),
    (True,  [2, 4, 5, 6], [4, 3, 3, 3], 2, 1, 1, 2),
]

def _gradfix_pair(case):
    """(the Function, as the wrappers give it inside differentiable_backward(); torch's function)."""
    transpose, _, _, stride, padding, output_padding, groups = case
    if transpose:
        wrapper = lambda x, w: conv2d_gradfix.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding, groups=groups)
        ref = lambda x, w: torch.nn.functional.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding, groups=groups)
    else:
        wrapper = lambda x, w: conv2d_gradfix.conv2d(x, w, stride=stride, padding=padding, groups=groups)
        ref = lambda x, w: torch.nn.functional.conv2d(x, w, stride=stride, padding=padding, groups=groups)
    def ours(x, w):
        with conv2d_gradfix.differentiable_backward():
            y = wrapper(x, w)
        assert type(y.grad_fn).__name__ == '_Conv2dBackward', type(y.grad_fn).__name__
        return y
    return ours, ref

@pytest.mark.parametrize('case', [GRADFIX_CASES[0], GRADFIX_CASES[4]], ids=str)
def test_gradfix_function_only_inside_differentiable_backward(case):
    """The wrappers are torch's functions (its autograd node) outside the context, the Function
    inside it, also nested, and torch's again after it, also after an exception."""
    ours, ref = _gradfix_pair(case)
    x, w = torch.randn(case[1], requires_grad=True), torch.randn(case[2])
    wrapper = conv2d_gradfix.conv_transpose2d if case[0] else conv2d_gradfix.conv2d
    kwargs = dict(stride=case[3], padding=case[4], groups=case[6], **(dict(output_padding=case[5]) if case[0] else {}))
    assert type(wrapper(x, w, **kwargs).grad_fn).__name__ == 'ConvolutionBackward0'
    with conv2d_gradfix.differentiable_backward():
        with conv2d_gradfix.differentiable_backward():
            assert type(wrapper(x, w, **kwargs).grad_fn).__name__ == '_Conv2dBackward'
        assert type(wrapper(x, w, **kwargs).grad_fn).__name__ == '_Conv2dBackward'
    with pytest.raises(KeyError):
        with conv2d_gradfix.differentiable_backward():
            raise KeyError('x')
    assert type(wrapper(x, w, **kwargs).grad_fn).__name__ == 'ConvolutionBackward0'
    assert torch.equal(ours(x, w), ref(x, w))

@pytest.mark.parametrize('case', GRADFIX_CASES, ids=str)
def test_gradfix_function_equals_torch_to_second_order(case):
    """The Function with a backward of differentiable convolutions against torch's own
    derivatives (the reference twin), float64: values, gradients (with create_graph and
    without: the Function's two backward paths), and an R1-style second pass (the gradient of
    a function of the input gradient) to the input and the weight."""
    ours, ref = _gradfix_pair(case)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(case[1], generator=gen, dtype=torch.float64)
    w0 = torch.randn(case[2], generator=gen, dtype=torch.float64)
    results = []
    for fn in (ours, ref):
        x, w = x0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
        y = fn(x, w * 0.5)      # A non-leaf weight, as the networks' equalised-lr weights.
        gx, gw = torch.autograd.grad(y.sin().sum(), [x, w], create_graph=True)
        ggx, ggw = torch.autograd.grad(gx.square().sum() + gw.cos().sum(), [x, w])
        results.append((y, gx, gw, ggx, ggw))
    for name, a, b in zip(['y', 'dx', 'dw', 'ddx', 'ddw'], *results):
        assert_close(a, b, rtol=1e-12, atol=1e-12, name=name)
    first_order = []        # Without create_graph the Function takes its other path (torch's kernel).
    for fn in (ours, ref):
        x, w = x0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
        first_order.append(torch.autograd.grad(fn(x, w * 0.5).sin().sum(), [x, w]))
    for name, a, b in zip(['dx (first order)', 'dw (first order)'], *first_order):
        assert_close(a, b, rtol=1e-12, atol=1e-12, name=name)
    x, w = x0[:1, :, :5, :5].clone().requires_grad_(True), w0.clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(ours, (x, w))

@pytest.mark.parametrize('case', [GRADFIX_CASES[1], GRADFIX_CASES[5]], ids=str)
def test_gradfix_function_under_bf16_autocast(case):
    """Under CPU bf16 autocast the Function convolves what torch's convolution would (both
    operands in bfloat16): the same output and the same gradients, dtype included."""
    ours, ref = _gradfix_pair(case)
    gen = torch.Generator().manual_seed(1)
    x0, w0 = torch.randn(case[1], generator=gen), torch.randn(case[2], generator=gen)
    results = []
    for fn in (ours, ref):
        x, w = x0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            y = fn(x, w)
        gx, gw = torch.autograd.grad(y.float().square().sum(), [x, w])
        results.append((y, gx, gw))
    for name, a, b in zip(['y', 'dx', 'dw'], *results):
        assert a.dtype == b.dtype, name
        assert_close(a.float(), b.float(), rtol=1e-2, atol=1e-2, name=name)

def test_image_gradient_skips_weight_gradient():
    """R1-style gradient: no weight gradient is computed (no convolution_backward asks for one),
    with or without no_weight_gradients(); the double backward then reaches the weights."""
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([2, 4, 8, 8], requires_grad=True)
    w = torch.randn([4, 4, 3, 3], requires_grad=True)
    for context in (conv2d_gradfix.no_weight_gradients, _nothing):
        with conv2d_gradfix.differentiable_backward():      # As the loss's R1 pass.
            y = conv2d_resample.conv2d_resample(x, w, f, down=2, padding=1)
        assert type(y.grad_fn).__name__ == '_Conv2dBackward'
        with _RecordConvBackwardMasks() as rec, context():
            (gx,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
        assert all(mask[1] is False for mask in rec.masks), rec.masks    # (Input gradients are conv_transpose2d calls.)
        (gw,) = torch.autograd.grad(gx.square().sum(), [w])
        assert gw.abs().sum() > 0

@pytest.mark.parametrize('differentiable', [True, False], ids=['Function', 'torch'])
def test_first_order_image_gradient_asks_for_no_weight_gradient(differentiable):
    """Without create_graph the backward is torch's convolution_backward, in the Function (inside
    differentiable_backward()) as in torch's own node: it runs (one call per convolution), and
    none asks for a weight gradient that nobody requested."""
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([2, 4, 8, 8], requires_grad=True)
    w = torch.randn([4, 4, 3, 3], requires_grad=True)
    context = conv2d_gradfix.differentiable_backward if differentiable else _nothing
    with context():
        y = conv2d_resample.conv2d_resample(x, w, f, down=2, padding=1)
    assert type(y.grad_fn).__name__ == ('_Conv2dBackward' if differentiable else 'ConvolutionBackward0')
    with _RecordConvBackwardMasks() as rec:
        (gx,) = torch.autograd.grad(y.square().sum(), [x])
    assert rec.masks and all(list(mask) == [True, False, False] for mask in rec.masks), rec.masks
    with _RecordConvBackwardMasks() as rec:
        with context():
            y = conv2d_resample.conv2d_resample(x, w, f, down=2, padding=1)
        y.square().sum().backward()
    assert rec.masks and all(list(mask) == [True, True, False] for mask in rec.masks), rec.masks
    assert torch.allclose(x.grad, gx, rtol=0, atol=0) and w.grad.abs().sum() > 0

class _nothing:
    def __enter__(self):
        return self
    def __exit__(self, *_):
        return False

#----------------------------------------------------------------------------
# On the GPU machine: the default path there (CUDA upfirdn2d plugin, cuDNN) against the reference.

@pytest.mark.gpu
@pytest.mark.parametrize('case', NETWORK_CASES + [(3, 2, 2, 1)], ids=str)
def test_cuda_matches_ref_with_derivatives(case):
    k, up, down, padding = case
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device='cuda')
    gen = torch.Generator().manual_seed(0)
    x = torch.randn([2, 4, 8, 8], dtype=torch.float64, generator=gen).cuda().requires_grad_(True)
    w = torch.randn([4, 2, k, k], dtype=torch.float64, generator=gen).cuda().requires_grad_(True)
    check_same_derivatives(lambda x, w: conv2d_resample.conv2d_resample(x, w, f, up=up, down=down, padding=padding, groups=2),
                           lambda x, w: conv2d_resample._conv2d_resample_ref(x, w, f, up=up, down=down, padding=padding, groups=2),
                           [x, w], rtol=1e-9, atol=1e-9, name=f'cuda {case}')

#----------------------------------------------------------------------------
