"""Equivariance metrics EQ-T, EQ-T_frac and EQ-R (Karras et al., "Alias-Free Generative
Adversarial Networks", NeurIPS 2021, Sec. 4 and Appendix E), computed as StyleGAN3 does.

They need a generator whose synthesis network takes a user transform of its input:
`G.synthesis.input.transform`, a [3, 3] float32 buffer M applied to the coordinates of the
Fourier-feature input, so that the image made with M is the function of the image made with
the identity sampled at M p (p: pixel centres in image widths, origin at the centre, y down).
For each sample the image made with a transformed input is compared with the reference image
(identity transform) transformed in image space, on the pixels where that is defined (a
mask), and

    PSNR = 10 log10(2^2 / MSE)  [dB],  MSE = sum(mask * (ref - img)^2) / sum(mask),

with 2 the peak-to-peak range of images in [-1, 1], and both sums pooled over all samples.

- EQ-T (`eqt*_int`): M translates by t, uniform in [-1/8, 1/8] image widths per axis and
  rounded to whole pixels; the reference is shifted by the same pixels, exactly (E.1).
- EQ-T_frac (`eqt*_frac`): t unrounded; the reference is resampled with a separable Lanczos
  kernel (a = 3) normalised to unit DC gain; the mask keeps the pixels all of whose taps lie
  inside the image (E.2).
- EQ-R (`eqr*`): M rotates by an angle uniform in [-pi, pi]; the reference is upsampled 4x
  with a filter that is band-limited both in the input frame and in the rotated frame, then
  sampled bilinearly at the rotated positions; the generated image is filtered with the same
  two band-limits but not rotated (the paper's pseudo-rotation R*_alpha), so that both have
  the same spectrum. The mask is the product of the two valid regions (E.3).

Sampling differs from StyleGAN3 only in being seeded (docs/metrics.md): samples come in groups
of `GROUP_SIZE`; group g takes z and labels of items GROUP_SIZE * g + i as every metric here
does, and its transform and constant-noise buffers from an RNG seeded by (seed, g), so that the
value does not depend on the number of processes or the batch size.
"""

import copy

import numpy as np
import torch

from metrics import metric_utils
from torch_utils.ops import upfirdn2d

GROUP_SIZE = 4          # Samples sharing one transform (upstream's batch size for these metrics).
TRANSLATE_MAX = 0.125   # Largest translation per axis, in image widths.
ROTATE_MAX = np.pi      # Largest rotation, in radians.
LANCZOS_A = 3           # Lanczos kernel half-width, in pixels (translation and rotation).
ROTATE_UP = 4           # Upsampling of the reference before it is rotated.

#----------------------------------------------------------------------------
# Kernels and transforms.

def sinc(x: torch.Tensor) -> torch.Tensor:
    """Normalised sinc, sin(pi x) / (pi x), 1 at 0."""
    y = x * np.pi
    return torch.where(y == 0, torch.ones_like(y), torch.sin(y) / torch.where(y == 0, torch.ones_like(y), y))

def lanczos_window(x: torch.Tensor, a: float) -> torch.Tensor:
    """sinc(x / a) for |x| < a, else 0: the window of the Lanczos kernel sinc(x) sinc(x / a)."""
    return torch.where(x.abs() < a, sinc(x / a), torch.zeros_like(x))

def rotation_matrix(angle: float) -> torch.Tensor:
    """float32 [3, 3] [[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]] (StyleGAN3's convention):
    the input transform rotation_matrix(-angle) rotates the image content by `angle`,
    counterclockwise as displayed (y points down), as rotate_fractional(x, angle) does."""
    c, s = float(np.cos(angle)), float(np.sin(angle))
    return torch.tensor([[c, s, 0], [-s, c, 0], [0, 0, 1]], dtype=torch.float32)

def translation_matrix(tx: float, ty: float) -> torch.Tensor:
    """float32 [3, 3]: the input transform that moves the image content by (tx, ty) image widths."""
    return torch.tensor([[1, 0, -tx], [0, 1, -ty], [0, 0, 1]], dtype=torch.float32)

def _shift(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """out[..., i, j] = x[..., i - dy, j - dx] where that pixel exists, else 0."""
    H, W = x.shape[-2:]
    if abs(dx) >= W or abs(dy) >= H:
        return torch.zeros_like(x)
    return torch.nn.functional.pad(x, [dx, -dx, dy, -dy])  # (Negative padding crops.)

#----------------------------------------------------------------------------
# The image-space transforms of the reference: each returns (image, mask), both [N, C, H, W].

def translate_integer(x: torch.Tensor, tx: float, ty: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the content by (tx W, ty H) pixels, rounded to whole pixels (Appendix E.1)."""
    assert x.ndim == 4
    H, W = x.shape[2:]
    dx, dy = int(round(float(tx) * W)), int(round(float(ty) * H))
    return _shift(x, dx, dy), _shift(torch.ones_like(x), dx, dy)

def lanczos_taps(frac: float, a: int = LANCZOS_A) -> torch.Tensor:
    """float64 [2a] weights of the shifts k = -(a-1) .. a for a delay of `frac` in [0, 1) pixels:
    sinc(k - frac) sinc((k - frac) / a), divided by their sum."""
    k = torch.arange(-(a - 1), a + 1, dtype=torch.float64) - frac
    taps = sinc(k) * sinc(k / a)
    return taps / taps.sum()

def translate_fractional(x: torch.Tensor, tx: float, ty: float, a: int = LANCZOS_A) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the content by (tx W, ty H) pixels, any real numbers, with the Lanczos kernel of
    half-width a (Appendix E.2): out(p) = sum_k w_k x(p - floor(s) - k), s = tx W, per axis."""
    assert x.ndim == 4
    H, W = x.shape[2:]
    out, mask = x, torch.ones_like(x)
    for axis, shift in ((0, float(tx) * W), (1, float(ty) * H)):
        whole = int(np.floor(shift))
        weights = lanczos_taps(shift - whole, a)
        offsets = [(whole + k, 0) if axis == 0 else (0, whole + k) for k in range(-(a - 1), a + 1)]
        out = sum(float(w) * _shift(out, *d) for w, d in zip(weights, offsets))
        for d in offsets:
            mask = mask * _shift(torch.ones_like(x), *d)
    return out, mask

def bandlimit_filter(mat: torch.Tensor, a: int, amax: int, up: int, aflt: int = 64) -> torch.Tensor:
    """float32 [2 amax up - 1] x [same]: the 2-D low-pass filter, sampled every 1/up pixels,
    that keeps the frequencies inside both the input frame's Nyquist square and the square of
    the frame transformed by mat[:2, :2]. Built on a grid of +-aflt pixels (in float64): the
    convolution of the two frames' ideal filters sinc(x) sinc(y) times the convolution of their
    Lanczos windows (half-width a), cut to +-amax pixels; each of the up x up polyphase
    components then sums to 1 / up^2 (unit DC gain after upsampling by `up`)."""
    assert a <= amax < aflt and mat.shape == (3, 3)
    n = aflt * up
    coords = torch.arange(-(n - 1), n, dtype=torch.float64) / up       # 2n - 1 taps, 0 at index n - 1.
    yi, xi = torch.meshgrid(coords, coords, indexing='ij')
    m = mat.to(torch.float64)
    xo, yo = m[0, 0] * xi + m[0, 1] * yi, m[1, 0] * xi + m[1, 1] * yi

    def convolve(u, v):     # Circular convolution of two real grids centred at index n - 1.
        spectrum = torch.fft.rfft2(torch.fft.ifftshift(u)) * torch.fft.rfft2(torch.fft.ifftshift(v))
        return torch.fft.fftshift(torch.fft.irfft2(spectrum, s=u.shape))

    ideal = convolve(sinc(xi) * sinc(yi), sinc(xo) * sinc(yo))
    window = convolve(lanczos_window(xi, a) * lanczos_window(yi, a), lanczos_window(xo, a) * lanczos_window(yo, a))
    half = amax * up - 1
    f = (ideal * window)[n - 1 - half : n + half, n - 1 - half : n + half]
    size = 2 * amax * up        # Pad to a multiple of up, normalise each phase, drop the pad.
    f = torch.nn.functional.pad(f, [0, 1, 0, 1]).reshape(2 * amax, up, 2 * amax, up)
    f = f / f.sum(dim=[0, 2], keepdim=True) / up ** 2
    return f.reshape(size, size)[:-1, :-1].to(torch.float32)

def rotate_fractional(x: torch.Tensor, angle: float, a: int = LANCZOS_A, up: int = ROTATE_UP) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate the content by `angle`, counterclockwise as displayed (the operator R_alpha of
    Appendix E.3; pi / 2 is torch.rot90(x, 1, dims=(2, 3)) for band-limited x): out(u) = x(R u),
    u in normalised coordinates, R = inverse(rotation_matrix(angle)); x is upsampled by `up`
    with bandlimit_filter, then sampled bilinearly. Square images."""
    assert x.ndim == 4 and x.shape[2] == x.shape[3], x.shape
    H, W = x.shape[2:]
    mat = rotation_matrix(angle)
    f = bandlimit_filter(mat, a=a, amax=2 * a, up=up).to(x.device)
    p = f.shape[0] // 2
    y = upfirdn2d.upsample2d(x, f, up=up, padding=p)      # [N, C, up H + 2p, up W + 2p].
    theta = torch.linalg.inv(mat)[:2].clone()
    # Fine sample i lies (i - p) / up pixels from the image's edge (pixel n: n + 1/2); grid_sample
    # puts it at (i + 1/2 - p) / up, so the grid moves by half a fine pixel.
    theta[0, 2] += 1 / (up * W)
    theta[1, 2] += 1 / (up * H)
    theta[0] *= W / (W + 2 * p / up)       # Normalised coordinates of x -> of the larger y.
    theta[1] *= H / (H + 2 * p / up)
    grid = torch.nn.functional.affine_grid(theta[None].repeat(x.shape[0], 1, 1).to(x.device), list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(y, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    valid = torch.zeros_like(y)
    c = 2 * p + 1           # Fine samples within amax pixels of the image's edge saw taps outside it.
    valid[:, :, c:-c, c:-c] = 1
    mask = torch.nn.functional.grid_sample(valid, grid, mode='nearest', padding_mode='zeros', align_corners=False)
    return out, mask

def pseudo_rotate(x: torch.Tensor, angle: float, a: int = LANCZOS_A) -> tuple[torch.Tensor, torch.Tensor]:
    """Give x the band-limits a rotation by `angle` would, without rotating it (R*_alpha of
    Appendix E.3): filter with bandlimit_filter(rotation_matrix(-angle), up=1)."""
    assert x.ndim == 4
    f = bandlimit_filter(rotation_matrix(-angle), a=a, amax=2 * a, up=1).to(x.device)
    out = upfirdn2d.filter2d(x, f)
    mask = torch.zeros_like(out)
    c = f.shape[0] // 2
    mask[:, :, c:-c, c:-c] = 1
    return out, mask

#----------------------------------------------------------------------------

def input_transform(G) -> torch.Tensor | None:
    """G.synthesis.input.transform if it is a [3, 3] tensor, else None."""
    M = getattr(getattr(getattr(G, 'synthesis', None), 'input', None), 'transform', None)
    return M if isinstance(M, torch.Tensor) and M.shape == (3, 3) else None

def psnr(sum_sq_err: float, sum_mask: float) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2) from pooled sums; inf when equal."""
    mse = sum_sq_err / sum_mask
    return float('inf') if mse == 0 else float(20 * np.log10(2) - 10 * np.log10(mse))

def group_errors(G, M: torch.Tensor, ws: torch.Tensor, kind: str, rng: np.random.Generator,
                 synthesis_kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 (sum of masked squared errors, sum of mask) of one group: `kind` in
    ('int', 'frac', 'rot'), the transform drawn from rng; M is G's input transform, changed here."""
    M.copy_(torch.eye(3))
    ref = G.synthesis(ws, **synthesis_kwargs)
    if kind == 'rot':
        angle = float(rng.uniform(-ROTATE_MAX, ROTATE_MAX))
        M.copy_(rotation_matrix(-angle))
        img, img_mask = pseudo_rotate(G.synthesis(ws, **synthesis_kwargs), angle)
        ref, mask = rotate_fractional(ref, angle)
        mask = mask * img_mask
    else:
        t = rng.uniform(-TRANSLATE_MAX, TRANSLATE_MAX, size=2)
        if kind == 'int':
            t = np.round(t * G.img_resolution) / G.img_resolution
        M.copy_(translation_matrix(*t))
        img = G.synthesis(ws, **synthesis_kwargs)
        ref, mask = (translate_integer if kind == 'int' else translate_fractional)(ref, *t)
    assert img.shape == ref.shape == mask.shape, (img.shape, ref.shape, mask.shape)
    return ((ref - img).square() * mask).to(torch.float64).sum(), mask.to(torch.float64).sum()

def compute_equivariance(opts: metric_utils.MetricOptions, num_samples: int, kind: str, metric: str = 'this metric') -> float:
    """EQ-T (kind 'int'), EQ-T_frac ('frac') or EQ-R ('rot') in dB over num_samples samples;
    a generator without an input transform is refused in one line naming `metric`."""
    assert kind in ('int', 'frac', 'rot') and num_samples % GROUP_SIZE == 0
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    M = input_transform(G)
    if M is None:
        raise ValueError(no_transform_message(metric, G))
    label_source = metric_utils.construct_dataset(opts.dataset_kwargs) if G.c_dim > 0 else None
    noise_bufs = [buf for name, buf in G.named_buffers() if name.endswith('noise_const')]
    synthesis_kwargs = {**opts.G_kwargs, 'noise_mode': 'const', 'force_fp32': True}
    num_groups = num_samples // GROUP_SIZE
    sums = torch.zeros([2], dtype=torch.float64, device=opts.device)
    task = opts.progress.start(f'equivariance ({kind})', num_samples, opts.rank)
    with torch.no_grad():
        for group in range(opts.rank, num_groups, opts.num_gpus):
            rng = np.random.default_rng([opts.seed, group, 0xE0])
            for buf in noise_bufs:
                buf.copy_(torch.as_tensor(rng.standard_normal(list(buf.shape)), dtype=buf.dtype))
            z, c = metric_utils.sample_latents(opts, list(range(group * GROUP_SIZE, (group + 1) * GROUP_SIZE)), G.z_dim, G.c_dim, label_source)
            ws = G.mapping(z, c)
            sums += torch.stack(group_errors(G, M, ws, kind, rng, synthesis_kwargs))
            task.update(min((group + 1) * GROUP_SIZE, num_samples))
    if opts.num_gpus > 1:
        torch.distributed.all_reduce(sums)
    task.update(num_samples)
    return psnr(float(sums[0]), float(sums[1]))

def no_transform_message(metric: str, G) -> str:
    """The one line refusing an equivariance metric for a generator without an input transform."""
    kind = f'{type(G).__module__}.{type(G).__qualname__}'
    return (f'{metric} is undefined for {kind}: it measures equivariance to transforms of the synthesis '
            f'input (G.synthesis.input.transform, as in StyleGAN3), which this generator does not have')

#----------------------------------------------------------------------------
