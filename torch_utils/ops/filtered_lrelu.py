"""Filtered leaky ReLU: upsample, bias + leaky ReLU + clamp, downsample, the nonlinearity of
every StyleGAN3 layer (Karras et al., "Alias-Free Generative Adversarial Networks",
NeurIPS 2021, Sec. 3.2 and Fig. 4b: a pointwise nonlinearity creates frequencies above
Nyquist, so it is evaluated at a temporarily higher sampling rate and low-pass filtered
back).

Per channel, `filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp)` computes

1. x + b (bias per channel);
2. upfirdn2d with the upsampling filter `fu`: insert `up - 1` zeros after every pixel, pad
   by `padding` ([x0, x1, y0, y1], negative crops), convolve ('valid'), gain up**2;
3. leaky ReLU with `slope`, times `gain`, clamped to [-clamp, clamp];
4. upfirdn2d with the downsampling filter `fd` ('valid', no padding), keep every
   `down`-th pixel.

Output size: (in * up + x0 + x1 - (fu_taps - 1) - (fd_taps - 1) + down - 1) // down per
axis. Filters are 1-D (separable, applied along both axes), 2-D, or None (identity).

Implementations (`impl`):
- 'ref': exactly the four steps with upfirdn2d(impl='ref') and bias_act. Slow, any order
  of derivative.
- 'fast': the default on every device. Separable filters (the Kaiser filters of
  StyleGAN3-T and -R's upsampling) resample as matrix products (upfirdn2d's 'fast' path:
  no inserted zero is multiplied and no discarded output computed) up to upfirdn2d's size
  limit for those, as strided 1-D (transposed) convolutions beyond it; a 2-D downsampling
  filter (StyleGAN3-R's radial jinc) is a strided depthwise convolution, which computes
  only the kept outputs; bias, leaky ReLU, gain and clamp are one pass of elementwise ops.
  Plain torch ops, so any order of derivative.
- 'cuda': the 'fast' path compiled by torch.compile (kernel fusion of the elementwise
  steps), CUDA tensors only, on request. torch.compile has no double backward, so inside
  conv2d_gradfix.differentiable_backward() (the passes the loss differentiates twice) it
  runs the uncompiled fast path. It has not been run on a GPU in this repository's tests
  (they are marked `gpu`); the same compiled function is checked on the CPU against 'ref'.
Measured speeds: bench/results.md.
"""

import math

import torch

from torch_utils.ops import bias_act
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------

def filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2), slope=0.2, clamp=None,
                   flip_filter=False, impl=None):
    """See the module docstring. `x`: [N, C, H, W]; `fu`, `fd`: from upfirdn2d.setup_filter or
    a raw 1-D/2-D tensor of taps (used as given, not normalised), or None; `b`: [C] or None;
    `up`, `down`: positive ints; `padding`: int, [x, y] or [x0, x1, y0, y1]."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f'filtered_lrelu: x must be a 4-D tensor [N, C, H, W], got '
                         f'{list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}')
    for name, f in (('fu', fu), ('fd', fd)):
        if f is not None and (not isinstance(f, torch.Tensor) or f.ndim not in (1, 2)):
            raise ValueError(f'filtered_lrelu: {name} must be None or a 1-D or 2-D tensor')
    if b is not None and (not isinstance(b, torch.Tensor) or b.shape != (x.shape[1],)):
        raise ValueError(f'filtered_lrelu: b must be a tensor of shape [{x.shape[1]}], got '
                         f'{list(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__}')
    for name, value in (('up', up), ('down', down)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'filtered_lrelu: {name} must be a positive int, got {value!r}')
    if not (gain > 0 and slope >= 0 and (clamp is None or clamp >= 0)):
        raise ValueError(f'filtered_lrelu: expected gain > 0, slope >= 0, clamp None or >= 0; got {gain}, {slope}, {clamp}')
    try:
        px0, px1, py0, py1 = upfirdn2d._parse_padding(padding)
    except ValueError as err:
        raise ValueError(str(err).replace('upfirdn2d:', 'filtered_lrelu:')) from None
    fu_w, fu_h = upfirdn2d._get_filter_size(fu)
    fd_w, fd_h = upfirdn2d._get_filter_size(fd)
    out_w = (x.shape[3] * up + px0 + px1 - (fu_w - 1) - (fd_w - 1) + down - 1) // down
    out_h = (x.shape[2] * up + py0 + py1 - (fu_h - 1) - (fd_h - 1) + down - 1) // down
    if out_w < 1 or out_h < 1:
        raise ValueError(f'filtered_lrelu: input {x.shape[2]}x{x.shape[3]} with up={up}, down={down}, padding={padding} '
                         f'gives an empty output')
    if impl is None:
        impl = 'fast'
    if impl not in _IMPLS:
        raise ValueError(f'filtered_lrelu: unknown impl {impl!r}; expected one of {sorted(_IMPLS)} or None')
    args = (fu, fd, b, up, down, (px0, px1, py0, py1), float(gain), float(slope), None if clamp is None else float(clamp), bool(flip_filter))
    y = _IMPLS[impl](x, *args)
    assert y.shape == (x.shape[0], x.shape[1], out_h, out_w), (y.shape, out_h, out_w)
    return y

#----------------------------------------------------------------------------
# Reference implementation: the definition, step by step.

def _filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    x = bias_act.bias_act(x, b, impl='ref')
    x = upfirdn2d.upfirdn2d(x, fu, up=up, padding=list(padding), gain=up ** 2, flip_filter=flip_filter, impl='ref')
    x = bias_act.bias_act(x, act='lrelu', alpha=slope, gain=gain, clamp=clamp, impl='ref')
    return upfirdn2d.upfirdn2d(x, fd, down=down, flip_filter=flip_filter, impl='ref')

#----------------------------------------------------------------------------
# Fast implementation.

def _filtered_lrelu_fast(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    if fu is not None and fu.ndim == 1 and max(x.shape[2:]) > upfirdn2d._MAX_MATRIX_LEN:
        x = _upsample_1d_conv(x, fu, up, padding, flip_filter)
    elif fu is not None or up != 1 or any(padding):
        x = upfirdn2d.upfirdn2d(x, fu, up=up, padding=list(padding), gain=up ** 2, flip_filter=flip_filter, impl='fast')
    if slope != 1:
        x = torch.nn.functional.leaky_relu(x, slope)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    if fd is not None and fd.ndim == 2 and upfirdn2d._separable_taps(fd) is None:
        return _downsample_2d(x, fd, down, flip_filter)
    if fd is not None and fd.ndim == 1 and max(x.shape[2:]) > upfirdn2d._MAX_MATRIX_LEN * down:
        return _downsample_1d_conv(x, fd, down, flip_filter)
    if fd is not None or down != 1:
        x = upfirdn2d.upfirdn2d(x, fd, down=down, flip_filter=flip_filter, impl='fast')
    return x

# Large images (beyond upfirdn2d's dense resampling matrices): the separable filters as 1-D
# strided convolutions along each axis, which touch no inserted zero and compute no discarded
# output. Upsampling is a transposed convolution with stride `up`: its full output
# F[m] = sum_i x[i] h[m - i up] is the convolution of the zero-inserted signal with h, and the
# padded 'valid' convolution of upfirdn2d is o[n] = F[n + k - 1 - pad0], so F is padded (or
# cropped) by pad0 - (k - 1) before and whatever makes the output length after.

def _upsample_1d_conv(x, f, up, padding, flip_filter):
    num_channels, k = x.shape[1], f.shape[0]
    h = (f.flip([0]) if flip_filter else f).to(x.dtype) * up # Gain up per axis: up**2 in all.
    px0, px1, py0, py1 = padding
    out_w = x.shape[3] * up + px0 + px1 - k + 1
    out_h = x.shape[2] * up + py0 + py1 - k + 1
    x = conv2d_gradfix.conv_transpose2d(x, h.reshape(1, 1, 1, k).expand(num_channels, 1, 1, k), stride=(1, up), groups=num_channels)
    x = torch.nn.functional.pad(x, [px0 - (k - 1), out_w - x.shape[3] - px0 + (k - 1)])
    x = conv2d_gradfix.conv_transpose2d(x, h.reshape(1, 1, k, 1).expand(num_channels, 1, k, 1), stride=(up, 1), groups=num_channels)
    return torch.nn.functional.pad(x, [0, 0, py0 - (k - 1), out_h - x.shape[2] - py0 + (k - 1)])

def _downsample_1d_conv(x, f, down, flip_filter):
    num_channels, k = x.shape[1], f.shape[0]
    h = (f if flip_filter else f.flip([0])).to(x.dtype) # conv2d correlates, upfirdn2d convolves.
    x = conv2d_gradfix.conv2d(x, h.reshape(1, 1, 1, k).expand(num_channels, 1, 1, k), stride=(1, down), groups=num_channels)
    return conv2d_gradfix.conv2d(x, h.reshape(1, 1, k, 1).expand(num_channels, 1, k, 1), stride=(down, 1), groups=num_channels)

def _downsample_2d(x, f, down, flip_filter):
    """upfirdn2d(x, f, down=down) for a non-separable 2-D filter as one strided depthwise
    convolution: only the kept outputs are computed."""
    num_channels = x.shape[1]
    f = f.to(x.dtype)
    if not flip_filter: # conv2d correlates, upfirdn2d convolves.
        f = f.flip([0, 1])
    return conv2d_gradfix.conv2d(x, f[None, None].expand(num_channels, 1, *f.shape), stride=down, groups=num_channels)

#----------------------------------------------------------------------------
# CUDA implementation: the fast path compiled (built on first use).

_compiled_fast = None

def _compiled():
    global _compiled_fast
    if _compiled_fast is None:
        _compiled_fast = torch.compile(_filtered_lrelu_fast, dynamic=False)
    return _compiled_fast

def _filtered_lrelu_cuda(x, *args):
    if not x.is_cuda:
        raise ValueError('filtered_lrelu: impl=\'cuda\' needs a CUDA tensor')
    return _compiled_or_fast(x, *args)

def _compiled_or_fast(x, *args):
    """torch.compile's autograd has no double backward: a pass that will be differentiated
    twice (inside conv2d_gradfix.differentiable_backward(), which the loss opens for path-length
    regularisation and R1) runs the uncompiled fast path."""
    if conv2d_gradfix._differentiable_backward:
        return _filtered_lrelu_fast(x, *args)
    return _compiled()(x, *args)

#----------------------------------------------------------------------------

_IMPLS = {
    'ref':  _filtered_lrelu_ref,
    'fast': _filtered_lrelu_fast,
    'cuda': _filtered_lrelu_cuda,
}

#----------------------------------------------------------------------------
