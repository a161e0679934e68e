"""fma and grid_sample_gradfix: values and first derivatives against the obvious twins,
gradcheck / gradgradcheck in float64."""

import numpy as np
import pytest
import torch

from tests.ops.naive import check_same_derivatives
from torch_utils.ops import fma, grid_sample_gradfix

#----------------------------------------------------------------------------
# fma

FMA_SHAPES = [
    ([3, 4], [3, 4], [3, 4]),
    ([2, 1, 5], [1, 3, 1], [5]),            # every operand broadcast
    ([4, 6, 3, 3], [4, 6, 1, 1], [1, 1, 3, 3]), # activations times demodulation plus noise
]

@pytest.mark.parametrize('shapes', FMA_SHAPES, ids=str)
def test_fma(shapes):
    gen = torch.Generator().manual_seed(0)
    a, b, c = [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_(True) for s in shapes]
    check_same_derivatives(fma.fma, fma._fma_ref, [a, b, c], rtol=1e-12, atol=1e-12, name=f'fma {shapes}')
    assert torch.autograd.gradcheck(fma.fma, [a, b, c])
    assert torch.autograd.gradgradcheck(fma.fma, [a, b, c])
    np.testing.assert_allclose(fma.fma(a, b, c).detach().numpy(), a.detach().numpy() * b.detach().numpy() + c.detach().numpy(), rtol=1e-12, atol=1e-14)

#----------------------------------------------------------------------------
# grid_sample

def _naive_bilinear(img, gx, gy):
    """One output pixel by hand: align_corners=False, zero padding."""
    _, h, w = img.shape
    ix, iy = ((gx + 1) * w - 1) / 2, ((gy + 1) * h - 1) / 2
    x0, y0 = int(np.floor(ix)), int(np.floor(iy))
    out = np.zeros(img.shape[0])
    for yy, wy in ((y0, 1 - (iy - y0)), (y0 + 1, iy - y0)):
        for xx, wx in ((x0, 1 - (ix - x0)), (x0 + 1, ix - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * img[:, yy, xx]
    return out

def _grid_inputs(dtype=torch.float64, seed=0, shape=(2, 3, 5, 6), out_hw=(4, 7)):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    grid = torch.rand([shape[0], *out_hw, 2], generator=gen, dtype=torch.float64) * 2.6 - 1.3 # Some outside [-1, 1].
    return x.to(dtype).requires_grad_(True), grid.to(dtype).requires_grad_(True)

@pytest.mark.parametrize('fn', [grid_sample_gradfix.grid_sample, grid_sample_gradfix._GridSample2d.apply], ids=['default', 'custom'])
def test_grid_sample_matches_hand_computation(fn):
    x, grid = _grid_inputs()
    y = fn(x, grid).detach().numpy()
    xn, gn = x.detach().numpy(), grid.detach().numpy()
    for n in range(gn.shape[0]):
        for i in range(gn.shape[1]):
            for j in range(gn.shape[2]):
                np.testing.assert_allclose(y[n, :, i, j], _naive_bilinear(xn[n], *gn[n, i, j]), rtol=1e-12, atol=1e-12)

@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_custom_function_matches_torch_first_order(dtype):
    x, grid = _grid_inputs(dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    fn = grid_sample_gradfix._GridSample2d.apply
    check_same_derivatives(fn, grid_sample_gradfix._grid_sample_ref, [x, grid],
                           rtol=tol, atol=tol, name=f'grid_sample {dtype}', second_order=False)
    x2 = x.detach().requires_grad_(True) # Gradient with respect to the image only.
    check_same_derivatives(fn, grid_sample_gradfix._grid_sample_ref, [x2, grid.detach()],
                           rtol=tol, atol=tol, name=f'grid_sample input-only {dtype}', second_order=False)

@pytest.mark.parametrize('fn', [grid_sample_gradfix.grid_sample, grid_sample_gradfix._GridSample2d.apply], ids=['default', 'custom'])
def test_grid_sample_gradgradcheck(fn):
    x, grid = _grid_inputs(shape=(1, 2, 4, 5), out_hw=(3, 3))
    assert torch.autograd.gradcheck(fn, [x, grid])
    assert torch.autograd.gradgradcheck(fn, [x, grid])
    # R1 through an augmentation: the grid is constant, the second derivative flows into the input.
    assert torch.autograd.gradgradcheck(lambda x: fn(x, grid.detach()), [x])

def test_custom_function_matches_native_second_order():
    """Where this PyTorch differentiates its own backward (then grid_sample() uses it), the
    custom Function agrees with it to second order; otherwise grid_sample() is the Function."""
    if not grid_sample_gradfix._native_has_double_backward():
        x, grid = _grid_inputs()
        y = grid_sample_gradfix._grid_sample_ref(x, grid)
        (gx,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
        with pytest.raises(RuntimeError, match='not implemented'):
            torch.autograd.grad(gx.square().sum(), [x])
        pytest.skip('this PyTorch cannot differentiate grid_sampler_2d_backward; nothing to compare against')
    x, grid = _grid_inputs()
    check_same_derivatives(grid_sample_gradfix._GridSample2d.apply, grid_sample_gradfix._grid_sample_ref, [x, grid],
                           rtol=1e-12, atol=1e-12, name='custom vs native')
    check_same_derivatives(grid_sample_gradfix._GridSample2d.apply, grid_sample_gradfix._grid_sample_ref,
                           [x, grid.detach()], rtol=1e-12, atol=1e-12, name='custom vs native, input only')

def test_grid_sample_bad_shapes():
    with pytest.raises(ValueError, match=r'expected input \[N, C, H, W\] and grid \[N, H_out, W_out, 2\]'):
        grid_sample_gradfix.grid_sample(torch.zeros([1, 1, 4, 4]), torch.zeros([1, 4, 4, 3]))

# The first call of a process decides (and caches) which path grid_sample takes; it used to
# fail when that call came without gradients. A fresh interpreter per mode, for the op and for
# the augment pipe (the geometric augmentations resample through it).
FIRST_CALL_NO_GRAD = """
import sys, torch
from torch_utils.ops import grid_sample_gradfix
from training.augment import AugmentPipe
mode = torch.no_grad() if sys.argv[1] == 'no_grad' else torch.inference_mode()
with mode:
    if sys.argv[2] == 'op':
        out = grid_sample_gradfix.grid_sample(torch.ones([1, 1, 4, 4]), torch.zeros([1, 2, 2, 2]))
        assert out.shape == (1, 1, 2, 2) and bool((out == 1).all()), out
    else:
        pipe = AugmentPipe(rotate=1)
        pipe.p.fill_(1)
        assert pipe(torch.randn([2, 3, 16, 16])).shape == (2, 3, 16, 16)
print('ok')
"""

@pytest.mark.parametrize('what', ['op', 'augment_pipe'])
@pytest.mark.parametrize('mode', ['no_grad', 'inference_mode'])
def test_grid_sample_first_call_without_gradients(mode, what):
    import os, subprocess, sys
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, '-c', FIRST_CALL_NO_GRAD, mode, what], cwd=repo, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr[-2000:]

#----------------------------------------------------------------------------
# On the GPU machine: grid_sample's default path on CUDA against the custom Function.

@pytest.mark.gpu
def test_grid_sample_cuda_second_order():
    x, grid = _grid_inputs()
    x, grid = x.detach().cuda().requires_grad_(True), grid.detach().cuda().requires_grad_(True)
    check_same_derivatives(grid_sample_gradfix.grid_sample, grid_sample_gradfix._GridSample2d.apply, [x, grid],
                           rtol=1e-10, atol=1e-10, name='cuda grid_sample')

#----------------------------------------------------------------------------
