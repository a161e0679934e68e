"""Upsample, FIR-filter and downsample 2-D images: `upfirdn2d` and its helpers, the
resampling primitive of StyleGAN2 (Karras et al., CVPR 2020, Sec. 4 / Appendix B, the
bilinear [1,3,3,1] filter) and of the ADA augment pipe (Karras et al., NeurIPS 2020).

Per channel, `upfirdn2d(x, f, up, down, padding)` computes, like `scipy.signal.upfirdn`
in two dimensions:

1. upsample by inserting `up - 1` zeros after every pixel (H -> H * up);
2. pad with zeros, or crop where the padding is negative ([x0, x1, y0, y1]);
3. convolve with the FIR filter `f` ('valid' convolution; `flip_filter=True` correlates);
4. keep every `down`-th pixel.

Output size: ((H * up + y0 + y1 - fh) // down + 1) rows, likewise for columns. `gain`
scales the result. `f` is 2-D [fh, fw], or 1-D [k] for a separable filter applied along
both axes.

Implementations (`impl`):
- 'ref': the obvious one (zero insertion, pad, depthwise conv2d, strided slice). Slow, but
  differentiable to any order.
- 'fast': the same maths as two matrix products per channel for separable filters
  (1-D, or 2-D outer products such as every filter of StyleGAN2): each 1-D resampling
  matrix folds zero insertion, padding, taps and downsampling together, so no inserted zero
  is multiplied and no discarded output is computed (see "Fast implementation" below).
  Built from differentiable torch ops, so any order of derivative works. Other filters and
  large images use 'ref'. The default on every device.
- 'cuda': the compiled plugin (upfirdn2d.cpp/.cu, built by torch_utils/custom_ops.py),
  CUDA tensors only, on request: a generic kernel (two 1-D passes for 1-D filters), one
  thread per output pixel, which ran 2-12x slower than 'fast' on an H200. Its gradient is another upfirdn2d (flipped filter, up and down
  swapped), so any order of derivative works. The filter is treated as a constant.
"""

import os

import torch

from torch_utils import custom_ops
from torch_utils.ops import conv2d_gradfix

#----------------------------------------------------------------------------
# Argument parsing.

def _parse_scaling(scaling, name: str) -> tuple[int, int]:
    if isinstance(scaling, int):
        scaling = [scaling, scaling]
    if not (isinstance(scaling, (list, tuple)) and len(scaling) == 2 and all(isinstance(s, int) and s >= 1 for s in scaling)):
        raise ValueError(f'upfirdn2d: {name} must be a positive int or [x, y] of positive ints, got {scaling!r}')
    return int(scaling[0]), int(scaling[1])

def _parse_padding(padding) -> tuple[int, int, int, int]:
    if isinstance(padding, int):
        padding = [padding, padding]
    if isinstance(padding, (list, tuple)) and len(padding) == 2:
        padding = [padding[0], padding[0], padding[1], padding[1]]
    if not (isinstance(padding, (list, tuple)) and len(padding) == 4 and all(isinstance(p, int) for p in padding)):
        raise ValueError(f'upfirdn2d: padding must be an int, [x, y] or [x0, x1, y0, y1] of ints, got {padding!r}')
    return tuple(int(p) for p in padding)

def _get_filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """Filter width and height (fw, fh); a 1-D filter is applied along both axes."""
    if f is None:
        return 1, 1
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ValueError(f'upfirdn2d: f must be None or a 1-D or 2-D tensor, got {type(f).__name__}'
                         f'{" of shape " + str(list(f.shape)) if isinstance(f, torch.Tensor) else ""}')
    return int(f.shape[-1]), int(f.shape[0])

#----------------------------------------------------------------------------

def setup_filter(
    f,                          # Filter taps: list, array or tensor, 1-D or 2-D; None = [1].
    device=None,                # Device of the result, None = where torch creates tensors (the CPU by default).
    normalize=True,             # Divide by the sum of the taps, so that a constant passes unchanged?
    flip_filter=False,          # Flip the taps (convolution <-> correlation)?
    gain=1,                     # Overall gain; a separable filter gets gain ** 0.5 per pass.
    separable=None,             # Return a 1-D filter? None = only for 1-D input with >= 8 taps.
) -> torch.Tensor:
    """Make a float32 filter for upfirdn2d(): 1-D (separable) or 2-D (outer product)."""
    f = torch.ones([1], dtype=torch.float32) if f is None else torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f'setup_filter: expected a non-empty 1-D or 2-D filter, got shape {list(f.shape)}')
    if separable is None:
        separable = (f.ndim == 1 and f.numel() >= 8)
    if f.ndim == 1 and not separable:
        f = f.ger(f)
    if separable and f.ndim != 1:
        raise ValueError(f'setup_filter: separable=True needs a 1-D filter, got shape {list(f.shape)}')
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f if device is None else f.to(device=device)

#----------------------------------------------------------------------------

def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl=None):
    """Upsample, pad, FIR-filter and downsample a batch of images [N, C, H, W] (see the
    module docstring). `up`, `down`: int or [x, y]; `padding`: int, [x, y] or
    [x0, x1, y0, y1] (negative crops); `f`: from setup_filter() or None (identity)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f'upfirdn2d: x must be a 4-D tensor [N, C, H, W], got '
                         f'{list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}')
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    fw, fh = _get_filter_size(f)
    upx, upy = _parse_scaling(up, 'up')
    downx, downy = _parse_scaling(down, 'down')
    px0, px1, py0, py1 = _parse_padding(padding)
    _, _, in_h, in_w = x.shape
    out_h = (in_h * upy + py0 + py1 - fh) // downy + 1
    out_w = (in_w * upx + px0 + px1 - fw) // downx + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f'upfirdn2d: input {in_h}x{in_w} with up={up}, down={down}, padding={padding} and a '
                         f'{fh}x{fw} filter gives an empty output ({out_h}x{out_w})')
    if impl is None: # The torch fast path on every device: on an H200 it ran several times faster than
        impl = 'fast'    # the plugin's one-thread-per-pixel kernel (bench/results.md), which stays as impl='cuda'.
    if impl not in _IMPLS:
        raise ValueError(f'upfirdn2d: unknown impl {impl!r}; expected one of {sorted(_IMPLS)} or None')
    y = _IMPLS[impl](x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain)
    assert y.shape[2:] == (out_h, out_w), (y.shape, out_h, out_w)
    return y

def _plugin():
    return custom_ops.get_plugin('upfirdn2d_plugin', sources=['upfirdn2d.cpp', 'upfirdn2d.cu'], headers=['upfirdn2d.h'],
                                 source_dir=os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------
# Reference implementation: zero insertion, pad/crop, depthwise conv2d, strided slice.

def _upfirdn2d_ref(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain):
    batch_size, num_channels, in_h, in_w = x.shape
    if upx > 1 or upy > 1:
        x = x.reshape(batch_size, num_channels, in_h, 1, in_w, 1)
        x = torch.nn.functional.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(batch_size, num_channels, in_h * upy, in_w * upx)
    x = torch.nn.functional.pad(x, [px0, px1, py0, py1]) # Negative values crop.

    # conv2d correlates, upfirdn2d convolves: flip the taps unless asked not to.
    f = f.to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = conv2d_gradfix.conv2d(x, (f * gain)[None, None].expand(num_channels, 1, *f.shape), groups=num_channels)
    else: # Gain in the first pass only (its square root per pass would fail for a negative gain).
        x = conv2d_gradfix.conv2d(x, (f * gain)[None, None, None, :].expand(num_channels, 1, 1, -1), groups=num_channels)
        x = conv2d_gradfix.conv2d(x, f[None, None, :, None].expand(num_channels, 1, -1, 1), groups=num_channels)
    return x[:, :, ::downy, ::downx]

#----------------------------------------------------------------------------
# Fast implementation: each axis is one matrix product.
#
# A 1-D upfirdn is linear, so along one axis it is a fixed [out_len, in_len] matrix R:
# output o sums taps h[j] over the inputs i with i * up == o * down + k - 1 - j - pad0
# (zero insertion, padding, the convolution and the downsampling folded together: no
# inserted zero is multiplied and no discarded output is computed). A separable filter
# then gives y = R_y @ x @ R_x^T per channel: two GEMMs, which run at matmul speed in
# float32 and bfloat16 and whose derivatives (more GEMMs) are available to any order.
# The matrices are dense, so the cost per output is in_len multiply-adds instead of k:
# measured on a 2-core CPU (4x4 filter, float32), the matrix form beats the depthwise
# convolution for small images, breaks even at a few hundred pixels and loses above, and
# downsampling by 2 holds its lead a little longer. Hence the limit below, per axis, in
# input pixels per unit of `down`; larger images use the depthwise-convolution reference.

_MAX_MATRIX_LEN = 192

def _upfirdn2d_fast(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain):
    _, _, in_h, in_w = x.shape
    taps = _separable_taps(f)
    if taps is None or f.requires_grad or in_w > _MAX_MATRIX_LEN * downx or in_h > _MAX_MATRIX_LEN * downy:
        return _upfirdn2d_ref(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain)
    taps_x, taps_y = taps
    mat_x = _resample_matrix(taps_x, upx, downx, px0, px1, in_w, flip_filter, gain, x.dtype, x.device) # [out_w, in_w]
    mat_y = _resample_matrix(taps_y, upy, downy, py0, py1, in_h, flip_filter, 1, x.dtype, x.device)    # [out_h, in_h]
    if mat_x is not None:
        x = torch.matmul(x, mat_x.t())
    if mat_y is not None:
        x = torch.matmul(mat_y, x)
    return x

# Under torch.compile the taps are read from the filter once while tracing (they become
# constants of the graph: the networks' filters are fixed buffers), and the matrix is built from
# them with traceable ops instead of the cache, so upfirdn2d does not break a graph.
_taps_cache: dict = {}

@torch.compiler.assume_constant_result
def _separable_taps(f: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(taps along x, taps along y) when f is 1-D or a rank-1 2-D filter, else None."""
    key = (f.detach().cpu().numpy().tobytes(), tuple(f.shape))
    if key not in _taps_cache:
        f64 = f.detach().cpu().double()
        if f64.ndim == 1:
            taps = (tuple(f64.tolist()), tuple(f64.tolist()))
        else:
            # For f = a b^T: row sums give a * sum(b), column sums b * sum(a), and
            # sum(f) = sum(a) sum(b). Splitting this way keeps dyadic taps such as
            # [1,3,3,1]/8 exact. (Filters summing to ~0 split at their largest tap.)
            total = float(f64.sum())
            if abs(total) > 1e-3 * float(f64.abs().sum()):
                taps_y, taps_x = f64.sum(dim=1) / total, f64.sum(dim=0)
            else:
                row, col = divmod(int(f64.abs().argmax()), f64.shape[1])
                taps_y, taps_x = f64[:, col] / f64[row, col], f64[row, :]
            rank1 = torch.allclose(taps_y[:, None] * taps_x[None, :], f64, rtol=1e-6, atol=1e-9 * float(f64.abs().max()))
            taps = (tuple(taps_x.tolist()), tuple(taps_y.tolist())) if rank1 else None
        _taps_cache[key] = taps
    return _taps_cache[key]

_matrix_cache: dict = {}

def _resample_matrix(taps, up, down, pad0, pad1, in_len, flip_filter, gain, dtype, device) -> torch.Tensor | None:
    """The [out_len, in_len] matrix of a 1-D upfirdn along one axis; None for the identity."""
    k = len(taps)
    if k == 1 and taps[0] * gain == 1 and up == 1 and down == 1 and pad0 == 0 and pad1 == 0:
        return None
    if torch.compiler.is_compiling():
        return _build_resample_matrix(taps, up, down, pad0, pad1, in_len, flip_filter, gain, dtype, device)
    key = (taps, up, down, pad0, pad1, in_len, flip_filter, gain, dtype, device)
    if key not in _matrix_cache:
        _matrix_cache[key] = _build_resample_matrix(taps, up, down, pad0, pad1, in_len, flip_filter, gain, dtype, device)
    return _matrix_cache[key]

def _build_resample_matrix(taps, up, down, pad0, pad1, in_len, flip_filter, gain, dtype, device) -> torch.Tensor:
    k = len(taps)
    h = [float(tap) * gain for tap in (taps[::-1] if flip_filter else taps)]
    out_len = (in_len * up + pad0 + pad1 - k) // down + 1
    rows, cols, values = [], [], []
    for o in range(out_len):
        for j in range(k):
            pos = o * down + k - 1 - j - pad0 # Position in the zero-inserted signal.
            if pos % up == 0 and 0 <= pos < in_len * up:
                rows.append(o)
                cols.append(pos // up)
                values.append(h[j])
    mat = torch.zeros([out_len, in_len], dtype=torch.float64)
    if rows:
        mat.index_put_((torch.tensor(rows), torch.tensor(cols)), torch.tensor(values, dtype=torch.float64), accumulate=True)
    return mat.to(dtype=dtype, device=device)

#----------------------------------------------------------------------------
# CUDA implementation: the plugin in an autograd Function whose backward is the same
# Function. The adjoint of (zero-insert by up, pad, convolve with f, keep every down-th)
# is (zero-insert by down, pad, correlate with f, keep every up-th); the left padding
# k - 1 - pad0 turns the valid convolution back into a full correlation, and the right
# padding makes the result exactly in_len long:
#     (out_len * down + (k - 1 - pad0) + pad1' - k) // up + 1 == in_len
# with pad1' = in_len * up - out_len * down + pad0 - up + 1.

def _upfirdn2d_cuda(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain):
    if not x.is_cuda:
        raise ValueError('upfirdn2d: impl=\'cuda\' needs a CUDA tensor')
    if f.requires_grad:
        raise ValueError('upfirdn2d: impl=\'cuda\' treats the filter as a constant; use impl=\'ref\' for a '
                         'filter that requires grad')
    _plugin() # Raises custom_ops.PluginUnavailable with the reason.
    return _Upfirdn2dCuda.apply(x, f, (upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain))

class _Upfirdn2dCuda(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, f, cfg): # pylint: disable=arguments-differ
        upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain = cfg
        f32 = f.to(device=x.device, dtype=torch.float32)
        y = x.contiguous()
        if f32.ndim == 2:
            y = _plugin().upfirdn2d(y, f32.contiguous(), upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain)
        else: # Separable: along x (with the gain), then along y.
            y = _plugin().upfirdn2d(y, f32[None, :].contiguous(), upx, 1, downx, 1, px0, px1, 0, 0, flip_filter, gain)
            y = _plugin().upfirdn2d(y, f32[:, None].contiguous(), 1, upy, 1, downy, 0, 0, py0, py1, flip_filter, 1.0)
        ctx.f = f
        ctx.cfg = cfg
        ctx.in_hw = x.shape[2:]
        return y

    @staticmethod
    def backward(ctx, dy): # pylint: disable=arguments-differ
        dx = _Upfirdn2dCuda.apply(dy, ctx.f, _adjoint_cfg(ctx.cfg, ctx.f, ctx.in_hw, dy.shape[2:]))
        assert dx.shape[2:] == ctx.in_hw
        return dx, None, None

def _adjoint_cfg(cfg, f, in_hw, out_hw):
    """The (up, down, padding, flip_filter, gain) arguments of the adjoint upfirdn2d."""
    upx, upy, downx, downy, px0, _px1, py0, _py1, flip_filter, gain = cfg
    (in_h, in_w), (out_h, out_w) = in_hw, out_hw
    fw, fh = _get_filter_size(f)
    return (downx, downy, upx, upy,
            fw - 1 - px0, in_w * upx - out_w * downx + px0 - upx + 1,
            fh - 1 - py0, in_h * upy - out_h * downy + py0 - upy + 1,
            not flip_filter, gain)

#----------------------------------------------------------------------------

_IMPLS = {
    'ref':  _upfirdn2d_ref,
    'fast': _upfirdn2d_fast,
    'cuda': _upfirdn2d_cuda,
}

#----------------------------------------------------------------------------
# Helpers that compute the padding for a centred filter.

def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl=None):
    """Filter without changing the size (for zero padding)."""
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)

def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl=None):
    """Upsample by `up` with the interpolation filter `f`; output size = input size * up
    (for zero padding). The gain is scaled by up**2 to keep the mean unchanged."""
    upx, upy = _parse_scaling(up, 'up')
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)

def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl=None):
    """Downsample by `down` after the anti-aliasing filter `f`; output size = input size /
    down (for zero padding and sizes divisible by `down`)."""
    downx, downy = _parse_scaling(down, 'down')
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)

#----------------------------------------------------------------------------
