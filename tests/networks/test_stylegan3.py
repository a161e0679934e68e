"""StyleGAN3 (networks/stylegan3.py) against float64 references written from the paper
(Karras et al., NeurIPS 2021): the filters (Appendix C), the layer schedule (Sec. 3.2,
Appendix F), the input's Fourier features and transforms (Sec. 3.1); upstream's layer names;
the magnitude EMA; the generator with the fast op against the reference op, with derivatives."""

import math

import numpy as np
import pytest
import torch

import networks
from networks import stylegan3
from tests.conftest import assert_close
from tests.ops.naive import check_same_derivatives
from torch_utils.ops import filtered_lrelu

#----------------------------------------------------------------------------
# Filters.

def bessel_i0(x):
    """Modified Bessel function of the first kind, order 0, by its power series."""
    x = np.asarray(x, dtype=np.float64)
    term, total = np.ones_like(x), np.ones_like(x)
    for k in range(1, 60):
        term = term * (x / (2 * k)) ** 2
        total = total + term
    return total

def bessel_j1(x):
    """Bessel function of the first kind, order 1, by Bessel's integral
    J1(x) = 1/pi int_0^pi cos(tau - x sin tau) dtau (midpoint rule; the integrand is smooth
    and periodic, so it converges fast)."""
    tau = (np.arange(4000) + 0.5) * np.pi / 4000
    return np.cos(tau[None, :] - np.asarray(x, dtype=np.float64).reshape(-1, 1) * np.sin(tau[None, :])).mean(axis=1).reshape(np.shape(x))

def kaiser_window(numtaps, width, fs):
    """Kaiser's design rule: attenuation A = 2.285 (N - 1) pi (width / (fs/2)) + 7.95 dB, then
    beta from A, window I0(beta sqrt(1 - (2n/(N-1) - 1)^2)) / I0(beta)."""
    atten = 2.285 * (numtaps - 1) * np.pi * (width / (fs / 2)) + 7.95
    beta = 0.1102 * (atten - 8.7) if atten > 50 else (0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21) if atten > 21 else 0.0)
    n = np.arange(numtaps)
    return bessel_i0(beta * np.sqrt(1 - (2 * n / (numtaps - 1) - 1) ** 2)) / bessel_i0(beta)

def reference_kaiser_lowpass(numtaps, cutoff, width, fs):
    """Windowed sinc: h[n] = (2 fc / fs) sinc(2 fc / fs (n - (N-1)/2)) w[n], unit DC gain."""
    m = np.arange(numtaps) - (numtaps - 1) / 2
    h = 2 * cutoff / fs * np.sinc(2 * cutoff / fs * m) * kaiser_window(numtaps, width, fs)
    return h / h.sum()

def reference_jinc_lowpass(numtaps, cutoff, width, fs):
    """The radial lowpass: the ideal disc's impulse response fc J1(2 pi fc r) / r (a jinc),
    times the separable Kaiser window, unit DC gain."""
    pos = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.sqrt(pos[None, :] ** 2 + pos[:, None] ** 2)
    h = cutoff * bessel_j1(2 * np.pi * cutoff * r) / r
    window = kaiser_window(numtaps, width, fs)
    h = h * np.outer(window, window)
    return h / h.sum()

FILTER_CASES = [ # (numtaps, cutoff, width, fs): StyleGAN3 layers at 256x256 and 1024x1024.
    (12, 2.0, 2 * 2.287, 32),
    (12, 64.0, 2 * 64.0, 512),
    (24, 16.0, 2 * 8.4, 128),
    (12, 362.0, 2 * 150.0, 2048),
]

@pytest.mark.parametrize('case', FILTER_CASES)
def test_kaiser_filter_matches_reference(case):
    f = stylegan3.design_lowpass_filter(*case)
    assert f.dtype == torch.float32 and f.shape == (case[0],)
    assert_close(f, torch.from_numpy(reference_kaiser_lowpass(*case)), rtol=1e-6, atol=1e-7, name=f'kaiser {case}')

@pytest.mark.parametrize('case', FILTER_CASES)
def test_jinc_filter_matches_reference(case):
    f = stylegan3.design_lowpass_filter(*case, radial=True)
    assert f.shape == (case[0], case[0])
    assert_close(f, torch.from_numpy(reference_jinc_lowpass(*case)), rtol=1e-5, atol=1e-7, name=f'jinc {case}')
    assert torch.equal(f, f.t()) and torch.equal(f, f.flip(0)), 'radially symmetric'

def test_kaiser_filter_is_a_lowpass():
    """Gain 1 at DC, about 1 well inside the passband, small beyond the stopband."""
    numtaps, cutoff, width, fs = 24, 16.0, 16.8, 128
    h = stylegan3.design_lowpass_filter(numtaps, cutoff, width, fs).double().numpy()
    n = np.arange(numtaps)
    response = lambda f: abs(np.sum(h * np.exp(-2j * np.pi * f / fs * n)))
    assert abs(response(0) - 1) < 1e-6
    assert abs(response(cutoff / 4) - 1) < 0.02
    assert max(response(f) for f in np.linspace(cutoff + width / 2 + 1, fs / 2, 50)) < 0.02

def test_single_tap_is_the_identity():
    assert stylegan3.design_lowpass_filter(1, 4, 2, 16) is None

#----------------------------------------------------------------------------
# Schedule.

def reference_schedule(img_resolution, num_layers=14, num_critical=2, first_cutoff=2.0, first_stopband=2 ** 2.1, last_stopband_rel=2 ** 0.3):
    """Sec. 3.2 / Fig. 4c, layer by layer: geometric cutoffs and stopbands up to the last
    non-critical layer, then constant; the sampling rate the smallest power of two covering
    twice the stopband (at most the image resolution); half width = max(stopband, rate/2) - cutoff."""
    rows = []
    for i in range(num_layers + 1):
        t = min(i / (num_layers - num_critical), 1.0)
        cutoff = first_cutoff * (img_resolution / 2 / first_cutoff) ** t
        stopband = first_stopband * (img_resolution / 2 * last_stopband_rel / first_stopband) ** t
        rate = 1
        while rate < min(2 * stopband, img_resolution):
            rate *= 2
        rows.append((cutoff, stopband, rate, max(stopband, rate / 2) - cutoff))
    return np.array(rows)

@pytest.mark.parametrize('img_resolution', [16, 256, 1024])
def test_schedule_matches_reference(img_resolution):
    s = stylegan3.layer_schedule(img_resolution, 3, 32768, 512, 14, 2, 2, 2 ** 2.1, 2 ** 0.3, 10)
    expected = reference_schedule(img_resolution)
    for col, name in enumerate(['cutoffs', 'stopbands', 'sampling_rates', 'half_widths']):
        assert_close(torch.from_numpy(s[name]), torch.from_numpy(expected[:, col]), rtol=1e-12, atol=1e-12, name=name)
    assert s['cutoffs'][-1] == img_resolution / 2 and s['sampling_rates'][-1] == img_resolution
    assert (s['sizes'][:-2] == s['sampling_rates'][:-2] + 20).all() and (s['sizes'][-2:] == img_resolution).all()

# Upstream's layer names (their pickles' tensor names) for the standard configurations.
UPSTREAM_LAYER_NAMES = {
    ('t', 256): 'L0_36_512 L1_36_512 L2_36_512 L3_52_512 L4_52_512 L5_84_512 L6_84_512 L7_148_512 L8_148_512 '
                'L9_148_362 L10_276_256 L11_276_181 L12_276_128 L13_256_128 L14_256_3',
    ('t', 1024): 'L0_36_512 L1_36_512 L2_52_512 L3_52_512 L4_84_512 L5_148_512 L6_148_512 L7_276_323 L8_276_203 '
                 'L9_532_128 L10_1044_81 L11_1044_51 L12_1044_32 L13_1024_32 L14_1024_3',
    ('r', 1024): 'L0_36_1024 L1_36_1024 L2_52_1024 L3_52_1024 L4_84_1024 L5_148_1024 L6_148_1024 L7_276_645 '
                 'L8_276_406 L9_532_256 L10_1044_161 L11_1044_102 L12_1044_64 L13_1024_64 L14_1024_3',
}

@pytest.mark.parametrize('config, img_resolution', list(UPSTREAM_LAYER_NAMES))
def test_layer_names_are_upstreams(config, img_resolution):
    scale = 2 if config == 'r' else 1
    with torch.device('meta'): # Names and shapes only, no memory.
        S = stylegan3.SynthesisNetwork(w_dim=512, img_resolution=img_resolution, img_channels=3, channel_base=32768 * scale,
                                       channel_max=512 * scale, conv_kernel=3 if config == 't' else 1, use_radial_filters=config == 'r')
    assert ' '.join(S.layer_names) == UPSTREAM_LAYER_NAMES[(config, img_resolution)]
    layer = getattr(S, S.layer_names[1])
    # pad_total = (36 - 1) * 2 + 1 - (36 + k - 1) * 2 + 12 + 12 - 2, split (total + 2) // 2 before.
    assert layer.padding == ([9, 8, 9, 8] if config == 't' else [11, 10, 11, 10]) and layer.up_taps == layer.down_taps == 12

#----------------------------------------------------------------------------
# Input: Fourier features and transforms.

def _input(seed=0):
    torch.manual_seed(seed)
    return stylegan3.SynthesisInput(w_dim=8, channels=6, size=12, sampling_rate=8, bandwidth=2).double()

def reference_fourier_features(layer, w, image_transform):
    """Directly from the definition: a learned rotation/translation from the affine output
    (r_c, r_s, t_x, t_y) and the user's transform map each pixel centre p to the point q where
    the features are evaluated, feature_c(p) = a_c sin(2 pi (f_c . q + phi_c)), then the
    channel mixing. All transforms are inverse ones (from the output image back to the features)."""
    t = layer.affine(w).detach().numpy()
    out = []
    for n in range(len(w)):
        rc, rs, tx, ty = t[n] / np.hypot(t[n, 0], t[n, 1])
        rotation = np.array([[rc, -rs, 0], [rs, rc, 0], [0, 0, 1]])
        translation = np.array([[1, 0, -tx], [0, 1, -ty], [0, 0, 1]])
        m = rotation @ translation @ image_transform
        width, height = layer.size
        ys, xs = np.meshgrid((np.arange(height) + 0.5 - height / 2) / layer.sampling_rate, (np.arange(width) + 0.5 - width / 2) / layer.sampling_rate, indexing='ij')
        q = np.einsum('ij,jhw->ihw', m, np.stack([xs, ys, np.ones_like(xs)]))[:2]
        freqs, phases = layer.freqs.numpy(), layer.phases.numpy()
        f_out = freqs @ m[:2, :2]
        amp = np.clip(1 - (np.linalg.norm(f_out, axis=1) - layer.bandwidth) / (layer.sampling_rate / 2 - layer.bandwidth), 0, 1)
        feats = amp[:, None, None] * np.sin(2 * np.pi * (np.einsum('cj,jhw->chw', freqs, q) + phases[:, None, None]))
        out.append(np.einsum('dc,chw->dhw', layer.weight.detach().numpy() / np.sqrt(layer.channels), feats))
    return np.stack(out)

def test_fourier_features_match_reference():
    layer = _input()
    with torch.no_grad():
        layer.affine.weight.normal_() # A learned rotation and translation that depend on w.
    w = torch.randn([3, 8], dtype=torch.float64)
    angle = 0.3
    transform = np.array([[math.cos(angle), math.sin(angle), 0.7], [-math.sin(angle), math.cos(angle), -0.2], [0, 0, 1]])
    transform = np.linalg.inv(transform)
    layer.transform.copy_(torch.from_numpy(transform))
    with torch.no_grad():
        actual = layer(w)
    assert actual.shape == (3, 6, 12, 12)
    assert_close(actual, torch.from_numpy(reference_fourier_features(layer, w, transform)), rtol=1e-10, atol=1e-10, name='features')

def test_translation_by_whole_pixels_shifts_the_features():
    """input.transform translating by k / sampling_rate moves every feature map by k pixels."""
    layer = _input()
    w = torch.randn([2, 8], dtype=torch.float64)
    with torch.no_grad():
        base = layer(w)
        layer.transform.copy_(torch.from_numpy(np.linalg.inv(networks.image_transform(translate=(3 / 8, -2 / 8), rotate=0))))
        moved = layer(w)
    assert_close(moved[:, :, :-2, 3:], base[:, :, 2:, :-3], rtol=1e-9, atol=1e-9, name='shifted features') # 3 right, 2 up

def test_rotation_by_90_degrees_rotates_the_features():
    layer = _input()
    w = torch.randn([2, 8], dtype=torch.float64)
    with torch.no_grad():
        base = layer(w)
        layer.transform.copy_(torch.from_numpy(np.linalg.inv(networks.image_transform(translate=(0, 0), rotate=90))))
        rotated = layer(w)
    assert_close(rotated, torch.rot90(base, k=1, dims=(2, 3)), rtol=1e-9, atol=1e-9, name='rotated features')

def test_identity_transform_at_initialisation():
    layer = _input()
    assert torch.equal(layer.transform, torch.eye(3, dtype=torch.float64))
    t = layer.affine(torch.randn([4, 8], dtype=torch.float64))
    assert torch.equal(t, torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64).expand(4, 4))

#----------------------------------------------------------------------------
# The generator.

def _generator(radial=False, seed=0, **kwargs):
    torch.manual_seed(seed)
    extra = dict(conv_kernel=1, use_radial_filters=True) if radial else {}
    return stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=128, channel_max=8,
                               num_layers=4, margin_size=3, magnitude_ema_beta=0.5, **extra, **kwargs)

def test_magnitude_ema_advances_only_with_update_emas():
    G = _generator()
    z = torch.randn([4, 8])
    layer = getattr(G.synthesis, G.synthesis.layer_names[0])
    G(z, None)
    assert float(layer.magnitude_ema) == 1.0
    ws = G.mapping(z, None)
    x = G.synthesis.input(ws[:, 0])
    G(z, None, update_emas=True)
    expected = 0.5 * x.square().mean() + 0.5 * 1.0
    assert_close(layer.magnitude_ema, expected.detach(), rtol=1e-6, atol=0, name='magnitude_ema')

@pytest.mark.parametrize('radial', [False, True], ids=['T', 'R'])
def test_generator_fast_op_equals_reference_op_with_derivatives(radial, monkeypatch):
    """The whole synthesis network in float64 with the fast op and with the reference op:
    same image, same gradient w.r.t. ws, same second derivatives (path-length regularisation)."""
    G = _generator(radial=radial).double().train()
    ws = torch.randn([2, G.num_ws, 8], dtype=torch.float64, requires_grad=True)
    fast = lambda ws: G.synthesis(ws)
    def ref(ws):
        with monkeypatch.context() as m:
            m.setitem(filtered_lrelu._IMPLS, 'fast', filtered_lrelu._IMPLS['ref'])
            return G.synthesis(ws)
    check_same_derivatives(fast, ref, [ws], rtol=1e-9, atol=1e-11, name='synthesis')

def test_radial_config_uses_radial_filters_except_critically_sampled():
    G = _generator(radial=True)
    layers = [getattr(G.synthesis, name) for name in G.synthesis.layer_names]
    for layer in layers[:-1]:
        assert layer.weight.shape[2:] == (1, 1)
        radial = layer.down_filter is not None and layer.down_filter.ndim == 2
        assert radial == (not layer.is_critically_sampled), layer
    assert all(layer.up_filter is None or layer.up_filter.ndim == 1 for layer in layers)

def test_image_transform():
    """Translation in units of the image, rotation in degrees counterclockwise (as gen_images.py)."""
    m = networks.image_transform(translate=(0.25, -0.5), rotate=30)
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    assert np.allclose(m, [[c, s, 0.25], [-s, c, -0.5], [0, 0, 1]])
