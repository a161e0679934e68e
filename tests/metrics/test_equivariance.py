"""The equivariance metrics (EQ-T, EQ-T_frac, EQ-R): the resampling ops against float64
references written from their formulas and against exact transforms, the metric's value for
generators whose equivariance is known (a band-limited function of the transformed input
coordinates, and one whose brightness changes with the transform), and the one-line refusal
for generators without an input transform (calc_metric, check_metric, train.py's preflight)."""

import os

import numpy as np
import pytest
import scipy.signal
import torch
from click.testing import CliRunner

from metrics import equivariance, metric_main
from tests.networks import test_contract

#----------------------------------------------------------------------------
# Generators with an input transform, built here.

class _Mapping(torch.nn.Module):
    def __init__(self, z_dim):
        super().__init__()
        self.register_buffer('w_avg', torch.zeros([z_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        return z[:, None, :]

class _Input(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer('transform', torch.eye(3))

def pixel_coords(res: int) -> torch.Tensor:
    """[res, res, 3] homogeneous (x, y, 1) of the pixel centres, in image widths about the centre."""
    t = (torch.arange(res, dtype=torch.float64) + 0.5) / res - 0.5
    y, x = torch.meshgrid(t, t, indexing='ij')
    return torch.stack([x, y, torch.ones_like(x)], dim=-1)

class WaveSynthesis(torch.nn.Module):
    """Renders sum_k a_k(w) sin(2 pi (f_k . (M p)) + phi_k(w)) at every pixel centre p, with
    frequencies |f_k| <= `max_freq` cycles per image width: a band-limited function of the
    transformed coordinates, so exactly equivariant to every translation and rotation."""
    def __init__(self, z_dim, res, channels, max_freq, num_waves=6):
        super().__init__()
        self.input = _Input()
        self.res, self.channels = res, channels
        gen = torch.Generator().manual_seed(1)
        radius = torch.rand([num_waves], generator=gen, dtype=torch.float64) * max_freq
        angle = torch.rand([num_waves], generator=gen, dtype=torch.float64) * 2 * np.pi
        self.register_buffer('freqs', torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1))   # [K, 2]
        self.register_buffer('amp', torch.randn([z_dim, channels, num_waves], generator=gen, dtype=torch.float64) / (z_dim * num_waves) ** 0.5)
        self.register_buffer('phase', torch.randn([z_dim, num_waves], generator=gen, dtype=torch.float64))

    def forward(self, ws, noise_mode='const', **_kwargs):
        w = ws[:, 0].to(torch.float64)                                          # [N, z_dim]
        coords = pixel_coords(self.res) @ self.input.transform.to(torch.float64).T  # [H, W, 3]: M p.
        arg = 2 * np.pi * coords[..., :2] @ self.freqs.T                         # [H, W, K]
        waves = torch.sin(arg[None] + (w @ self.phase)[:, None, None, :])        # [N, H, W, K]
        img = torch.einsum('nhwk,nck->nchw', waves, torch.einsum('nz,zck->nck', w, self.amp))
        return img.to(torch.float32)

class SwitchSynthesis(torch.nn.Module):
    """A constant image of value `base` with the identity transform and `base + step` with any
    other: every equivariance PSNR is then 20 log10(2 / step) dB."""
    def __init__(self, res, channels, base, step):
        super().__init__()
        self.input = _Input()
        self.res, self.channels, self.base, self.step = res, channels, base, step

    def forward(self, ws, noise_mode='const', **_kwargs):
        value = self.base if torch.equal(self.input.transform, torch.eye(3)) else self.base + self.step
        return torch.full([ws.shape[0], self.channels, self.res, self.res], value, dtype=torch.float32)

class ToyGenerator(torch.nn.Module):
    def __init__(self, synthesis, z_dim=8):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, 0, z_dim, 1
        self.img_resolution, self.img_channels = synthesis.res, synthesis.channels
        self.mapping = _Mapping(z_dim)
        self.synthesis = synthesis

    def forward(self, z, c, **kwargs):
        return self.synthesis(self.mapping(z, c), **kwargs)

def eq_metric(G, name, seed=0, num_gpus=1, rank=0):
    return metric_main.calc_metric(name, G=G, dataset_kwargs={}, device='cpu', seed=seed, num_gpus=num_gpus, rank=rank).results[name]

for _kind, _name, _num in (('int', 'eqt_int_test', 8), ('frac', 'eqt_frac_test', 8), ('rot', 'eqr_test', 8), ('frac', 'eqt_frac_test12', 12)):
    if not metric_main.is_valid_metric(_name):
        metric_main.register_metric(_name, metric_main.eq, (), scores='network', input_transform=True, num_samples=_num, kind=_kind)

#----------------------------------------------------------------------------
# The ops against float64 references from their formulas.

def lanczos(u: np.ndarray, a: int) -> np.ndarray:
    return np.where(np.abs(u) < a, np.sinc(u) * np.sinc(u / a), 0.0)

def fractional_translation_reference(x: np.ndarray, sx: float, sy: float, a: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """out[p] = sum_n x[n] L(p - s - n) / sum_k L(k - frac(s)) per axis, as matrices; the mask
    keeps p whose taps n = p - floor(s) - k, k = -(a-1)..a, all lie in the image."""
    H, W = x.shape[-2:]
    def matrix(size, s):
        p, n = np.arange(size)[:, None], np.arange(size)[None, :]
        norm = lanczos(np.arange(-(a - 1), a + 1) - (s - np.floor(s)), a).sum()
        valid = (np.arange(size) - np.floor(s) + (a - 1) <= size - 1) & (np.arange(size) - np.floor(s) - a >= 0)
        return lanczos(p - s - n, a) / norm, valid
    (mx, vx), (my, vy) = matrix(W, sx), matrix(H, sy)
    return my @ x @ mx.T, (vy[:, None] & vx[None, :]).astype(np.float64)

@pytest.mark.parametrize('tx,ty', [(0.1, -0.07), (-0.125, 0.031), (3 / 16, -2 / 16), (0.0, 0.0), (0.9, 0.2)])
def test_fractional_translation_matches_reference(tx, ty):
    x = torch.randn([2, 3, 16, 16], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out, mask = equivariance.translate_fractional(x.float(), tx, ty)
    ref, ref_mask = fractional_translation_reference(x.numpy(), tx * 16, ty * 16)
    np.testing.assert_allclose(out.double().numpy(), np.broadcast_to(ref, out.shape), atol=2e-6)
    np.testing.assert_array_equal(mask.numpy(), np.broadcast_to(ref_mask, mask.shape))

def test_integer_translation_moves_content_exactly():
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(1, 2, 8, 8)
    out, mask = equivariance.translate_integer(x, 2 / 8, -1 / 8)      # 2 pixels right, 1 up.
    assert torch.equal(out[:, :, :-1, 2:], x[:, :, 1:, :-2]) and out[:, :, -1].abs().sum() == 0 and out[:, :, :, :2].abs().sum() == 0
    assert mask.sum() == 2 * 7 * 6 and torch.equal(mask[:, :, :-1, 2:], torch.ones_like(mask[:, :, :-1, 2:]))
    assert equivariance.translate_integer(x, 1.0, 0)[1].sum() == 0     # Moved out of the image: nothing left.

def circular_convolution_reference(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """out[i] = sum_k u[k] v[i - k] on a grid of odd size centred at its middle, indices mod size."""
    n = u.shape[0]
    c = n // 2
    out = np.zeros_like(u)
    for ky in range(n):
        for kx in range(n):
            if u[ky, kx] != 0:
                out += u[ky, kx] * np.roll(v, (ky - c, kx - c), axis=(0, 1))
    return out

def bandlimit_filter_reference(mat: np.ndarray, a: int, amax: int, up: int, aflt: int) -> np.ndarray:
    n = aflt * up
    t = np.arange(-(n - 1), n) / up
    yi, xi = np.meshgrid(t, t, indexing='ij')
    xo, yo = mat[0, 0] * xi + mat[0, 1] * yi, mat[1, 0] * xi + mat[1, 1] * yi
    window = lambda u: np.where(np.abs(u) < a, np.sinc(u / a), 0.0)
    f = circular_convolution_reference(np.sinc(xi) * np.sinc(yi), np.sinc(xo) * np.sinc(yo))
    f = f * circular_convolution_reference(window(xi) * window(yi), window(xo) * window(yo))
    half = amax * up - 1
    f = f[n - 1 - half : n + half, n - 1 - half : n + half]
    for ry in range(up):            # Each polyphase component sums to 1 / up^2.
        for rx in range(up):
            f[ry::up, rx::up] /= f[ry::up, rx::up].sum() * up ** 2
    return f

@pytest.mark.parametrize('angle', [0.4, -2.2])
def test_bandlimit_filter_matches_reference(angle):
    mat = equivariance.rotation_matrix(angle)
    ours = equivariance.bandlimit_filter(mat, a=2, amax=3, up=2, aflt=6).double().numpy()
    ref = bandlimit_filter_reference(mat.double().numpy(), a=2, amax=3, up=2, aflt=6)
    assert ours.shape == ref.shape == (11, 11)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)
    full = equivariance.bandlimit_filter(mat, a=3, amax=6, up=4)     # The metric's filter: 47 x 47, every phase sums to 1/16.
    assert full.shape == (47, 47)
    np.testing.assert_allclose(torch.nn.functional.pad(full, [0, 1, 0, 1]).reshape(12, 4, 12, 4).sum(dim=[0, 2]), 1 / 16, rtol=1e-5)

def rotation_reference(x: np.ndarray, angle: float, up: int = 4, a: int = 3) -> np.ndarray:
    """float64 [H, W] from the definition: insert up - 1 zeros between the samples (input pixel n
    at fine position up (n + 1/2)), convolve with up^2 times the band-limit filter, and read the
    result bilinearly at the rotated pixel centres s = c + R (p - c), R = inverse(rotation_matrix(angle))."""
    H, W = x.shape
    mat = equivariance.rotation_matrix(angle)
    f = equivariance.bandlimit_filter(mat, a=a, amax=2 * a, up=up).double().numpy()
    p = f.shape[0] // 2
    pad = p + up                        # Fine positions k/up for k in [-pad, up W + pad).
    fine = np.zeros([up * H + 2 * pad, up * W + 2 * pad])
    fine[pad + up // 2 : pad + up * H : up, pad + up // 2 : pad + up * W : up] = x
    y = scipy.signal.convolve2d(fine, f * up ** 2, mode='same')
    R = np.linalg.inv(mat.double().numpy())[:2, :2]
    out = np.zeros([H, W])
    for r in range(H):
        for c in range(W):
            sx, sy = R @ np.array([c + 0.5 - W / 2, r + 0.5 - H / 2]) + np.array([W / 2, H / 2])
            kx, ky = sx * up + pad, sy * up + pad           # Fine array coordinates.
            x0, y0 = int(np.floor(kx)), int(np.floor(ky))
            fx, fy = kx - x0, ky - y0
            out[r, c] = ((1 - fy) * ((1 - fx) * y[y0, x0] + fx * y[y0, x0 + 1])
                         + fy * ((1 - fx) * y[y0 + 1, x0] + fx * y[y0 + 1, x0 + 1]))
    return out

@pytest.mark.parametrize('angle', [0.3, -2.0, np.pi / 2])
def test_rotation_matches_reference(angle):
    x = torch.randn([1, 1, 24, 24], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out, mask = equivariance.rotate_fractional(x.float(), angle)
    ref = rotation_reference(x[0, 0].numpy(), angle)
    assert 40 < mask.sum() <= 12 * 12       # (The valid region ends 6 pixels from the border: 2p + 1 fine samples.)
    np.testing.assert_allclose((out[0, 0].double() * mask[0, 0]).numpy(), ref * mask[0, 0].numpy(), atol=1e-5)
    pseudo, pseudo_mask = equivariance.pseudo_rotate(x.float(), angle)
    f = equivariance.bandlimit_filter(equivariance.rotation_matrix(-angle), a=3, amax=6, up=1).double().numpy()
    np.testing.assert_allclose(pseudo[0, 0].double().numpy(), scipy.signal.convolve2d(x[0, 0].numpy(), f, mode='same'), atol=1e-5)
    assert pseudo_mask[0, 0, 5:-5, 5:-5].all() and pseudo_mask.sum() == 14 * 14

def test_rotation_by_90_degrees_is_rot90_for_smooth_images():
    G = ToyGenerator(WaveSynthesis(8, 32, 1, max_freq=4))
    x = G(torch.randn([2, 8], generator=torch.Generator().manual_seed(0)), None)
    out, mask = equivariance.rotate_fractional(x, np.pi / 2)
    err = ((out - torch.rot90(x, 1, dims=(2, 3))) * mask).square().sum() / mask.sum()
    assert mask.mean() > 0.2 and err < 1e-5 * x.square().mean()

#----------------------------------------------------------------------------
# The metric's value for generators whose equivariance is known.

def test_equivariant_generator_scores_high():
    G = ToyGenerator(WaveSynthesis(8, 32, 3, max_freq=4))
    assert eq_metric(G, 'eqt_int_test') > 100      # Exact up to float32 rounding (measured: inf).
    assert eq_metric(G, 'eqt_frac_test') > 55      # The Lanczos-3 interpolation error only (measured: 59.1 dB).
    assert eq_metric(G, 'eqr_test') > 65           # Both sides band-limited alike (measured: 73.2 dB).

@pytest.mark.parametrize('name', ['eqt_int_test', 'eqt_frac_test', 'eqr_test'])
def test_brightness_changing_generator_scores_the_hand_computed_psnr(name):
    G = ToyGenerator(SwitchSynthesis(16, 3, base=0.1, step=0.2))
    assert abs(eq_metric(G, name) - 20 * np.log10(2 / 0.2)) < 1e-4      # MSE = 0.2^2 wherever the mask is set: 20 dB.

def test_translation_ignoring_generator_scores_the_hand_computed_psnr():
    """A ramp that ignores the transform: translated by d pixels, the reference differs from it
    by slope * d everywhere in the mask, so MSE = slope^2 * sum_g d_g^2 n_g / sum_g n_g."""
    class Ramp(SwitchSynthesis):
        def forward(self, ws, noise_mode='const', **_kwargs):
            return (pixel_coords(self.res)[..., 0] * self.res * self.step).float().expand(ws.shape[0], self.channels, -1, -1)
    res, slope = 16, 0.01
    G = ToyGenerator(Ramp(res, 1, 0, slope))
    sq_err = count = 0
    for group in range(2):     # The metric's transforms: 2 groups of 4 samples, RNG seeded by (seed, group).
        t = np.round(np.random.default_rng([0, group, 0xE0]).uniform(-0.125, 0.125, size=2) * res)
        n = (res - abs(t[0])) * (res - abs(t[1])) * 4
        sq_err, count = sq_err + (slope * t[0]) ** 2 * n, count + n
    assert abs(eq_metric(G, 'eqt_int_test') - 10 * np.log10(4 / (sq_err / count))) < 1e-3

def test_seeded():
    G = ToyGenerator(WaveSynthesis(8, 16, 3, max_freq=3))
    assert eq_metric(G, 'eqt_frac_test', seed=3) == eq_metric(G, 'eqt_frac_test', seed=3) != eq_metric(G, 'eqt_frac_test', seed=4)

def _two_process_worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    value = eq_metric(ToyGenerator(WaveSynthesis(8, 16, 3, max_freq=3)), 'eqt_frac_test12', num_gpus=2, rank=rank)
    torch.save(value, os.path.join(out_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()

def test_two_processes_equal_one(tmp_path):
    """Three groups of samples over two processes (2 + 1): the same value on both, equal to one
    process's up to the order of the float64 sums."""
    torch.multiprocessing.spawn(_two_process_worker, args=(str(tmp_path / 'init'), str(tmp_path)), nprocs=2)
    one = eq_metric(ToyGenerator(WaveSynthesis(8, 16, 3, max_freq=3)), 'eqt_frac_test12')
    for rank in range(2):
        assert torch.load(tmp_path / f'rank{rank}.pt') == pytest.approx(one, rel=1e-12)

#----------------------------------------------------------------------------
# Generators without an input transform: one line, up front.

def test_registry_names():
    sizes = dict(eqt50k_int=50000, eqt50k_frac=50000, eqr50k=50000, eqt10k_int=10000, eqt5k_frac=5000, eqr2k=2000)
    for name, num_samples in sizes.items():
        assert metric_main.is_valid_metric(name) and metric_main.num_generated(name) == num_samples

@pytest.mark.parametrize('gen', ['fpa', 'stylegan2'])
def test_refused_for_generators_without_input_transform(gen):
    G = test_contract._build(gen, c_dim=0, img_channels=3)
    kind = f'{type(G).__module__}.{type(G).__qualname__}'
    with pytest.raises(ValueError, match=rf'^eqt2k_int is undefined for {kind}: .*G\.synthesis\.input\.transform'):
        metric_main.check_metric('eqt2k_int', G=G)
    with pytest.raises(ValueError, match=f'^eqr_test is undefined for {kind}'):
        eq_metric(G, 'eqr_test')
    metric_main.check_metric('eqr2k', G=ToyGenerator(SwitchSynthesis(16, 3, 0, 1)))     # Accepted with a transform.
    with pytest.raises(ValueError, match='eqr2k scores a generator'):
        metric_main.check_metric('eqr2k', scoring='fakes')

def test_train_refuses_equivariance_metric_before_training(tmp_path):
    import train
    from tests.training.conftest import make_image_folder
    data = make_image_folder(tmp_path / 'data', num_images=4, resolution=32)
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path}/runs', f'--data={data}', '--cfg=fpa', '--device=cpu',
                                             '--metrics=eqt2k_int', '--dry-run'])
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1] == (f'Error: --metrics: {equivariance.no_transform_message("eqt2k_int", _fpa())}'
                                                      '; or train with --metrics=none')
    assert not (tmp_path / 'runs').exists()

def _fpa():
    class Stand:  # Only the class name enters the message.
        pass
    Stand.__module__, Stand.__qualname__ = 'networks.fpa', 'Generator'
    return Stand()

#----------------------------------------------------------------------------
