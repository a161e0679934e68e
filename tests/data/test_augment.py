"""AugmentPipe (ADA): identity at p = 0, each operation does what it claims, firing
frequencies, exactness of blits, geometry against independent references, first and second
derivatives, persistence; the ADA p update."""

import math
import os

import numpy as np
import PIL.Image
import pytest
import scipy.ndimage
import torch

from dnnlib import util
from tests.conftest import assert_close
from torch_utils import persistence
from training.augment import (AUGPIPE_SPECS, SYM2, SYM6, ada_update, AugmentPipe, blit, octave_filter_bank,
                              reflect_pad, resample, rotate2d, scale2d, translate2d)
from torch_utils.ops import upfirdn2d

ALL_OPS = ['xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness', 'contrast',
           'lumaflip', 'hue', 'saturation', 'imgfilter', 'noise', 'cutout']

def make_pipe(p=1.0, **kwargs):
    pipe = AugmentPipe(**kwargs)
    pipe.p.fill_(p)
    return pipe

def random_images(n=4, c=3, size=16, seed=0, dtype=torch.float32):
    return (torch.rand([n, c, size, size], generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1)

def smooth_images(n=2, c=3, size=32, seed=0):
    """Band-limited content (bicubic upsampling of 8x8 noise): resampling is nearly exact."""
    low = torch.rand([n, c, 8, 8], generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(size, size), mode='bicubic', align_corners=False)

def blob(size, cx, cy, sigma=1.5):
    """Gaussian blob [1, 1, size, size] centred at (cx, cy) in centred pixel coordinates."""
    coords = torch.arange(size, dtype=torch.float64) + 0.5 - size / 2
    return torch.exp(-((coords.view(1, -1) - cx) ** 2 + (coords.view(-1, 1) - cy) ** 2) / (2 * sigma ** 2))[None, None]

def centroid(img, near=None, radius=5):
    """Intensity centroid (x, y) in centred pixel coordinates, within `radius` of `near`."""
    size = img.shape[-1]
    coords = torch.arange(size, dtype=torch.float64) + 0.5 - size / 2
    w = img[0, 0].double().clamp(min=0)
    if near is not None:
        w = w * (((coords.view(1, -1) - near[0]) ** 2 + (coords.view(-1, 1) - near[1]) ** 2) < radius ** 2)
    return float((w.sum(0) * coords).sum() / w.sum()), float((w.sum(1) * coords).sum() / w.sum())

#----------------------------------------------------------------------------
# Constants.

def test_wavelet_constants_are_orthonormal():
    for taps in (SYM2, SYM6):
        h = np.array(taps)
        assert abs(h.sum() - math.sqrt(2)) < 1e-12
        for shift in range(0, h.size, 2):   # <h, h shifted by an even amount> = delta.
            assert abs(np.dot(h[shift:], h[:h.size - shift]) - (shift == 0)) < 1e-12

def test_filter_bank_partitions_unity_by_octave():
    bank = octave_filter_bank(SYM2)
    assert bank.shape == (4, 43)
    impulse = np.zeros(43)
    impulse[21] = 1
    np.testing.assert_allclose(bank.sum(axis=0), impulse, atol=1e-12)
    np.testing.assert_allclose(bank, bank[:, ::-1], atol=1e-15)   # Zero phase.
    freqs = np.linspace(0, np.pi, 257)
    response = np.abs(np.exp(-1j * np.outer(freqs, np.arange(43))) @ bank.T)   # [257, 4]
    peaks = freqs[response.argmax(axis=0)]
    assert list(peaks) == sorted(peaks) and peaks[0] == 0 and peaks[3] > np.pi / 2   # Lowest band first.

#----------------------------------------------------------------------------
# Identity at p = 0 and shapes.

@pytest.mark.parametrize('spec', list(AUGPIPE_SPECS))
@pytest.mark.parametrize('channels', [1, 3])
def test_p0_is_exact_identity(spec, channels):
    images = random_images(c=channels)
    out = make_pipe(p=0, **AUGPIPE_SPECS[spec])(images)
    assert torch.equal(out, images)   # Exact: stages skip the samples where nothing fired.

@pytest.mark.parametrize('channels', [1, 3])
def test_every_op_runs_on_both_channel_counts(channels):
    images = random_images(n=8, c=channels)
    out = make_pipe(**AUGPIPE_SPECS['bgcfnc'])(images)
    assert out.shape == images.shape and out.dtype == images.dtype and torch.isfinite(out).all()
    assert not torch.equal(out, images)

def test_bad_input_is_reported():
    with pytest.raises(ValueError, match='1 or 3'):
        make_pipe(xflip=1)(torch.zeros([2, 4, 8, 8]))
    with pytest.raises(ValueError, match='square'):
        make_pipe(rotate90=1)(torch.zeros([2, 3, 8, 16]))
    with pytest.raises(ValueError, match='imgfilter_bands'):
        AugmentPipe(imgfilter_bands=[1, 1])

#----------------------------------------------------------------------------
# Pixel blitting: exact.

def test_xflip_is_an_exact_flip():
    images = random_images(n=400, size=8)
    out = make_pipe(xflip=1)(images)
    same = (out == images).flatten(1).all(1)
    flipped = (out == images.flip(3)).flatten(1).all(1)
    assert (same | flipped).all()
    assert abs(flipped.float().mean().item() - 0.5) < 5 * math.sqrt(0.25 / 400)   # A fired flip is a fair coin.

def test_rotate90_is_exact():
    images = random_images(n=400, size=8)
    out = make_pipe(rotate90=1)(images)
    matches = torch.stack([(out == torch.rot90(images, k, dims=(2, 3))).flatten(1).all(1) for k in range(4)], dim=1)
    assert (matches.sum(1) == 1).all()
    freq = matches.float().mean(0)
    assert (freq - 0.25).abs().max() < 5 * math.sqrt(0.25 * 0.75 / 400)

def reference_blit(image, flip, quarter, shift):
    """Numpy: flip, rotate by quarter turns (clockwise on screen: np.rot90 with k = -quarter),
    then translate by whole pixels with mirror padding. image [C, H, W]."""
    a = image.numpy()
    if flip:
        a = a[:, :, ::-1]
    a = np.rot90(a, -quarter, axes=(1, 2))
    size = a.shape[-1]
    pad = size
    padded = np.pad(a, [(0, 0), (pad, pad), (pad, pad)], mode='reflect')
    tx, ty = shift
    return torch.from_numpy(padded[:, pad - ty:pad - ty + size, pad - tx:pad - tx + size].copy())

def test_blit_matches_numpy_reference():
    pipe = make_pipe(**AUGPIPE_SPECS['blit'])
    images = random_images(n=64, size=16)
    params = pipe.draw_params(64, 16, 16)
    out = pipe.apply(images, params)
    assert params.shift.abs().max() <= 2 and params.shift.abs().max() >= 1   # Up to 0.125 * 16 pixels.
    for i in range(64):
        expected = reference_blit(images[i], int(params.flip[i]), int(params.quarter[i]), params.shift[i].tolist())
        assert torch.equal(out[i], expected), f'sample {i}'

def test_xint_moves_by_whole_pixels():
    images = random_images(n=200, size=16)
    pipe = make_pipe(xint=1)
    params = pipe.draw_params(200, 16, 16)
    out = pipe.apply(images, params)
    for i in range(200):
        tx, ty = params.shift[i].tolist()
        assert torch.equal(out[i, :, max(ty, 0):16 + min(ty, 0), max(tx, 0):16 + min(tx, 0)],
                           images[i, :, max(-ty, 0):16 + min(-ty, 0), max(-tx, 0):16 + min(-tx, 0)])
    assert set(params.shift.flatten().tolist()) == {-2, -1, 0, 1, 2}

#----------------------------------------------------------------------------
# General geometry: resampling precision and placement.

@pytest.mark.parametrize('pads', [(1, 2, 3, 0), (5, 7, 7, 1), (9, 20, 0, 33)])
def test_reflect_pad_matches_numpy_for_any_margin(pads):
    x0, x1, y0, y1 = pads   # The last case exceeds torch's limit and uses index reflection.
    images = random_images(n=2, c=3, size=8)
    expected = np.pad(images.numpy(), [(0, 0), (0, 0), (y0, y1), (x0, x1)], mode='reflect')
    assert torch.equal(reflect_pad(images, x0, x1, y0, y1), torch.from_numpy(expected))

def test_resample_identity_is_perfect_reconstruction():
    # Upsampling with sym6 and downsampling with it flipped reconstructs any image (orthonormal
    # wavelet); the error is the float32 filter taps.
    f = upfirdn2d.setup_filter(SYM6, separable=True)
    images = random_images(n=2, size=16, dtype=torch.float64)
    assert_close(resample(images, torch.eye(3, dtype=torch.float64)[None].repeat(2, 1, 1), f), images, rtol=0, atol=1e-6, name='identity')

def test_resample_matches_exact_blits():
    """The matrix path against the exact blit twin: integer translations agree to rounding;
    flips and quarter turns agree to 2e-2 inside a 4-pixel border on band-limited images (the
    remainder is sym6's phase non-linearity; without delay compensation it would be ~0.15)."""
    f = upfirdn2d.setup_filter(SYM6, separable=True)
    images = smooth_images()
    zero, one = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    no_flip, no_turn = torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long)
    shift = torch.tensor([[3, -2], [-1, 5]])
    out = resample(images, translate2d(-shift[:, 0].double(), -shift[:, 1].double(), zero), f)
    assert_close(out, blit(images, no_flip, no_turn, shift), rtol=0, atol=1e-5, name='translation')
    out = resample(images, scale2d(-one, one, zero), f)
    assert_close(out[..., 4:-4, 4:-4], images.flip(3)[..., 4:-4, 4:-4], rtol=0, atol=2e-2, name='flip')
    theta = torch.full([2], math.pi / 2, dtype=torch.float64)
    out = resample(images, rotate2d(-theta, zero), f)
    expected = blit(images, no_flip, torch.ones(2, dtype=torch.long), torch.zeros(2, 2, dtype=torch.long))
    assert_close(out[..., 4:-4, 4:-4], expected[..., 4:-4, 4:-4], rtol=0, atol=2e-2, name='quarter turn')

def test_geometry_puts_content_where_the_matrix_says():
    """A small blob at c moves to G c for the pipe's own random matrices (geom preset)."""
    pipe = make_pipe(**AUGPIPE_SPECS['geom'])
    torch.manual_seed(1)
    params = pipe.draw_params(24, 32, 32)
    G = torch.linalg.inv(params.G_inv.double())
    targets = (G[:, :2, :2] @ torch.tensor([4.0, -3.0], dtype=torch.float64) + G[:, :2, 2])
    keep = params.geom_fired & (targets.abs().amax(dim=1) < 9) & (torch.linalg.det(G[:, :2, :2]) > 0.6)   # Well inside, not too small.
    assert keep.sum() >= 5
    out = resample(blob(32, 4, -3).repeat(int(keep.sum()), 1, 1, 1), params.G_inv.double()[keep], pipe.geom_filter)
    for img, target in zip(out, targets[keep]):
        cx, cy = centroid(img[None], near=target.tolist())   # Reflected copies may appear elsewhere.
        assert abs(cx - target[0]) < 0.3 and abs(cy - target[1]) < 0.3, (cx, cy, target)

def test_scale_and_rotate_strengths_via_debug_percentile():
    img = blob(32, 6, 0)
    q = 0.9
    s = 2 ** (0.2 * math.sqrt(2) * float(torch.erfinv(torch.tensor(2 * q - 1.0))))
    out = make_pipe(scale=1)(img.float(), debug_percentile=q).double()
    assert abs(centroid(out)[0] / 6 - s) < 0.02 and abs(centroid(out)[1]) < 0.05
    # Rotation at the 0.75 quantile: theta = +pi/2 for each of pre and post that fired.
    pipe = make_pipe(rotate=1)
    torch.manual_seed(0)
    params = pipe.draw_params(1, 32, 32, debug_percentile=0.75)
    turns = int(params.fired.rotate_pre[0]) + int(params.fired.rotate_post[0])
    out = pipe.apply(img.float(), params).double()
    angle = math.atan2(centroid(out)[1], centroid(out)[0])
    expected = turns * math.pi / 2
    assert abs(math.remainder(angle - expected, 2 * math.pi)) < 0.05

#----------------------------------------------------------------------------
# Colour, filtering, corruptions.

def test_brightness_shifts_every_pixel_by_one_amount():
    images = random_images(n=500, size=4)
    out = make_pipe(brightness=1)(images)
    delta = (out - images).flatten(1)
    assert (delta.max(1).values - delta.min(1).values).max() < 1e-5
    assert abs(delta[:, 0].std().item() - 0.2) < 0.03 and abs(delta[:, 0].mean().item()) < 0.03
    assert abs((out.mean() - images.mean()).item()) < 0.03

def test_contrast_scales_deviation_from_zero():
    images = random_images(n=500, size=4)
    out = make_pipe(contrast=1)(images)
    ratio = (out / images).flatten(1)
    assert (ratio.max(1).values - ratio.min(1).values).max() < 1e-4
    assert abs(ratio[:, 0].log2().std().item() - 0.5) < 0.06

def test_lumaflip_reflects_about_the_grey_axis():
    images = random_images(n=200, size=4)
    out = make_pipe(lumaflip=1)(images)
    flipped = images - 2 * images.mean(dim=1, keepdim=True)
    same = ((out - images).abs().flatten(1).max(1).values < 1e-6)
    refl = ((out - flipped).abs().flatten(1).max(1).values < 1e-5)
    assert (same | refl).all() and 0.3 < refl.float().mean() < 0.7

def test_hue_and_saturation_keep_luma():
    images = random_images(n=50, size=4)
    for op in ('hue', 'saturation'):
        out = make_pipe(**{op: 1})(images)
        assert_close(out.mean(dim=1), images.mean(dim=1), rtol=0, atol=1e-5, name=f'{op} luma')
    chroma = lambda x: (x - x.mean(dim=1, keepdim=True)).norm(dim=1)
    out = make_pipe(hue=1)(images)
    assert_close(chroma(out), chroma(images), rtol=1e-4, atol=1e-5, name='hue keeps chroma length')
    assert not torch.allclose(out, images)

def test_colour_on_greyscale_is_the_channel_average():
    grey = random_images(n=8, c=1, size=4)
    pipe = make_pipe(**AUGPIPE_SPECS['color'])
    params = pipe.draw_params(8, 4, 4, num_channels=1)
    out = pipe.apply(grey, params)
    rgb = pipe.apply(grey.repeat(1, 3, 1, 1), params)   # Same matrices on grey RGB.
    assert_close(out, rgb.mean(dim=1, keepdim=True), rtol=0, atol=1e-5, name='grey colour')

def test_imgfilter_matches_scipy_reference():
    pipe = make_pipe(imgfilter=1)
    images = random_images(n=6, size=16)
    params = pipe.draw_params(6, 16, 16)
    out = pipe.apply(images, params)
    bank = octave_filter_bank(SYM2)
    for i in range(6):
        if not params.fired.imgfilter[i]:
            assert torch.equal(out[i], images[i])
            continue
        taps = params.gains[i].double().numpy() @ bank
        ref = scipy.ndimage.convolve1d(images[i].double().numpy(), taps, axis=2, mode='mirror')
        ref = scipy.ndimage.convolve1d(ref, taps, axis=1, mode='mirror')
        assert_close(out[i], torch.from_numpy(ref), rtol=0, atol=1e-5, name=f'sample {i}')
    assert params.fired.imgfilter.any()

def test_noise_has_the_drawn_sigma():
    images = torch.zeros([300, 3, 32, 32])
    pipe = make_pipe(noise=1)
    params = pipe.draw_params(300, 32, 32)
    out = pipe.apply(images, params)
    std = out.flatten(1).std(dim=1)
    assert_close(std, params.sigma, rtol=0.1, atol=1e-6, name='per-sample noise std')
    assert abs(params.sigma.mean().item() - 0.1 * math.sqrt(2 / math.pi)) < 0.01   # |N(0, 0.1)|.

def test_cutout_zeroes_one_square():
    images = torch.ones([200, 3, 16, 16])
    pipe = make_pipe(cutout=1)
    params = pipe.draw_params(200, 16, 16)
    out = pipe.apply(images, params)
    for i in range(200):
        zero = (out[i, 0] == 0)
        assert torch.equal(out[i, 1], out[i, 0]) and torch.equal(out[i, 2], out[i, 0])
        assert ((out[i] == 0) | (out[i] == 1)).all()
        rows, cols = zero.any(1).nonzero()[:, 0], zero.any(0).nonzero()[:, 0]
        assert int(zero.sum()) == len(rows) * len(cols)   # A solid rectangle ...
        cx, cy = params.cutout_centre[i].tolist()
        inside = min(cx, 1 - cx) >= 0.25 + 1 / 16 and min(cy, 1 - cy) >= 0.25 + 1 / 16
        if inside:
            assert len(rows) == len(cols) == 8   # ... a full 8x8 square when it lies inside.
    assert (out == 0).any()

#----------------------------------------------------------------------------
# Firing frequency and randomness.

@pytest.mark.parametrize('p', [0.2, 0.7])
def test_firing_frequency_matches_p(p):
    n = 20000
    pipe = make_pipe(p=p, **AUGPIPE_SPECS['bgcfnc'])
    torch.manual_seed(0)
    params = pipe.draw_params(n, 16, 16)
    tol = lambda prob: 5 * math.sqrt(prob * (1 - prob) / n)
    for op in ALL_OPS:
        expected = 1 - (1 - p) ** 4 if op == 'imgfilter' else p   # imgfilter: any of 4 bands.
        assert abs(params.fired[op].float().mean().item() - expected) < tol(expected), op
    p_rot = 1 - math.sqrt(1 - p)
    for part in ('rotate_pre', 'rotate_post'):
        assert abs(params.fired[part].float().mean().item() - p_rot) < tol(p_rot)
    # Each op independently: joint frequency of two ops = product.
    both = (params.fired.xflip & params.fired.noise).float().mean().item()
    assert abs(both - p * p) < tol(p * p)
    # The multiplier scales the probability.
    half = make_pipe(p=p, xflip=0.5).draw_params(n, 16, 16).fired.xflip.float().mean().item()
    assert abs(half - p / 2) < tol(p / 2)

def test_seeded_and_debug_percentile_deterministic():
    images = random_images(n=4)
    pipe = make_pipe(**AUGPIPE_SPECS['bgcfnc'])
    torch.manual_seed(5)
    a = pipe(images)
    torch.manual_seed(5)
    b = pipe(images)
    assert torch.equal(a, b)
    pipe = make_pipe(**AUGPIPE_SPECS['bgcf'])   # No noise: debug percentile fixes every value.
    c = pipe(images, debug_percentile=0.3)
    assert not torch.equal(c, images) and torch.isfinite(c).all()

#----------------------------------------------------------------------------
# Derivatives.

def test_first_and_second_derivatives_are_exact():
    """With its random parameters fixed the pipe is an affine map of the images, so
    f(x + u) - f(x) = J u exactly for any u. Check autograd's vector-Jacobian product against
    it (<J^T v, u> = <v, J u> for random u, v), and the derivative of <J^T v, w> with respect
    to v (what R1 needs: the backward must itself be differentiable) against J w. float64,
    every op fired (p = 1; noise off, as it is drawn inside apply)."""
    pipe = make_pipe(**dict(AUGPIPE_SPECS['bgcfnc'], noise=0))
    torch.manual_seed(3)
    params = pipe.draw_params(1, 8, 8)
    for key in ('G_inv', 'C', 'gains'):
        params[key] = params[key].double()
    gen = torch.Generator().manual_seed(0)
    x = random_images(n=1, size=8, dtype=torch.float64)
    probes = torch.randn([4, *x.shape[1:]], generator=gen, dtype=torch.float64)
    repeat = lambda v: v.repeat(len(probes), *[1] * (v.ndim - 1))
    many = util.EasyDict({k: repeat(v) for k, v in params.items() if k != 'fired'}, fired=util.EasyDict({k: repeat(v) for k, v in params.fired.items()}))
    J_probes = pipe.apply(x + probes, many) - pipe.apply(x, params)   # [4, C, H, W]: J u for each probe u.
    assert (J_probes - probes).abs().max() > 0.5   # Far from the identity.

    x = x.requires_grad_()
    for _ in range(3):
        v = torch.randn(x.shape, generator=gen, dtype=torch.float64).requires_grad_()
        jtv, = torch.autograd.grad(pipe.apply(x, params), x, v, create_graph=True)
        assert_close((jtv * probes).sum(dim=(1, 2, 3)), (v.detach() * J_probes).sum(dim=(1, 2, 3)), rtol=0, atol=1e-9, name='<J^T v, u> vs <v, J u>')
        jw, = torch.autograd.grad((jtv * probes[0]).sum(), v)
        assert_close(jw[0], J_probes[0], rtol=0, atol=1e-9, name='d<J^T v, w>/dv = J w')

def test_r1_double_backward_through_the_pipe():
    pipe = make_pipe(p=0.8, **AUGPIPE_SPECS['bgcfnc'])
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Softplus(), torch.nn.Flatten(), torch.nn.Linear(4 * 14 * 14, 1))
    images = random_images(n=6).requires_grad_()
    logits = D(pipe(images))
    grad, = torch.autograd.grad(logits.sum(), images, create_graph=True)
    penalty = grad.square().sum()
    penalty.backward()
    weights = [D[0].weight, D[0].bias, D[3].weight]
    assert torch.isfinite(penalty) and penalty > 0
    assert all(w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0 for w in weights)

#----------------------------------------------------------------------------
# Persistence and presets.

def test_presets_and_network_file_round_trip(tmp_path):
    assert set(AUGPIPE_SPECS) == {'blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc', 'bgcf', 'bgcfn', 'bgcfnc'}
    assert set(AUGPIPE_SPECS['bgcfnc']) == set(ALL_OPS)
    assert set(AUGPIPE_SPECS['bgc']) == set(AUGPIPE_SPECS['blit']) | set(AUGPIPE_SPECS['geom']) | set(AUGPIPE_SPECS['color'])
    pipe = make_pipe(p=0.37, **AUGPIPE_SPECS['bgc'])
    persistence.save_network(str(tmp_path / 'net.pt'), augment_pipe=pipe)
    path = str(tmp_path / 'net.pt')     # No G_ema: read below networks.load_network.
    loaded = persistence.network_from_data(persistence.load_plain_data(path, path, 'network file'), path).augment_pipe
    assert isinstance(loaded, AugmentPipe) and abs(float(loaded.p) - 0.37) < 1e-7
    assert loaded.init_kwargs == pipe.init_kwargs
    images = random_images()
    torch.manual_seed(1)
    a = pipe(images)
    torch.manual_seed(1)
    assert torch.equal(loaded(images), a)

#----------------------------------------------------------------------------
# ADA controller.

def test_ada_update_raises_p_when_d_overfits_and_lowers_it_otherwise():
    pipe = make_pipe(p=0, **AUGPIPE_SPECS['bgc'])
    step = 25 * 4 / 500                                  # 25 images x 4 iterations per update, ada_kimg 0.5.
    for _ in range(3):                                   # Overfitting: r_t = 0.8 > target 0.6.
        ada_update(pipe.p, rt=0.8, target=0.6, nimg_per_update=25 * 4, ada_kimg=0.5)
    assert abs(float(pipe.p) - 3 * step) < 1e-6
    for _ in range(5):                                   # Not overfitting: r_t = 0 < 0.6.
        ada_update(pipe.p, rt=0.0, target=0.6, nimg_per_update=25 * 4, ada_kimg=0.5)
    assert float(pipe.p) == 0, 'p is clamped at zero'
    with pytest.raises(ValueError, match='ada_update'):
        ada_update(pipe.p, rt=0.5, target=0.6, nimg_per_update=100, ada_kimg=0)

#----------------------------------------------------------------------------

def test_picture_script_runs(tmp_path, monkeypatch):
    """docs/augment_ops.py (which draws docs/augment-ops.png) keeps working, also without Fashion-MNIST."""
    import importlib.util
    from click.testing import CliRunner
    spec = importlib.util.spec_from_file_location('augment_ops', os.path.join(os.path.dirname(__file__), '..', '..', 'docs', 'augment_ops.py'))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, 'FASHION_MNIST', str(tmp_path / 'missing.gz'))
    result = CliRunner().invoke(script.main, ['--out', str(tmp_path / 'ops.png'), '--num', '2'])
    assert result.exit_code == 0, result.output
    assert 'generated shapes' in result.output
    with PIL.Image.open(tmp_path / 'ops.png') as img:
        assert img.size == (96 + 2 * (64 + 4), 22 + 16 * (64 + 4))   # Label column + 2 columns; input + 15 rows.

#----------------------------------------------------------------------------
