"""StyleGAN2 generator and discriminator (networks/stylegan2.py): architecture, fast-vs-reference
paths, sampling options, second derivatives for R1, Freeze-D and bad input."""

import copy

import numpy as np
import pytest
import torch

from networks import stylegan2
from tests.conftest import assert_close
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import bias_act
from torch_utils.ops import conv2d_resample

#----------------------------------------------------------------------------
# Tiny configurations (16x16 generator, 8x8 or 16x16 discriminator).

def _tiny_G(c_dim=0, img_channels=3, seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs = dict(dict(channel_base=256, channel_max=32, mapping_kwargs=dict(num_layers=2)), **kwargs)
    return stylegan2.Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=16, img_channels=img_channels, **kwargs)

def _tiny_D(c_dim=0, img_resolution=16, img_channels=3, seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs = dict(dict(channel_base=128, channel_max=16, mapping_kwargs=dict(num_layers=2)), **kwargs)
    return stylegan2.Discriminator(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels, **kwargs)

def _randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)

def _set_noise_strength(G, value):
    with torch.no_grad():
        for name, param in G.named_parameters():
            if name.endswith('noise_strength'):
                param.fill_(value)

#----------------------------------------------------------------------------
# Architecture: parameter counts of the reference configuration.

def test_parameter_counts_64x64():
    torch.manual_seed(0)
    G = stylegan2.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=64, img_channels=3,
                            mapping_kwargs=dict(num_layers=2), channel_base=16384, channel_max=512)
    D = stylegan2.Discriminator(c_dim=0, img_resolution=64, img_channels=3, channel_base=16384, channel_max=512)
    assert misc.count_params(G) == 22_243_608
    assert misc.count_params(D) == 23_407_361
    assert G.num_ws == G.mapping.num_ws == 10 # 2 * log2(64) - 2
    assert G.mapping.w_avg.shape == (512,)
    assert len([name for name, _ in G.named_buffers() if name.endswith('noise_const')]) == 9 # 1 + 2 per block above 4x4

def test_fp16_layout_of_blocks():
    G = stylegan2.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=64, img_channels=3, channel_base=256, channel_max=8)
    D = stylegan2.Discriminator(c_dim=0, img_resolution=64, img_channels=3, channel_base=256, channel_max=8)
    assert [getattr(G.synthesis, f'b{r}').use_fp16 for r in (4, 8, 16, 32, 64)] == [False, True, True, True, True]
    assert [getattr(D, f'b{r}').use_fp16 for r in (64, 32, 16, 8)] == [True, True, True, True]
    G = stylegan2.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=64, img_channels=3, channel_base=256, channel_max=8, num_fp16_res=2)
    assert [getattr(G.synthesis, f'b{r}').use_fp16 for r in (4, 8, 16, 32, 64)] == [False, False, False, True, True]

#----------------------------------------------------------------------------
# Modulated convolution: the fused (grouped) path equals the non-fused one.

@pytest.mark.parametrize('up', [1, 2])
@pytest.mark.parametrize('demodulate', [True, False])
@pytest.mark.parametrize('with_noise', [True, False])
def test_modulated_conv2d_fused_equals_nonfused(up, demodulate, with_noise):
    N, I, O, R, k = 3, 5, 4, 6, 3
    x = _randn(N, I, R, R, seed=1, dtype=torch.float64).requires_grad_(True)
    weight = _randn(O, I, k, k, seed=2, dtype=torch.float64).requires_grad_(True)
    styles = (_randn(N, I, seed=3, dtype=torch.float64) + 1).requires_grad_(True)
    noise = _randn(N, 1, R * up, R * up, seed=4, dtype=torch.float64) if with_noise else None
    f = torch.tensor([1, 3, 3, 1], dtype=torch.float64)
    f = (f[:, None] * f[None, :]) / f.sum() ** 2
    common = dict(noise=noise, up=up, padding=k // 2, resample_filter=f, demodulate=demodulate, flip_weight=(up == 1))
    results = []
    for fused in (True, False):
        y = stylegan2.modulated_conv2d(x, weight, styles, fused_modconv=fused, **common)
        grads = torch.autograd.grad((y * _randn(*y.shape, seed=5, dtype=torch.float64)).sum(), [x, weight, styles])
        results.append([y, *grads])
    for name, fused, nonfused in zip(['y', 'dx', 'dweight', 'dstyles'], *results):
        assert_close(fused, nonfused, rtol=1e-10, atol=1e-10, name=name)

@pytest.mark.parametrize('up', [1, 2])
def test_modulated_conv2d_matches_per_sample_definition(up):
    # Eq. 1 and 3 taken literally, one sample at a time: w' = s * w, w'' = w' / ||w'||_O.
    N, I, O, R = 3, 4, 5, 5
    x = _randn(N, I, R, R, seed=6, dtype=torch.float64)
    weight = _randn(O, I, 3, 3, seed=7, dtype=torch.float64)
    styles = _randn(N, I, seed=8, dtype=torch.float64) + 1
    f = torch.tensor([1, 3, 3, 1], dtype=torch.float64)
    f = (f[:, None] * f[None, :]) / f.sum() ** 2
    expected = []
    for n in range(N):
        w = weight * styles[n].reshape(1, I, 1, 1)
        w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        expected.append(conv2d_resample.conv2d_resample(x[n:n+1], w, f=f, up=up, padding=1, flip_weight=(up == 1)))
    expected = torch.cat(expected)
    for fused in (True, False):
        y = stylegan2.modulated_conv2d(x, weight, styles, up=up, padding=1, resample_filter=f, flip_weight=(up == 1), fused_modconv=fused)
        assert_close(y, expected, rtol=1e-10, atol=1e-12, name=f'fused={fused}')

@pytest.mark.parametrize('activation', ['lrelu', 'tanh'])
@pytest.mark.parametrize('noise_mode', ['const', 'none'])
def test_synthesis_layer_gain_folding(activation, noise_mode):
    # The layer folds the activation gain into the convolution; compare with the plain order:
    # modulated conv -> + noise -> bias_act(bias, activation, gain, clamp).
    torch.manual_seed(15)
    layer = stylegan2.SynthesisLayer(4, 5, w_dim=6, resolution=8, up=2, activation=activation, conv_clamp=1.5).double()
    with torch.no_grad():
        layer.noise_strength.fill_(0.7)
        layer.bias.copy_(_randn(5, seed=16, dtype=torch.float64))
    x = _randn(3, 4, 4, 4, seed=17, dtype=torch.float64)
    w = _randn(3, 6, seed=18, dtype=torch.float64)
    for fused in (True, False):
        y = layer(x, w, noise_mode=noise_mode, fused_modconv=fused, gain=0.6)
        noise = layer.noise_const * layer.noise_strength if noise_mode == 'const' else None
        expected = stylegan2.modulated_conv2d(x, layer.weight, layer.affine(w), noise=noise, up=2, padding=1,
            resample_filter=layer.resample_filter, flip_weight=False, fused_modconv=fused)
        expected = bias_act.bias_act(expected, layer.bias, act=activation, gain=layer.act_gain * 0.6, clamp=1.5 * 0.6)
        assert (expected.abs() == 1.5 * 0.6).any() or activation == 'tanh', 'the clamp should be active somewhere'
        assert_close(y, expected, rtol=1e-12, atol=1e-12, name=f'{activation} fused={fused}')

def test_synthesis_fused_equals_nonfused_float64():
    G = _tiny_G(seed=3).double()
    _set_noise_strength(G, 0.3)
    ws = G.mapping(_randn(4, 16, seed=1, dtype=torch.float64), None)
    ws = ws + _randn(*ws.shape, seed=2, dtype=torch.float64) # Independent rows, as with style mixing.
    ws = ws.detach().requires_grad_(True)
    outs = []
    for fused in (True, False):
        img = G.synthesis(ws, noise_mode='const', fused_modconv=fused)
        assert img.dtype == torch.float64
        (grad,) = torch.autograd.grad(img.square().sum(), [ws])
        outs.append((img, grad))
    assert_close(outs[0][0], outs[1][0], rtol=1e-9, atol=1e-10, name='image')
    assert_close(outs[0][1], outs[1][1], rtol=1e-9, atol=1e-10, name='d image / d ws')

def test_fused_modconv_default_options():
    z = _randn(2, 16, seed=1)
    imgs = {}
    for default in (True, False, 'inference_only', 'auto'):
        G = _tiny_G(seed=0, fused_modconv_default=default)
        imgs[default] = G(z, None, noise_mode='const')
    assert_close(imgs[True], imgs[False], rtol=1e-4, atol=1e-5, name='fused vs non-fused (float32)')
    assert torch.equal(imgs['inference_only'], imgs[False]), 'inference_only = non-fused in training mode'
    G = _tiny_G(seed=0, fused_modconv_default='inference_only').eval()
    assert torch.equal(G(z, None, noise_mode='const'), imgs[True]), 'inference_only = fused in eval mode'
    assert torch.equal(imgs['auto'], imgs[False]), 'auto = non-fused off CUDA'
    with pytest.raises(ValueError, match="fused_modconv_default='yes'"):
        _tiny_G(fused_modconv_default='yes')

#----------------------------------------------------------------------------
# Sampling options: noise modes, truncation, w_avg tracking, precision.

def test_noise_modes():
    G = _tiny_G(seed=1)
    z = _randn(3, 16, seed=2)
    ws = G.mapping(z, None)
    # With the initial noise strength 0 the noise has no effect.
    assert torch.equal(G.synthesis(ws, noise_mode='none'), G.synthesis(ws, noise_mode='random'))
    _set_noise_strength(G, 0.5)
    const_a = G.synthesis(ws, noise_mode='const')
    const_b = G.synthesis(ws, noise_mode='const')
    assert torch.equal(const_a, const_b), 'noise_mode=const must be deterministic'
    torch.manual_seed(0)
    random_a = G.synthesis(ws, noise_mode='random')
    random_b = G.synthesis(ws, noise_mode='random')
    torch.manual_seed(0)
    assert torch.equal(G.synthesis(ws, noise_mode='random'), random_a), 'random noise follows the torch seed'
    assert not torch.allclose(random_a, random_b, atol=1e-4), 'noise_mode=random must draw fresh noise'
    none = G.synthesis(ws, noise_mode='none')
    assert not torch.allclose(none, const_a, atol=1e-4)
    assert not torch.allclose(none, random_a, atol=1e-4)
    # The constant noise lives in buffers named noise_const (projector/PPL look for them).
    with torch.no_grad():
        for name, buf in G.named_buffers():
            if name.endswith('noise_const'):
                buf.zero_()
    assert torch.equal(G.synthesis(ws, noise_mode='const'), none)
    with pytest.raises(ValueError, match='noise_mode="bogus"'):
        G.synthesis(ws, noise_mode='bogus')

def test_truncation_and_cutoff():
    G = _tiny_G(seed=2)
    with torch.no_grad():
        G.mapping.w_avg.copy_(_randn(16, seed=9))
    z = _randn(3, 16, seed=3)
    ws = G.mapping(z, None)
    assert torch.equal(ws[:, 0], ws[:, -1]), 'mapping broadcasts one w to every layer'
    ws_half = G.mapping(z, None, truncation_psi=0.5)
    assert_close(ws_half, G.mapping.w_avg + 0.5 * (ws - G.mapping.w_avg), rtol=1e-6, atol=1e-6, name='psi=0.5')
    ws_cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=3)
    assert torch.equal(ws_cut[:, :3], ws_half[:, :3])
    assert torch.equal(ws_cut[:, 3:], ws[:, 3:])
    assert torch.equal(G(z, None, truncation_psi=0.5, noise_mode='const'), G.synthesis(ws_half, noise_mode='const'))

def test_w_avg_tracking():
    G = _tiny_G(seed=4)
    z = _randn(5, 16, seed=4)
    G.mapping(z, None)
    G(z, None)
    assert torch.equal(G.mapping.w_avg, torch.zeros(16)), 'w_avg must not move without update_emas'
    ws = G.mapping(z, None)
    G(z, None, update_emas=True)
    beta = G.mapping.w_avg_beta
    assert_close(G.mapping.w_avg, (1 - beta) * ws[:, 0].mean(dim=0), rtol=1e-5, atol=1e-7, name='w_avg after one update')

def test_fp32_on_cpu_and_force_fp32():
    G = _tiny_G(seed=5, num_fp16_res=4, conv_clamp=256)
    z = _randn(2, 16, seed=5)
    img = G(z, None, noise_mode='const')
    assert img.dtype == torch.float32
    assert torch.equal(img, G(z, None, noise_mode='const', force_fp32=True)), 'on CPU everything runs in fp32'
    D = _tiny_D(seed=5)
    logits = D(img, None)
    assert logits.dtype == torch.float32
    assert torch.equal(logits, D(img, None, force_fp32=True))

def test_bfloat16_autocast_outputs_float32():
    G = _tiny_G(seed=6)
    D = _tiny_D(seed=6)
    z = _randn(4, 16, seed=6)
    ref = G(z, None, noise_mode='const')
    with torch.autocast('cpu', dtype=torch.bfloat16):
        img = G(z, None, noise_mode='const')
        logits = D(img, None)
    assert img.dtype == torch.float32 and logits.dtype == torch.float32
    assert logits.shape == (4, 1)
    # bf16 has 8 mantissa bits: the images agree to a few percent of their range.
    assert (img - ref).abs().max() < 0.1 * ref.abs().max()

def test_autocast_blocks_pass_features_in_the_autocast_dtype():
    # Under autocast a block's layers get the previous block's bf16 features as they are: a
    # float32 copy in between (which the next convolution casts straight back) cost time only.
    G = _tiny_G(seed=6)
    D = _tiny_D(seed=6)
    seen = []
    hooks = [layer.register_forward_pre_hook(lambda _module, args: seen.append(args[0].dtype))
             for layer in [G.synthesis.b8.conv0, D.b8.conv0]]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        D(G(_randn(4, 16, seed=6), None), None)
    for hook in hooks:
        hook.remove()
    assert seen == [torch.bfloat16, torch.bfloat16]

@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
def test_architectures(architecture):
    G = _tiny_G(seed=7, architecture=architecture)
    D = _tiny_D(seed=7, architecture=architecture)
    z = _randn(4, 16, seed=7)
    img = G(z, None)
    assert img.shape == (4, 3, 16, 16) and img.dtype == torch.float32
    assert D(img, None).shape == (4, 1)
    assert hasattr(G.synthesis.b16, 'skip') == (architecture == 'resnet')
    assert hasattr(G.synthesis.b8, 'torgb') == (architecture == 'skip')

#----------------------------------------------------------------------------
# Discriminator.

def test_discriminator_output_and_conditioning():
    D = _tiny_D(c_dim=3, seed=8)
    img = _randn(4, 3, 16, 16, seed=8)
    c = torch.eye(3)[[0, 1, 2, 0]]
    logits = D(img, c)
    assert logits.shape == (4, 1) and logits.dtype == torch.float32
    assert D.cmap_dim == 16 and D.mapping.num_layers == 2
    other = D(img, c.roll(1, dims=1))
    assert not torch.allclose(logits, other, atol=1e-5), 'the label must change the logits'
    # Projection: logits are <out, cmap> / sqrt(cmap_dim) with out independent of c.
    out = {}
    D.b4.out.register_forward_hook(lambda mod, inp, outp: out.setdefault('out', outp))
    logits = D(img, c)
    cmap = D.mapping(None, c)
    assert_close(logits, (out['out'] * cmap).sum(dim=1, keepdim=True) / np.sqrt(16), rtol=1e-5, atol=1e-6, name='projection')

def test_minibatch_std_groups():
    layer = stylegan2.MinibatchStdLayer(group_size=2, num_channels=1)
    x = _randn(4, 3, 2, 2, seed=9, dtype=torch.float64)
    y = layer(x)
    assert y.shape == (4, 4, 2, 2)
    assert torch.equal(y[:, :3], x)
    # Sample n is in group n % (N / G): samples {0, 2} and {1, 3}.
    for members in ([0, 2], [1, 3]):
        expected = x[members].std(dim=0, unbiased=False).mean()
        for n in members:
            assert_close(y[n, 3], expected.expand(2, 2), rtol=1e-6, atol=1e-9, name=f'mbstd of sample {n}')
    D = _tiny_D(seed=9)
    with pytest.raises(ValueError, match='batch size 6 is not divisible by mbstd_group_size=4'):
        D(_randn(6, 3, 16, 16, seed=9), None)
    assert D(_randn(3, 3, 16, 16, seed=9), None).shape == (3, 1), 'a batch smaller than the group is one group'

def _r1_penalty(D, img, c=None):
    logits = D(img, c)
    (grad,) = torch.autograd.grad(logits.sum(), [img], create_graph=True)
    return grad.square().sum(dim=[1, 2, 3]).mean()

def test_r1_double_backward_runs():
    D = _tiny_D(seed=10, c_dim=2)
    img = _randn(4, 3, 16, 16, seed=10).requires_grad_(True)
    c = torch.eye(2)[[0, 1, 0, 1]]
    penalty = _r1_penalty(D, img, c)
    penalty.backward()
    # Every parameter but the output bias (a constant offset of the logits) gets an R1 gradient.
    missing = [name for name, p in D.named_parameters() if p.grad is None]
    assert missing == ['b4.out.bias'], missing
    grads = [p.grad for p in D.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0

def test_r1_gradients_match_finite_differences():
    # Float64, tiny: gradcheck compares d(R1)/d(img) and d(R1)/d(weight), both of which need
    # the second derivative of D, with central differences.
    D = _tiny_D(seed=11, img_resolution=8, img_channels=1, channel_base=32, channel_max=2, mbstd_group_size=2, c_dim=2).double()
    D.requires_grad_(False)
    img = (_randn(2, 1, 8, 8, seed=11, dtype=torch.float64) * 0.5).requires_grad_(True)
    c = torch.eye(2, dtype=torch.float64)
    weight = D.b8.conv1.weight.detach().clone().requires_grad_(True)
    names = dict(D.named_parameters())
    def penalty(img, weight):
        params = dict(names, **{'b8.conv1.weight': weight})
        logits = torch.func.functional_call(D, params, (img, c))
        (grad,) = torch.autograd.grad(logits.sum(), [img], create_graph=True)
        return grad.square().sum()
    # fast_mode: compares random projections of the Jacobian (full mode takes 10+ s here).
    assert torch.autograd.gradcheck(penalty, (img, weight), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)

def test_freeze_d():
    D = _tiny_D(seed=12, freeze_layers=2)
    frozen = ['b16.fromrgb.weight', 'b16.fromrgb.bias', 'b16.conv0.weight', 'b16.conv0.bias']
    trainable = dict(D.named_parameters())
    assert not any(name in trainable for name in frozen), 'frozen layers hold buffers, not parameters'
    assert 'b16.conv1.weight' in trainable and 'b16.skip.weight' in trainable
    state = D.state_dict()
    assert all(name in state for name in frozen), 'frozen weights are still saved and loaded'
    before = copy.deepcopy(state)
    D.requires_grad_(True) # What the training loop does; must not unfreeze anything.
    opt = torch.optim.Adam(D.parameters(), lr=0.1)
    img = _randn(4, 3, 16, 16, seed=12).requires_grad_(True)
    loss = torch.nn.functional.softplus(D(img, None)).mean() + _r1_penalty(D, img)
    loss.backward()
    opt.step()
    after = D.state_dict()
    for name in frozen:
        assert torch.equal(after[name], before[name]), f'{name} changed although frozen'
    assert not torch.equal(after['b16.conv1.weight'], before['b16.conv1.weight'])
    # Same layer numbering across blocks: 4 layers per resnet block (fromrgb, conv0, conv1, skip).
    D = _tiny_D(seed=12, freeze_layers=5)
    assert 'b8.conv0.weight' not in dict(D.named_parameters()) and 'b8.conv1.weight' in dict(D.named_parameters())

def test_discriminator_save_load_round_trip(tmp_path):
    D = _tiny_D(c_dim=2, seed=13, freeze_layers=1)
    img = _randn(4, 3, 16, 16, seed=13)
    c = torch.eye(2)[[0, 1, 1, 0]]
    path = str(tmp_path / 'd.pkl')
    persistence.save_network(path, D=D)
    loaded = persistence.network_from_data(persistence.load_plain_data(path, path, 'network file'), path).D   # No G_ema: below networks.load_network.
    assert type(loaded) is stylegan2.Discriminator
    assert torch.equal(loaded(img, c), D(img, c))

#----------------------------------------------------------------------------
# Bad input: one ValueError naming the value.

@pytest.mark.parametrize('resolution', [0, 2, 24, 100])
def test_bad_resolution(resolution):
    with pytest.raises(ValueError, match=f'img_resolution={resolution}, expected a power of two'):
        stylegan2.Generator(z_dim=4, c_dim=0, w_dim=4, img_resolution=resolution, img_channels=3)
    with pytest.raises(ValueError, match=f'img_resolution={resolution}, expected a power of two'):
        stylegan2.Discriminator(c_dim=0, img_resolution=resolution, img_channels=3)

def test_bad_labels_and_latents():
    G = _tiny_G(c_dim=0)
    z = _randn(2, 16, seed=1)
    with pytest.raises(ValueError, match=r'c has shape \[2, 3\], but the network is unconditional \(c_dim=0\)'):
        G(z, torch.ones(2, 3))
    with pytest.raises(ValueError, match=r'z has shape \[2, 15\], expected \[N, 16\]'):
        G(z[:, :15], None)
    with pytest.raises(ValueError, match=r'z has shape \[32\], expected \[N, 16\]'):
        G(z.flatten(), None)
    Gc = _tiny_G(c_dim=3)
    with pytest.raises(ValueError, match=r'c is None, expected labels of shape \[2, 3\] \(c_dim=3\)'):
        Gc(z, None)
    with pytest.raises(ValueError, match=r'c is \[2, 2\], expected labels of shape \[2, 3\]'):
        Gc(z, torch.ones(2, 2))
    D = _tiny_D(c_dim=0)
    img = _randn(4, 3, 16, 16)
    with pytest.raises(ValueError, match=r'Discriminator: c has shape \[4, 3\], but the network is unconditional'):
        D(img, torch.ones(4, 3))
    with pytest.raises(ValueError, match=r'Discriminator: img has shape \[4, 3, 8, 8\], expected \[N, 3, 16, 16\]'):
        D(img[:, :, :8, :8], None)
    Dc = _tiny_D(c_dim=3)
    with pytest.raises(ValueError, match=r'Discriminator: c is None, expected labels of shape \[4, 3\]'):
        Dc(img, None)
    with pytest.raises(ValueError, match='pass mbstd_group_size as a Discriminator argument'):
        stylegan2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, epilogue_kwargs=dict(mbstd_group_size=2))

#----------------------------------------------------------------------------
# CUDA: the fp16 blocks with clamping stay close to fp32 (run on the GPU machine).

@pytest.mark.gpu
def test_fp16_on_cuda_close_to_fp32():
    device = torch.device('cuda')
    G = _tiny_G(seed=14, num_fp16_res=2, conv_clamp=256).to(device)
    D = _tiny_D(seed=14, num_fp16_res=2, conv_clamp=256).to(device)
    z = _randn(4, 16, seed=14).to(device)
    img16 = G(z, None, noise_mode='const')
    img32 = G(z, None, noise_mode='const', force_fp32=True)
    assert img16.dtype == torch.float32
    assert_close(img16, img32, rtol=0, atol=0.05 * float(img32.abs().max()), name='fp16 vs fp32 image')
    img = img32.detach().requires_grad_(True)
    logits16 = D(img, None)
    assert logits16.dtype == torch.float32
    assert_close(logits16, D(img, None, force_fp32=True), rtol=0.05, atol=0.05, name='fp16 vs fp32 logits')
    _r1_penalty(D, img).backward()

#----------------------------------------------------------------------------

@pytest.mark.parametrize('net', ['G', 'D'])
def test_generator_and_discriminator_trace_as_one_graph_for_torch_compile(net):
    # What compiling the G/D steps needs: no graph break (conv2d_gradfix's switch is a plain
    # global; upfirdn2d's filter lookups become constants of the graph; the residual gain is a
    # Python float). R1 and path length are not compiled (no double backward through compiled
    # graphs), so the Function is not traced here.
    import torch._dynamo                                            # pylint: disable=import-outside-toplevel
    module = _tiny_G(seed=8).train() if net == 'G' else _tiny_D(seed=8, architecture='resnet')
    args = (_randn(4, 16, seed=8), None) if net == 'G' else (_randn(4, 3, 16, 16, seed=8), None)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        explanation = torch._dynamo.explain(module)(*args)
    assert explanation.graph_break_count == 0, [str(reason.reason)[:200] for reason in explanation.break_reasons]
    assert explanation.graph_count == 1

@pytest.mark.filterwarnings('ignore:`torch.jit.script_method` is deprecated:DeprecationWarning')   # (inductor's own use.)
def test_compiled_discriminator_equals_eager():
    # Tracing is not compiling: D compiled by inductor (the filter matrices built inside the
    # graph) gives eager's logits and gradients. About 20 s of compilation on one CPU thread.
    D = _tiny_D(seed=9, architecture='resnet')
    img = _randn(4, 3, 16, 16, seed=9)
    results = []
    for module in (D, torch.compile(D)):
        D.zero_grad(set_to_none=True)
        logits = module(img, None)
        torch.nn.functional.softplus(logits).sum().backward()
        results.append([logits.detach()] + [p.grad.clone() for p in D.parameters()])
    for i, (eager, compiled) in enumerate(zip(*results)):
        assert_close(compiled, eager, rtol=1e-4, atol=1e-5, name=f'tensor {i}')
