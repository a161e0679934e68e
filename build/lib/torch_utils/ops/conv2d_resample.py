"""2-D convolution with an optional FIR-filtered upsampling or downsampling, the
resampling convolution of StyleGAN2 (Karras et al., CVPR 2020, Appendix B: the
"upsample, then 3x3 conv, then [1,3,3,1] blur" of the generator and the "blur, then strided
3x3 conv" of the discriminator).

Definition (what `_conv2d_resample_ref` computes literally):

    x -> upfirdn2d(up, pad, filter f with gain up**2)   (only the padding when up == 1)
      -> conv2d(w)                                      (valid; groups; flip_weight)
      -> upfirdn2d(filter f, down)                      (only when down > 1)

where the padding is the user's `padding` plus what upsample2d()/downsample2d() would add
for the filter, applied once at the start. `conv2d_resample` computes the same thing
through cheaper equivalent orders (the filter and the convolution commute because both
are linear and shift-invariant):

- 1x1 conv + down: filter and downsample first, then convolve the smaller image;
- 1x1 conv + up: convolve first, then upsample the smaller image;
- down only: filter first, then a strided convolution (no discarded outputs computed);
- up (with or without down): a strided transposed convolution does the zero insertion
  and the convolution in one step, then the filter (then the downsampling);
- neither, symmetric non-negative padding: a plain padded conv2d.
"""

import torch

from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------

def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """x: [N, C_in, H, W]; w: [C_out, C_in // groups, kh, kw]; f: from
    upfirdn2d.setup_filter() (None = no filtering); up, down: int >= 1; padding: int,
    [x, y] or [x0, x1, y0, y1]; flip_weight: True = correlation (like torch conv2d),
    False = convolution; flip_filter: passed on to upfirdn2d."""
    out_channels, kh, kw, (px0, px1, py0, py1) = _check_args(x, w, f, up, down, padding, groups)

    # 1x1 convolution with downsampling: downsample first, then convolve fewer pixels.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv2d(x, w, groups=groups, flip_weight=flip_weight)

    # 1x1 convolution with upsampling: convolve first, then upsample.
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv2d(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)

    # Downsampling only: filter, then a strided convolution.
    if down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv2d(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling: a transposed convolution with stride `up` equals zero insertion followed by
    # a full convolution, i.e. a valid one after padding (kw - 1, kw - up) (the up - 1
    # trailing zeros of the insertion count as padding). Only the remaining padding is left
    # for the filter step: extra zero padding before a valid conv only adds zero outputs,
    # and cropping commutes with it. A crop common to both sides goes into the transposed
    # convolution's own (symmetric) padding argument.
    if up > 1:
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        crop_x = max(min(-px0, -px1), 0)
        crop_y = max(min(-py0, -py1), 0)
        x = _conv2d(x, w, stride=up, padding=[crop_y, crop_x], groups=groups, flip_weight=flip_weight, transpose=True)
        x = upfirdn2d.upfirdn2d(x, f, padding=[px0 + crop_x, px1 + crop_x, py0 + crop_y, py1 + crop_y],
                                gain=up ** 2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    # No resampling, padding that conv2d can do itself.
    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv2d(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    # Anything else (asymmetric or negative padding without resampling): the definition.
    return _conv2d_resample_general(x, w, f, up, down, px0, px1, py0, py1, groups, flip_weight, flip_filter)

#----------------------------------------------------------------------------
# Reference twin: the definition, step by step, with the reference upfirdn2d.

def _conv2d_resample_ref(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    _, _, _, (px0, px1, py0, py1) = _check_args(x, w, f, up, down, padding, groups)
    return _conv2d_resample_general(x, w, f, up, down, px0, px1, py0, py1, groups, flip_weight, flip_filter, impl='ref')

def _conv2d_resample_general(x, w, f, up, down, px0, px1, py0, py1, groups, flip_weight, flip_filter, impl=None):
    x = upfirdn2d.upfirdn2d(x, (f if up > 1 else None), up=up, padding=[px0, px1, py0, py1], gain=up ** 2,
                            flip_filter=flip_filter, impl=impl)
    x = _conv2d(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
    return x

#----------------------------------------------------------------------------

def _check_args(x, w, f, up, down, padding, groups):
    """Validate; return (out_channels, kh, kw, total padding [x0, x1, y0, y1])."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f'conv2d_resample: x must be a 4-D tensor [N, C, H, W], got '
                         f'{list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}')
    if not isinstance(w, torch.Tensor) or w.ndim != 4 or w.dtype != x.dtype:
        raise ValueError(f'conv2d_resample: w must be a 4-D tensor [C_out, C_in // groups, kh, kw] of x\'s dtype '
                         f'{x.dtype}, got {list(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__}'
                         f'{" " + str(w.dtype) if isinstance(w, torch.Tensor) else ""}')
    if not (isinstance(groups, int) and groups >= 1 and x.shape[1] == w.shape[1] * groups and w.shape[0] % groups == 0):
        raise ValueError(f'conv2d_resample: groups={groups} does not fit x with {x.shape[1]} channels and w of '
                         f'shape {list(w.shape)}')
    if not (isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1):
        raise ValueError(f'conv2d_resample: up and down must be ints >= 1, got up={up!r}, down={down!r}')
    if (up > 1 or down > 1) and f is None:
        raise ValueError(f'conv2d_resample: up={up}, down={down} needs a filter f (see upfirdn2d.setup_filter)')
    out_channels, _, kh, kw = w.shape
    fw, fh = upfirdn2d._get_filter_size(f)
    px0, px1, py0, py1 = upfirdn2d._parse_padding(padding)
    if up > 1: # As upsample2d().
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1: # As downsample2d().
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    return out_channels, kh, kw, (px0, px1, py0, py1)

#----------------------------------------------------------------------------

def _conv2d(x, w, stride=1, padding=0, groups=1, flip_weight=True, transpose=False):
    """conv2d (correlation when flip_weight) or, with transpose, the transposed convolution
    that is the adjoint of that conv2d, taking w in conv2d's [C_out, C_in // groups, kh, kw]
    layout."""
    if transpose:
        # A transposed conv with weight v correlates the zero-inserted input with flipped v,
        # so correlation with w (flip_weight) needs v = flipped w, and convolution v = w.
        if flip_weight:
            w = w.flip([2, 3])
        out_channels, in_channels_per_group, kh, kw = w.shape
        w = w.reshape(groups, out_channels // groups, in_channels_per_group, kh, kw).transpose(1, 2)
        w = w.reshape(groups * in_channels_per_group, out_channels // groups, kh, kw)
        return conv2d_gradfix.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    if not flip_weight:
        w = w.flip([2, 3])
    return conv2d_gradfix.conv2d(x, w, stride=stride, padding=padding, groups=groups)

#----------------------------------------------------------------------------
