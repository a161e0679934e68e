"""bias_act against hand-written formulas for every activation, with gradients."""

import numpy as np
import pytest
import torch

from tests.conftest import assert_close
from tests.ops.naive import check_same_derivatives
from torch_utils.ops import bias_act

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

FORMULAS = { # (numpy formula with slope alpha, default gain)
    'linear':   (lambda x, a: x,                                            1.0),
    'relu':     (lambda x, a: np.maximum(x, 0),                              np.sqrt(2)),
    'lrelu':    (lambda x, a: np.where(x > 0, x, a * x),                     np.sqrt(2)),
    'tanh':     (lambda x, a: np.tanh(x),                                    1.0),
    'sigmoid':  (lambda x, a: 1 / (1 + np.exp(-x)),                          1.0),
    'elu':      (lambda x, a: np.where(x > 0, x, np.expm1(x)),               1.0),
    'selu':     (lambda x, a: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)), 1.0),
    'softplus': (lambda x, a: np.log1p(np.exp(x)),                           1.0),
    'swish':    (lambda x, a: x / (1 + np.exp(-x)),                          np.sqrt(2)),
}

def _inputs(shape=(3, 5, 4, 2), dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2
    x = x + 0.05 * torch.sign(x) # Keep away from the kink at 0, for finite differences.
    b = torch.randn([shape[1]], generator=gen, dtype=torch.float64) * 0.5
    return x.to(dtype), b.to(dtype)

#----------------------------------------------------------------------------

def test_every_activation_has_a_formula():
    assert sorted(FORMULAS) == sorted(bias_act.activation_funcs)

@pytest.mark.parametrize('act', list(FORMULAS))
def test_matches_formula(act):
    formula, def_gain = FORMULAS[act]
    x, b = _inputs()
    xb = x.numpy() + b.numpy()[None, :, None, None]
    # Defaults: gain per activation, alpha 0.2, no clamp.
    assert_close(bias_act.bias_act(x, b, act=act), torch.from_numpy(formula(xb, 0.2) * def_gain), 1e-12, 1e-12, f'{act} default')
    # Explicit alpha, gain and clamp.
    expected = np.clip(formula(xb, 0.1) * 3.0, -1.5, 1.5)
    assert_close(bias_act.bias_act(x, b, act=act, alpha=0.1, gain=3.0, clamp=1.5), torch.from_numpy(expected), 1e-12, 1e-12, f'{act} gain clamp')
    # No bias; bias along another dimension.
    assert_close(bias_act.bias_act(x, act=act), torch.from_numpy(formula(x.numpy(), 0.2) * def_gain), 1e-12, 1e-12, f'{act} no bias')
    b3 = b[:4]
    expected = formula(x.numpy() + b3.numpy()[None, None, :, None], 0.2) * def_gain
    assert_close(bias_act.bias_act(x, b3, dim=2, act=act), torch.from_numpy(expected), 1e-12, 1e-12, f'{act} dim=2')
    # Fully-connected layout [N, C] and float32.
    x2 = x[:, :, 0, 0].float()
    expected = formula(x2.double().numpy() + b.numpy()[None, :], 0.2) * def_gain
    assert_close(bias_act.bias_act(x2, b.float(), act=act), torch.from_numpy(expected), 1e-5, 1e-5, f'{act} 2-D float32')

def test_clamp_zero_and_dtype_preserved():
    x, b = _inputs(dtype=torch.bfloat16)
    y = bias_act.bias_act(x, b, act='lrelu', clamp=0)
    assert y.dtype == torch.bfloat16 and bool((y == 0).all())

@pytest.mark.parametrize('act', list(FORMULAS))
def test_gradcheck(act):
    x, b = _inputs(shape=(2, 3, 2, 2))
    x.requires_grad_(True)
    b.requires_grad_(True)
    fn = lambda x, b: bias_act.bias_act(x, b, act=act, gain=1.3, clamp=10.0, impl='ref')
    assert torch.autograd.gradcheck(fn, [x, b])
    assert torch.autograd.gradgradcheck(fn, [x, b])

def test_clamp_blocks_gradient():
    x = torch.tensor([-3.0, -0.5, 0.5, 3.0], dtype=torch.float64, requires_grad=True)
    y = bias_act.bias_act(x[None], act='linear', clamp=1.0)
    (g,) = torch.autograd.grad(y.sum(), [x])
    assert g.tolist() == [0.0, 1.0, 1.0, 0.0]

def test_bad_arguments():
    x = torch.zeros([2, 3])
    with pytest.raises(ValueError, match="unknown act 'gelu'"):
        bias_act.bias_act(x, act='gelu')
    with pytest.raises(ValueError, match=r'b must be a 1-D tensor of length x.shape\[1\] = 3'):
        bias_act.bias_act(x, torch.zeros([4]))
    with pytest.raises(ValueError, match='clamp must be None or >= 0'):
        bias_act.bias_act(x, clamp=-1)
    with pytest.raises(ValueError, match="unknown impl 'nope'"):
        bias_act.bias_act(x, impl='nope')

#----------------------------------------------------------------------------
# CUDA plugin vs reference (run on the GPU machine): values, first and second derivatives.

@pytest.mark.gpu
@pytest.mark.parametrize('act', list(FORMULAS))
@pytest.mark.parametrize('clamp', [None, 0.8])
def test_cuda_matches_ref(act, clamp):
    x, b = _inputs(shape=(4, 6, 5, 3), dtype=torch.float32)
    x, b = x.cuda().requires_grad_(True), b.cuda().requires_grad_(True)
    check_same_derivatives(lambda x, b: bias_act.bias_act(x, b, act=act, clamp=clamp, impl='cuda'),
                           lambda x, b: bias_act.bias_act(x, b, act=act, clamp=clamp, impl='ref'),
                           [x, b], rtol=1e-5, atol=1e-5, name=f'cuda {act} clamp={clamp}')

#----------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize('act', list(FORMULAS))
def test_cuda_float64_matches_ref_tightly(act):
    """float64 through the kernel (parameters too), bias on a middle axis."""
    x, b = _inputs(shape=(3, 4, 6, 5))
    b = torch.randn([6], dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x, b = x.cuda().requires_grad_(True), b.cuda().requires_grad_(True)
    check_same_derivatives(lambda x, b: bias_act.bias_act(x, b, dim=2, act=act, clamp=0.8, impl='cuda'),
                           lambda x, b: bias_act.bias_act(x, b, dim=2, act=act, clamp=0.8, impl='ref'),
                           [x, b], rtol=1e-10, atol=1e-10, name=f'cuda float64 {act}')

@pytest.mark.gpu
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_cuda_half_precision_rounds_once(dtype):
    """Half inputs are computed in float32 and rounded once: within one unit of the last place
    (relative 2^-10 for float16, 2^-7 for bfloat16) of float32 maths on the same inputs."""
    rel = {torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}[dtype]
    x, b = _inputs(shape=(8, 16, 9, 7), dtype=torch.float32)
    x, b = x.cuda().to(dtype), b.cuda().to(dtype)
    for act in FORMULAS:
        y = bias_act.bias_act(x, b, act=act, clamp=3.0, impl='cuda')
        assert y.dtype == dtype
        expected = bias_act.bias_act(x.float(), b.float(), act=act, clamp=3.0, impl='ref')
        assert_close(y.float(), expected, rtol=rel, atol=1e-6, name=f'cuda {dtype} {act}')

@pytest.mark.gpu
def test_cuda_tensor_larger_than_one_grid():
    """More elements than 65536 blocks x 256 threads: the grid-stride loop must cover them all."""
    gen = torch.Generator(device='cuda').manual_seed(0)
    x = torch.randn([2, 64, 512, 300], device='cuda', generator=gen)
    b = torch.randn([64], device='cuda', generator=gen)
    assert x.numel() > 65536 * 256
    assert_close(bias_act.bias_act(x, b, act='lrelu', clamp=1.5, impl='cuda'),
                 bias_act.bias_act(x, b, act='lrelu', clamp=1.5, impl='ref'), rtol=1e-6, atol=1e-6, name='large cuda')
