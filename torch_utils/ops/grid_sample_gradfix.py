"""Bilinear `grid_sample` whose backward is itself differentiable, for R1 regularisation
through the geometric augmentations of ADA (Karras et al., NeurIPS 2020, Appendix B.1:
the image is resampled with a bilinear lookup and the R1 penalty needs the gradient of
D(aug(x)) with respect to x, then its derivative with respect to D's weights).

`torch.nn.functional.grid_sample` computes its gradient with `grid_sampler_2d_backward`.
Older PyTorch releases (those StyleGAN2-ADA targeted) have no derivative for it, so R1
through the augment pipe fails with "derivative for aten::grid_sampler_2d_backward is not
implemented". Newer ones (the pinned 2.13 included) do differentiate it. Hence two paths:

- native: `torch.nn.functional.grid_sample` itself, used when a one-time probe shows that
  the installed PyTorch differentiates its backward (3-8x faster than the other path on
  CPU for forward + R1-style double backward);
- `_GridSample2d`: the same fast forward kernel, with the backward written out in
  differentiable torch ops (gather / scatter_add / mul), so that any order of derivative
  works, with respect to the input and the grid, on any PyTorch version. Tests hold the
  two equal in value, first and second derivatives.

Semantics are fixed to those the augment pipe uses: mode='bilinear',
padding_mode='zeros', align_corners=False. For grid coordinates (gx, gy) in [-1, 1] the
pixel position is ix = ((gx + 1) * W - 1) / 2 (likewise iy), and the output is the
bilinear blend of the four neighbouring pixels, with pixels outside the image read as 0:

    out = sum over corners (cy, cx) of wy(cy) * wx(cx) * input[cy, cx]
    d out / d ix = sum over cy of wy(cy) * (input[cy, x0 + 1] - input[cy, x0])
"""

import functools

import torch

#----------------------------------------------------------------------------

def grid_sample(input: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """input: [N, C, H, W]; grid: [N, H_out, W_out, 2] (x, y) in [-1, 1]. Returns [N, C, H_out, W_out]."""
    if not (isinstance(input, torch.Tensor) and input.ndim == 4 and isinstance(grid, torch.Tensor) and grid.ndim == 4
            and grid.shape[0] == input.shape[0] and grid.shape[3] == 2):
        raise ValueError(f'grid_sample: expected input [N, C, H, W] and grid [N, H_out, W_out, 2], got '
                         f'{_shape_str(input)} and {_shape_str(grid)}')
    if _native_has_double_backward():
        return _grid_sample_ref(input, grid)
    return _GridSample2d.apply(input, grid)

def _grid_sample_ref(input: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The reference twin for values and first derivatives (PyTorch's own op)."""
    return torch.nn.functional.grid_sample(input, grid, mode='bilinear', padding_mode='zeros', align_corners=False)

@functools.lru_cache(maxsize=None)
def _native_has_double_backward() -> bool:
    """Does this PyTorch differentiate grid_sampler_2d_backward? Probed once on a tiny input,
    with gradients switched on whatever the caller's mode: the first call in a process may
    come under torch.no_grad() or torch.inference_mode() (an evaluation that augments)."""
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.arange(4, dtype=torch.float64).reshape(1, 1, 2, 2).requires_grad_(True)
        grid = torch.full([1, 1, 1, 2], 0.1, dtype=torch.float64, requires_grad=True)
        (grad_x,) = torch.autograd.grad(_grid_sample_ref(x, grid).square().sum(), [x], create_graph=True)
        try:
            torch.autograd.grad(grad_x.sum(), [x, grid])
        except RuntimeError:
            return False
        return True

def _shape_str(t) -> str:
    return str(list(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__

#----------------------------------------------------------------------------

class _GridSample2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, grid): # pylint: disable=arguments-differ
        ctx.save_for_backward(input, grid)
        return _grid_sample_ref(input, grid)

    @staticmethod
    def backward(ctx, grad_output): # pylint: disable=arguments-differ
        input, grid = ctx.saved_tensors
        return _grid_sample_backward(grad_output, input, grid, ctx.needs_input_grad[0], ctx.needs_input_grad[1])

#----------------------------------------------------------------------------
# The backward in differentiable torch ops.

def _grid_sample_backward(grad_output, input, grid, need_input_grad, need_grid_grad):
    batch_size, num_channels, in_h, in_w = input.shape
    _, out_h, out_w, _ = grid.shape
    num_out = out_h * out_w

    # Pixel coordinates and the bilinear weights; floor() has zero derivative, so the
    # weights carry the whole dependence on the grid.
    ix = ((grid[..., 0] + 1) * in_w - 1) / 2 # [N, H_out, W_out]
    iy = ((grid[..., 1] + 1) * in_h - 1) / 2
    x0 = ix.detach().floor()
    y0 = iy.detach().floor()
    wx1 = (ix - x0).reshape(batch_size, 1, num_out)
    wy1 = (iy - y0).reshape(batch_size, 1, num_out)
    wx = [1 - wx1, wx1]
    wy = [1 - wy1, wy1]
    x0 = x0.to(torch.int64).reshape(batch_size, 1, num_out)
    y0 = y0.to(torch.int64).reshape(batch_size, 1, num_out)

    # Flat index and in-bounds mask of each corner (dy, dx).
    corners = {}
    for dy in (0, 1):
        for dx in (0, 1):
            cx, cy = x0 + dx, y0 + dy
            valid = (cx >= 0) & (cx < in_w) & (cy >= 0) & (cy < in_h)
            index = torch.where(valid, cy * in_w + cx, 0).expand(batch_size, num_channels, num_out)
            corners[dy, dx] = (index, valid.to(input.dtype))

    grad_output = grad_output.reshape(batch_size, num_channels, num_out)
    grad_input = grad_grid = None

    if need_input_grad:
        grad_input = torch.zeros(batch_size, num_channels, in_h * in_w, dtype=grad_output.dtype, device=grad_output.device)
        for (dy, dx), (index, valid) in corners.items():
            grad_input = grad_input.scatter_add(2, index, grad_output * (wy[dy] * wx[dx] * valid))
        grad_input = grad_input.reshape(batch_size, num_channels, in_h, in_w)

    if need_grid_grad:
        flat_input = input.reshape(batch_size, num_channels, in_h * in_w)
        value = {key: flat_input.gather(2, index) * valid for key, (index, valid) in corners.items()} # [N, C, H_out*W_out]
        d_ix = wy[0] * (value[0, 1] - value[0, 0]) + wy[1] * (value[1, 1] - value[1, 0])
        d_iy = wx[0] * (value[1, 0] - value[0, 0]) + wx[1] * (value[1, 1] - value[0, 1])
        grad_gx = (grad_output * d_ix).sum(dim=1) * (in_w / 2) # d ix / d gx = W / 2
        grad_gy = (grad_output * d_iy).sum(dim=1) * (in_h / 2)
        grad_grid = torch.stack([grad_gx, grad_gy], dim=-1).reshape(batch_size, out_h, out_w, 2)

    return grad_input, grad_grid

#----------------------------------------------------------------------------
