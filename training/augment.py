"""Adaptive discriminator augmentation (ADA): the augment pipe and its p controller.

Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020:
section 2 (non-leaking augmentations applied with probability p < 1 to every image D sees),
section 3 (the overfitting heuristic r_t = E[sign(D(x_real))] and the p update) and
appendix B (the operations, their strengths and the implementation).

Pipeline, for images [N, C, H, W] in [-1, 1] with C = 1 or 3:
  1. pixel blitting (xflip, rotate90, xint): one integer map per sample, done exactly by
     gathering pixels (reflected at the borders);
  2. general geometry (scale, rotate, aniso, xfrac): one inverse 3x3 matrix per sample;
     the image is reflect-padded, upsampled 2x with the sym6 wavelet low-pass, resampled
     bilinearly with grid_sample_gradfix (double-differentiable) and low-pass downsampled;
  3. colour (brightness, contrast, lumaflip, hue, saturation): one 4x4 matrix per sample;
  4. image-space filtering: per-sample gains of a 4-band filter bank built from sym2;
  5. corruptions: additive Gaussian noise and cutout.
Each operation fires independently per sample with probability (multiplier * p). Samples
on which no operation of a stage fired pass through that stage untouched, so p = 0 gives
the input back exactly. Every step is differentiable to second order (R1 through the pipe).
"""

import numpy as np
import torch

from dnnlib import util
from torch_utils import misc, persistence
from torch_utils.ops import conv2d_gradfix, grid_sample_gradfix, upfirdn2d

#----------------------------------------------------------------------------
# Published wavelet constants: decomposition low-pass filters of Daubechies' least-asymmetric
# wavelets ("symlets"), orthonormal (sum of squares 1, sum sqrt(2)).

SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]

IMGFILTER_EXPECTED_POWER = [10, 1, 1, 1]   # Relative power of the 4 bands, lowest first (a 1/f spectrum).

def octave_filter_bank(lowpass: list[float], num_bands: int = 4) -> np.ndarray:
    """Zero-phase 1-D band filters [num_bands, taps], lowest band first, that sum to a unit
    impulse. From the power-complementary half-band pair lo2 = H(z)H(1/z)/2 and
    hi2 = H(-z)H(-1/z)/2 (lo2 + hi2 = 1 for an orthonormal H): band k < num_bands - 1 is
    hi2 at octave depth d = num_bands - 1 - k behind d - 1 low-pass stages; band 0 is the
    remaining low-pass."""
    lo = np.asarray(lowpass, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    def dilate(taps, factor):
        out = np.zeros((taps.size - 1) * factor + 1)
        out[::factor] = taps
        return out
    bands, low = [], np.ones(1)
    for depth in range(num_bands - 1):
        bands.append(np.convolve(low, dilate(hi2, 2 ** depth)))
        low = np.convolve(low, dilate(lo2, 2 ** depth))
    bands.append(low)
    num_taps = max(band.size for band in bands)
    return np.stack([np.pad(band, (num_taps - band.size) // 2) for band in bands[::-1]])

#----------------------------------------------------------------------------
# Presets (SG2A train.py's augpipe names): each adds operations to the previous one.

_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
AUGPIPE_SPECS = {
    'blit':   _BLIT,
    'geom':   _GEOM,
    'color':  _COLOR,
    'filter': dict(imgfilter=1),
    'noise':  dict(noise=1),
    'cutout': dict(cutout=1),
    'bg':     dict(**_BLIT, **_GEOM),
    'bgc':    dict(**_BLIT, **_GEOM, **_COLOR),
    'bgcf':   dict(**_BLIT, **_GEOM, **_COLOR, imgfilter=1),
    'bgcfn':  dict(**_BLIT, **_GEOM, **_COLOR, imgfilter=1, noise=1),
    'bgcfnc': dict(**_BLIT, **_GEOM, **_COLOR, imgfilter=1, noise=1, cutout=1),
}

#----------------------------------------------------------------------------
# Homogeneous matrices [N, 3, 3] (2-D, pixel units, origin at the image centre) and
# [N, 4, 4] (colour, acting on [r, g, b, 1]).

def _matrix(rows: list[list], like: torch.Tensor) -> torch.Tensor:
    """Stack a nested list of scalars and per-sample tensors [N] into [N, R, C]."""
    n = like.shape[0]
    cells = [[torch.as_tensor(v, dtype=like.dtype, device=like.device).expand(n) for v in row] for row in rows]
    return torch.stack([torch.stack(row, dim=-1) for row in cells], dim=-2)

def translate2d(tx, ty, like):  return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], like)
def scale2d(sx, sy, like):      return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], like)
def rotate2d(theta, like):      return _matrix([[theta.cos(), -theta.sin(), 0], [theta.sin(), theta.cos(), 0], [0, 0, 1]], like)
def translate3d(t, like):       return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], like)
def scale3d(s, like):           return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], like)

def rotate3d(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by theta [N] about the unit vector axis [3] (Rodrigues), as [N, 4, 4]."""
    x, y, z = axis.tolist()
    c, s = theta.cos(), theta.sin()
    cc = 1 - c
    return _matrix([[x * x * cc + c,     x * y * cc - z * s, x * z * cc + y * s, 0],
                    [y * x * cc + z * s, y * y * cc + c,     y * z * cc - x * s, 0],
                    [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c,     0],
                    [0, 0, 0, 1]], theta)

def reflect_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map any integer index into [0, size) by mirroring at the edges without repeating the
    edge pixel (..., 2, 1, 0, 1, 2, ..., size-2, size-1, size-2, ...), for any distance."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = torch.remainder(index, period)
    return torch.where(index >= size, period - index, index)

def reflect_pad(images: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Reflect-pad [N, C, H, W] by any amount (torch's 'reflect' mode is limited to < size)."""
    _, _, height, width = images.shape
    if max(x0, x1) < width and max(y0, y1) < height:   # Within torch's limit: its backward is cheaper than index_add.
        return torch.nn.functional.pad(images, [x0, x1, y0, y1], mode='reflect')
    rows = reflect_index(torch.arange(-y0, height + y1, device=images.device), height)
    cols = reflect_index(torch.arange(-x0, width + x1, device=images.device), width)
    return images.index_select(2, rows).index_select(3, cols)

#----------------------------------------------------------------------------
# Random draws. With debug_percentile = q in [0, 1], every value draw returns its q-quantile
# instead (firing stays random), to look at one fixed strength of each operation.

class _Draws:
    def __init__(self, batch_size: int, device: torch.device, debug_percentile: float | None):
        self.batch_size, self.device, self.q = batch_size, device, debug_percentile

    def fire(self, prob: torch.Tensor) -> torch.Tensor:
        return torch.rand([self.batch_size], device=self.device) < prob

    def uniform(self, *shape: int) -> torch.Tensor:
        if self.q is not None:
            return torch.full([self.batch_size, *shape], float(self.q), device=self.device)
        return torch.rand([self.batch_size, *shape], device=self.device)

    def normal(self, *shape: int) -> torch.Tensor:
        if self.q is not None:
            q = torch.full([self.batch_size, *shape], float(self.q), device=self.device, dtype=torch.float64)
            return (torch.erfinv(q.clamp(1e-6, 1 - 1e-6) * 2 - 1) * np.sqrt(2)).float()
        return torch.randn([self.batch_size, *shape], device=self.device)

    def integer(self, high: int, *shape: int) -> torch.Tensor:
        return torch.floor(self.uniform(*shape) * high).clamp(max=high - 1).long()

#----------------------------------------------------------------------------

@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    def __init__(self,
        xflip           = 0,            # Probability multiplier for x-flips.
        rotate90        = 0,            # Probability multiplier for quarter turns.
        xint            = 0,            # Probability multiplier for integer translation.
        xint_max        = 0.125,        # Integer translation: uniform in +-xint_max of the image size.
        scale           = 0,            # Probability multiplier for isotropic scaling.
        rotate          = 0,            # Probability multiplier for arbitrary rotation.
        aniso           = 0,            # Probability multiplier for anisotropic scaling.
        xfrac           = 0,            # Probability multiplier for fractional translation.
        scale_std       = 0.2,          # Isotropic scale: log2-normal std.
        rotate_max      = 1,            # Rotation: uniform up to rotate_max * 180 degrees either way.
        aniso_std       = 0.2,          # Anisotropic scale: log2-normal std.
        xfrac_std       = 0.125,        # Fractional translation: normal std, in image sizes.
        brightness      = 0,            # Probability multiplier for brightness.
        contrast        = 0,            # Probability multiplier for contrast.
        lumaflip        = 0,            # Probability multiplier for luma flips.
        hue             = 0,            # Probability multiplier for hue rotation.
        saturation      = 0,            # Probability multiplier for saturation.
        brightness_std  = 0.2,          # Brightness: additive normal std.
        contrast_std    = 0.5,          # Contrast: log2-normal std.
        hue_max         = 1,            # Hue rotation: uniform up to hue_max * 180 degrees either way.
        saturation_std  = 1,            # Saturation: log2-normal std.
        imgfilter       = 0,            # Probability multiplier for image-space filtering.
        imgfilter_bands = [1, 1, 1, 1], # Per-band multipliers, lowest band first.
        imgfilter_std   = 1,            # Band gain: log2-normal std.
        noise           = 0,            # Probability multiplier for additive noise.
        cutout          = 0,            # Probability multiplier for cutout.
        noise_std       = 0.1,          # Noise sigma = |N(0, noise_std)|.
        cutout_size     = 0.5,          # Side of the zeroed square, in image sizes.
    ):
        super().__init__()
        self.register_buffer('p', torch.ones([]))   # Overall probability; the ADA controller sets it.
        for name, value in list(locals().items()):
            if name not in ('self', '__class__', 'imgfilter_bands'):
                setattr(self, name, float(value))
        self.imgfilter_bands = [float(b) for b in imgfilter_bands]
        if len(self.imgfilter_bands) != 4:
            raise ValueError(f'AugmentPipe: imgfilter_bands needs 4 entries (lowest band first), got {imgfilter_bands}')

        self.register_buffer('geom_filter', upfirdn2d.setup_filter(SYM6, separable=True), persistent=False)
        self.geom_delay = GEOM_DELAY
        self.register_buffer('band_filters', torch.as_tensor(octave_filter_bank(SYM2), dtype=torch.float32), persistent=False)
        self.register_buffer('band_power', torch.as_tensor(IMGFILTER_EXPECTED_POWER, dtype=torch.float32) / sum(IMGFILTER_EXPECTED_POWER), persistent=False)
        self.register_buffer('luma_axis', torch.full([3], 3 ** -0.5), persistent=False)   # Unit vector along grey.

    def extra_repr(self) -> str:
        enabled = {k: v for k, v in self.init_kwargs.items() if not k.endswith(('_std', '_max', '_size', '_bands')) and v} if hasattr(self, 'init_kwargs') else {}
        return ', '.join(f'{k}={v:g}' for k, v in enabled.items())

    #------------------------------------------------------------------------
    # Step 0: draw every random parameter for a batch (also used by the tests).

    def draw_params(self, batch_size: int, height: int, width: int, num_channels: int = 3, debug_percentile: float | None = None) -> util.EasyDict:
        """Per-sample parameters of every stage, plus `fired[op]`: bool [N] for each op."""
        device = self.p.device
        draws = _Draws(batch_size, device, debug_percentile)
        p = self.p.float()
        fired = util.EasyDict()
        zeros = torch.zeros([batch_size], device=device)
        def fire(name, multiplier, prob=None):
            fired[name] = draws.fire(multiplier * p if prob is None else prob) if multiplier > 0 else torch.zeros([batch_size], dtype=torch.bool, device=device)
            return fired[name]

        # Pixel blitting: integers.
        flip = torch.where(fire('xflip', self.xflip), draws.integer(2), 0)
        quarter = torch.where(fire('rotate90', self.rotate90), draws.integer(4), 0)
        shift = (draws.uniform(2) * 2 - 1) * self.xint_max * torch.tensor([width, height], device=device)
        shift = torch.where(fire('xint', self.xint)[:, None], shift.round().long(), 0)

        # General geometry: G_inv maps output pixel positions to input positions.
        G_inv = torch.eye(3, device=device).expand(batch_size, 3, 3)
        s = torch.where(fire('scale', self.scale), torch.exp2(draws.normal() * self.scale_std), 1.0)
        G_inv = G_inv @ scale2d(1 / s, 1 / s, zeros)
        p_rot = 1 - torch.sqrt((1 - self.rotate * p).clamp(0, 1))   # Pre or post fires with probability p.
        for name in ('rotate_pre', 'rotate_post'):
            if name == 'rotate_post':
                a = torch.where(fire('aniso', self.aniso), torch.exp2(draws.normal() * self.aniso_std), 1.0)
                G_inv = G_inv @ scale2d(1 / a, a, zeros)
            theta = torch.where(fire(name, self.rotate, p_rot), (draws.uniform() * 2 - 1) * np.pi * self.rotate_max, 0.0)
            G_inv = G_inv @ rotate2d(-theta, zeros)
        fired.rotate = fired.rotate_pre | fired.rotate_post
        t = torch.where(fire('xfrac', self.xfrac)[:, None], draws.normal(2) * self.xfrac_std, 0.0)
        G_inv = G_inv @ translate2d(-t[:, 0] * width, -t[:, 1] * height, zeros)
        geom_fired = fired.scale | fired.rotate | fired.aniso | fired.xfrac

        # Colour: C maps input [r, g, b, 1] to output.
        C = torch.eye(4, device=device).expand(batch_size, 4, 4)
        b = torch.where(fire('brightness', self.brightness), draws.normal() * self.brightness_std, 0.0)
        C = translate3d(b, zeros) @ C
        c = torch.where(fire('contrast', self.contrast), torch.exp2(draws.normal() * self.contrast_std), 1.0)
        C = scale3d(c, zeros) @ C
        axis = self.luma_axis.float()
        v = torch.cat([axis, axis.new_zeros([1])])   # Luma axis in homogeneous form.
        flip_luma = torch.where(fire('lumaflip', self.lumaflip), draws.integer(2), 0)
        C = (torch.eye(4, device=device) - 2 * v.outer(v) * flip_luma[:, None, None]) @ C   # Householder reflection.
        if num_channels == 3:   # Hue and saturation leave grey unchanged: only drawn for colour images.
            theta = torch.where(fire('hue', self.hue), (draws.uniform() * 2 - 1) * np.pi * self.hue_max, 0.0)
            C = rotate3d(axis, theta) @ C
            sat = torch.where(fire('saturation', self.saturation), torch.exp2(draws.normal() * self.saturation_std), 1.0)
            C = _saturation_matrix(v.outer(v), sat) @ C
        else:
            fired.hue = fired.saturation = torch.zeros([batch_size], dtype=torch.bool, device=device)
        color_fired = fired.brightness | fired.contrast | fired.lumaflip | fired.hue | fired.saturation

        # Image-space filtering: per-band gains, renormalised to keep the expected power.
        gains = torch.ones([batch_size, 4], device=device)
        band_fired = []
        for band, strength in enumerate(self.imgfilter_bands):
            on = draws.fire(self.imgfilter * strength * p) if self.imgfilter * strength > 0 else torch.zeros_like(geom_fired)
            gains[:, band] = torch.where(on, torch.exp2(draws.normal() * self.imgfilter_std), 1.0)
            band_fired.append(on)
        fired.imgfilter = torch.stack(band_fired).any(dim=0)
        gains = gains / (self.band_power.float() * gains.square()).sum(dim=1, keepdim=True).sqrt()

        # Corruptions.
        sigma = torch.where(fire('noise', self.noise), draws.normal().abs() * self.noise_std, 0.0)
        centre = draws.uniform(2)
        fire('cutout', self.cutout)

        return util.EasyDict(flip=flip, quarter=quarter, shift=shift, G_inv=G_inv, geom_fired=geom_fired, C=C, color_fired=color_fired, gains=gains, sigma=sigma,
                             cutout_centre=centre, fired=fired)

    #------------------------------------------------------------------------

    def forward(self, images: torch.Tensor, debug_percentile: float | None = None) -> torch.Tensor:
        if not (isinstance(images, torch.Tensor) and images.ndim == 4 and images.shape[1] in (1, 3)):
            raise ValueError(f'AugmentPipe: expected images [N, 1 or 3, H, W], got {list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}')
        batch_size, num_channels, height, width = images.shape
        if self.rotate90 > 0 and height != width:
            raise ValueError(f'AugmentPipe: rotate90 needs square images, got {height}x{width}')
        params = self.draw_params(batch_size, height, width, num_channels, debug_percentile)
        return self.apply(images, params)

    def apply(self, images: torch.Tensor, params: util.EasyDict) -> torch.Tensor:
        """Apply drawn parameters (see draw_params) to images [N, C, H, W]."""
        batch_size, num_channels, height, width = images.shape
        misc.assert_shape(params.G_inv, [batch_size, 3, 3], 'G_inv')
        moved = (params.flip != 0) | (params.quarter != 0) | (params.shift != 0).any(dim=1)
        if moved.any():
            idx = moved.nonzero()[:, 0]
            images = images.index_copy(0, idx, blit(images.index_select(0, idx), params.flip[idx], params.quarter[idx], params.shift[idx]))
        if params.geom_fired.any():
            idx = params.geom_fired.nonzero()[:, 0]
            resampled = resample(images.index_select(0, idx), params.G_inv.index_select(0, idx), self.geom_filter, self.geom_delay)
            images = images.index_copy(0, idx, resampled)
        if params.color_fired.any():
            idx = params.color_fired.nonzero()[:, 0]
            images = images.index_copy(0, idx, apply_color_matrix(images.index_select(0, idx), params.C.index_select(0, idx)))
        if params.fired.imgfilter.any():
            idx = params.fired.imgfilter.nonzero()[:, 0]
            taps = params.gains.index_select(0, idx).to(images.dtype) @ self.band_filters.to(images.dtype)   # [M, taps]
            images = images.index_copy(0, idx, filter_separable(images.index_select(0, idx), taps))
        if self.noise > 0:
            images = images + torch.randn_like(images) * params.sigma[:, None, None, None].to(images.dtype)
        if self.cutout > 0:
            images = images * cutout_mask(params.cutout_centre, params.fired.cutout, self.cutout_size, height, width).to(images.dtype)
        misc.assert_shape(images, [batch_size, num_channels, height, width], 'augmented images')
        return images

#----------------------------------------------------------------------------
# The stages as functions of their parameters.

def _saturation_matrix(vv: torch.Tensor, sat: torch.Tensor) -> torch.Tensor:
    """Scale the chroma (the part orthogonal to the luma axis) by sat [N]; [N, 4, 4]."""
    eye3 = torch.eye(4, device=sat.device)
    eye3[3, 3] = 0
    out = vv + (eye3 - vv) * sat[:, None, None]
    out[:, 3, 3] = 1
    return out

def blit(images: torch.Tensor, flip: torch.Tensor, quarter: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Exact pixel blitting: x-flip (flip [N] in {0, 1}), then quarter turns (quarter [N]),
    then integer translation (shift [N, 2] pixels, content moves by +shift), with reflection
    at the borders. Works in doubled centred coordinates X = 2k + 1 - W, which these maps
    keep integer."""
    batch_size, num_channels, height, width = images.shape
    X = (2 * torch.arange(width, device=images.device) + 1 - width).view(1, 1, width)
    Y = (2 * torch.arange(height, device=images.device) + 1 - height).view(1, height, 1)
    X = X - 2 * shift[:, 0].view(-1, 1, 1)
    Y = Y - 2 * shift[:, 1].view(-1, 1, 1)
    cos = torch.tensor([1, 0, -1, 0], device=images.device)[quarter].view(-1, 1, 1)
    sin = torch.tensor([0, 1, 0, -1], device=images.device)[quarter].view(-1, 1, 1)
    X, Y = cos * X + sin * Y, -sin * X + cos * Y      # Inverse rotation.
    X = X * (1 - 2 * flip.view(-1, 1, 1))
    cols = reflect_index(torch.div(X + width - 1, 2, rounding_mode='floor'), width)
    rows = reflect_index(torch.div(Y + height - 1, 2, rounding_mode='floor'), height)
    index = (rows * width + cols).reshape(batch_size, 1, height * width).expand(batch_size, num_channels, height * width)
    return images.reshape(batch_size, num_channels, height * width).gather(2, index).reshape(images.shape)

def centre_offset(f: torch.Tensor) -> float:
    """How far the DC group delay (centre of mass) of the 1-D filter f lies before its
    geometric centre, in taps (0 for a symmetric filter)."""
    taps = f.detach().double().cpu().numpy()
    return float((taps.size - 1) / 2 - (np.arange(taps.size) * taps).sum() / taps.sum())

# AugmentPipe's geometric delay in coarse pixels (see resample()), computed once at import so
# that constructing a pipe does no tensor maths (network files are checked by a construction
# with fake tensors, persistence.check_init_kwargs).
GEOM_DELAY = centre_offset(upfirdn2d.setup_filter(SYM6, separable=True)) / 2

def resample(images: torch.Tensor, G_inv: torch.Tensor, f: torch.Tensor, delay: float | None = None) -> torch.Tensor:
    """Warp images [M, C, H, W] by G_inv [M, 3, 3] (output pixel position -> input position,
    centred pixel units): reflect-pad, upsample 2x with the low-pass f, bilinear grid_sample
    on the fine grid, then downsample 2x with the flipped f (so the two filters' phases cancel).
    `delay`: centre_offset(f) / 2 in coarse pixels (computed from f if None)."""
    num, num_channels, height, width = images.shape
    taps = f.shape[0]
    like = dict(device=images.device, dtype=G_inv.dtype)
    margin_fine = taps // 2              # Extra fine pixels sampled for the downsampling filter.
    filter_support = taps // 4 + 1       # Coarse pixels near the padded edge touched by upsampling zeros, plus bilinear.

    # Where the sampled region's corners come from in the input: pad that much (whole batch).
    half_w, half_h = width / 2 + margin_fine / 2, height / 2 + margin_fine / 2
    corners = torch.tensor([[-half_w, -half_h, 1], [half_w, -half_h, 1], [half_w, half_h, 1], [-half_w, half_h, 1]], **like)
    src = (G_inv[:, None, :2, :] @ corners[None, :, :, None])[..., 0]    # [M, 4, 2]
    lo = (-src.amin(dim=(0, 1)) - torch.tensor([width / 2, height / 2], **like)).ceil().clamp(min=0)
    hi = (src.amax(dim=(0, 1)) - torch.tensor([width / 2, height / 2], **like)).ceil().clamp(min=0)
    x0, y0, x1, y1 = [int(v) + filter_support for v in torch.cat([lo, hi]).tolist()]
    padded = reflect_pad(images, x0, x1, y0, y1)
    padded_w, padded_h = width + x0 + x1, height + y0 + y1
    # One channel per (sample, channel) in a batch of one: the same filter everywhere, and
    # PyTorch's CPU depthwise convolution is several times faster in this layout.
    upsampled = upfirdn2d.upsample2d(padded.reshape(1, num * num_channels, padded_h, padded_w), f, up=2)
    upsampled = upsampled.reshape(num, num_channels, 2 * padded_h, 2 * padded_w)

    # Fine output grid (with margins) in centred coordinates -> input -> grid_sample units of the upsampled image.
    xs = (torch.arange(2 * width + 2 * margin_fine, **like) - margin_fine + 0.5) / 2 - width / 2
    ys = (torch.arange(2 * height + 2 * margin_fine, **like) - margin_fine + 0.5) / 2 - height / 2
    out_pos = torch.stack([xs.view(1, -1).expand(ys.numel(), -1), ys.view(-1, 1).expand(-1, xs.numel()), torch.ones(ys.numel(), xs.numel(), **like)], dim=-1)
    # f is not symmetric: its group delay at DC is off its centre by `delay` coarse pixels. The
    # upsampled image and the downsampled result are both displaced by it; for the identity
    # the two cancel, for a flip or rotation they would not, so warp about the displaced points.
    delay = centre_offset(f) / 2 if delay is None else delay
    in_pos = torch.einsum('mij,hwj->mhwi', G_inv[:, :2, :], out_pos + torch.tensor([delay, delay, 0], **like)) - delay   # [M, Hf, Wf, 2]
    to_grid = torch.tensor([2 / padded_w, 2 / padded_h], **like)
    offset = torch.tensor([(x0 + width / 2) * 2 / padded_w - 1, (y0 + height / 2) * 2 / padded_h - 1], **like)
    grid = (in_pos * to_grid + offset).to(images.dtype)
    sampled = grid_sample_gradfix.grid_sample(upsampled, grid)
    sampled = sampled.reshape(1, num * num_channels, *sampled.shape[2:])
    out = upfirdn2d.downsample2d(sampled, f, down=2, padding=-margin_fine, flip_filter=True).reshape(num, num_channels, height, width)
    misc.assert_shape(out, [num, num_channels, height, width], 'resampled images')
    return out

def apply_color_matrix(images: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """images [N, 3 or 1, H, W], C [N, 4, 4]. Greyscale is treated as grey RGB and the
    output channels are averaged: g' = g * sum(M) / 3 + mean(t) for C = [M t; 0 1]."""
    batch_size, num_channels, height, width = images.shape
    C = C.to(images.dtype)
    flat = images.reshape(batch_size, num_channels, height * width)
    if num_channels == 3:
        flat = C[:, :3, :3] @ flat + C[:, :3, 3:]
    else:
        flat = flat * (C[:, :3, :3].sum(dim=(1, 2)) / 3).view(-1, 1, 1) + C[:, :3, 3].mean(dim=1).view(-1, 1, 1)
    return flat.reshape(images.shape)

def filter_separable(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Filter each image [M, C, H, W] with its own symmetric 1-D filter taps [M, K]
    horizontally and vertically, with reflection at the borders."""
    num, num_channels, height, width = images.shape
    k = taps.shape[1]
    x = reflect_pad(images, k // 2, k // 2, k // 2, k // 2).reshape(1, num * num_channels, height + k - 1, width + k - 1)
    w = taps.to(images.dtype).repeat_interleave(num_channels, dim=0)   # [M*C, K]
    x = conv2d_gradfix.conv2d(x, w[:, None, None, :], groups=num * num_channels)
    x = conv2d_gradfix.conv2d(x, w[:, None, :, None], groups=num * num_channels)
    return x.reshape(images.shape)

def cutout_mask(centre: torch.Tensor, fired: torch.Tensor, size: float, height: int, width: int) -> torch.Tensor:
    """[N, 1, H, W]: 0 inside a size x size square (in image units) around centre [N, 2]
    for fired samples, 1 elsewhere."""
    xs = (torch.arange(width, device=centre.device) + 0.5) / width
    ys = (torch.arange(height, device=centre.device) + 0.5) / height
    inside_x = (xs.view(1, 1, -1) - centre[:, 0].view(-1, 1, 1)).abs() < size / 2
    inside_y = (ys.view(1, -1, 1) - centre[:, 1].view(-1, 1, 1)).abs() < size / 2
    inside = inside_x & inside_y & fired.view(-1, 1, 1)
    return (~inside).float()[:, None]

#----------------------------------------------------------------------------
# The adaptive controller (Karras et al. 2020, section 3). The training loop measures r_t,
# the mean sign of D's outputs on real images since the last update (the statistic
# Loss/signs/real, summed across processes), and calls this every `ada_interval` iterations.

@torch.no_grad()
def ada_update(p: torch.Tensor, rt: float, target: float, nimg_per_update: int, ada_kimg: float) -> None:
    """p <- max(0, p + sign(r_t - target) * nimg_per_update / (ada_kimg * 1000)), in place:
    p rises while D overfits (r_t above the target) and falls otherwise; at full speed it
    crosses [0, 1] in ada_kimg thousand images."""
    if not 0 <= target <= 1 or nimg_per_update < 1 or ada_kimg <= 0:
        raise ValueError(f'ada_update: need 0 <= target <= 1, nimg_per_update >= 1, ada_kimg > 0; '
                         f'got target={target}, nimg_per_update={nimg_per_update}, ada_kimg={ada_kimg}')
    adjust = float(np.sign(rt - target)) * nimg_per_update / (ada_kimg * 1000)
    p.copy_((p + adjust).clamp_min(0))

#----------------------------------------------------------------------------
