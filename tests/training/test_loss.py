"""training.loss.StyleGAN2Loss on tiny networks: phases, statistics names, R1 and path
lengths against direct computations, style mixing, blur, autocast."""

import types

import numpy as np
import pytest
import torch

import dnnlib
from tests.conftest import assert_close
from tests.training.tiny import TINY_D, TINY_FPA
from torch_utils import training_stats
from training.loss import StyleGAN2Loss, gaussian_blur, mode_seeking_term

#----------------------------------------------------------------------------

def _nets(seed=0, num_steps=4):
    torch.manual_seed(seed)
    G = dnnlib.util.construct_class_by_name(**dict(TINY_FPA, num_steps=num_steps), c_dim=0, img_resolution=16, img_channels=3)
    D = dnnlib.util.construct_class_by_name(**TINY_D, c_dim=0, img_resolution=16, img_channels=3)
    return G.train().requires_grad_(False), D.train().requires_grad_(False)

def _batch(G, n=4, seed=1):
    gen = torch.Generator().manual_seed(seed)
    real = torch.rand([n, 3, 16, 16], generator=gen) * 2 - 1
    return real, torch.zeros([n, 0]), torch.randn([n, G.z_dim], generator=gen), torch.zeros([n, 0])

EXPECTED_NAMES = {
    'Gmain': {'Loss/scores/fake', 'Loss/signs/fake', 'Loss/G/loss'},
    'Greg':  {'Loss/pl_penalty', 'Loss/G/reg'},
    'Dmain': {'Loss/scores/fake', 'Loss/signs/fake', 'Loss/scores/real', 'Loss/signs/real', 'Loss/D/loss'},
    'Dreg':  {'Loss/scores/real', 'Loss/signs/real', 'Loss/r1_penalty', 'Loss/D/reg'},
}

@pytest.mark.parametrize('phase', list(EXPECTED_NAMES))
def test_phase_reports_upstream_names_and_trains_only_its_network(phase):
    training_stats.reset()
    G, D = _nets()
    loss = StyleGAN2Loss(device='cpu', G=G, D=D, r1_gamma=1.0, pl_weight=2.0, style_mixing_prob=0.9)
    trained = G if phase.startswith('G') else D
    other = D if trained is G else G
    trained.requires_grad_(True)
    collector = training_stats.Collector(regex='Loss/.*')
    loss.accumulate_gradients(phase, *_batch(G), gain=1, cur_nimg=0)
    collector.update()
    names = {n for n in collector.names() if collector.num(n) > 0 and not n.startswith('Loss/nonfinite/')}
    assert names == EXPECTED_NAMES[phase]
    for name in names:
        assert np.isfinite(collector.mean(name)), name
    grads = [p.grad for p in trained.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), f'{phase}: no gradient reached the trained network'
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in other.parameters()), f'{phase}: the other network received gradients'

def test_r1_penalty_and_gradient_match_direct_computation():
    training_stats.reset()
    G, D = _nets()
    gamma = 3.0
    loss = StyleGAN2Loss(device='cpu', G=G, D=D, r1_gamma=gamma)
    real, real_c, z, c = _batch(G)
    D.requires_grad_(True)
    collector = training_stats.Collector(regex='Loss/r1_penalty')
    loss.accumulate_gradients('Dreg', real, real_c, z, c, gain=16, cur_nimg=0)
    collector.update()
    got_grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in D.parameters()]

    # Direct: penalty_i = ||d D(x_i) / d x_i||^2, loss = mean_i(penalty_i * gamma / 2) * gain.
    for p in D.parameters():
        p.grad = None
    x = real.clone().requires_grad_(True)
    (grad_x,) = torch.autograd.grad(D(x, real_c).sum(), [x], create_graph=True)
    penalty = grad_x.square().sum([1, 2, 3])
    (penalty * gamma / 2).mean().mul(16).backward()
    assert collector.mean('Loss/r1_penalty') == pytest.approx(float(penalty.detach().mean()), rel=1e-5)
    for got, (name, p) in zip(got_grads, D.named_parameters()):
        assert_close(got, torch.zeros_like(p) if p.grad is None else p.grad, rtol=1e-4, atol=1e-7, name=f'R1 gradient of {name}')

def test_only_passes_differentiated_twice_use_the_conv2d_gradfix_function(monkeypatch):
    # R1's D forward and path length's G forward run their convolutions through conv2d_gradfix's
    # Function (a faster second derivative); every other pass through torch's own convolution.
    from networks import stylegan2                                  # pylint: disable=import-outside-toplevel
    from torch_utils.ops import conv2d_gradfix                      # pylint: disable=import-outside-toplevel
    torch.manual_seed(0)
    G = stylegan2.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, channel_base=256, channel_max=32,
                            mapping_kwargs=dict(num_layers=2)).train().requires_grad_(False)
    D = _nets()[1]
    loss = StyleGAN2Loss(device='cpu', G=G, D=D, r1_gamma=1.0, pl_weight=2.0)
    calls = []
    real_apply = conv2d_gradfix._Conv2d.apply
    monkeypatch.setattr(conv2d_gradfix._Conv2d, 'apply', lambda *args: calls.append(1) or real_apply(*args))
    for phase, uses_function in [('Gmain', False), ('Greg', True), ('Dmain', False), ('Dreg', True)]:
        calls.clear()
        (G if phase.startswith('G') else D).requires_grad_(True)
        loss.accumulate_gradients(phase, *_batch(G), gain=1, cur_nimg=0)
        G.requires_grad_(False)
        D.requires_grad_(False)
        assert bool(calls) == uses_function, phase

def test_path_length_mean_matches_direct_computation():
    training_stats.reset()
    G, D = _nets()
    loss = StyleGAN2Loss(device='cpu', G=G, D=D, pl_weight=2.0, pl_batch_shrink=2, pl_decay=0.01)
    real, real_c, z, c = _batch(G)
    G.requires_grad_(True)
    torch.manual_seed(7)
    loss.accumulate_gradients('Greg', real, real_c, z, c, gain=4, cur_nimg=0)

    torch.manual_seed(7)
    ws = G.mapping(z[:2], c[:2]).detach().requires_grad_(True)
    img = G.synthesis(ws)
    noise = torch.randn_like(img) / np.sqrt(16 * 16)
    (grad_ws,) = torch.autograd.grad((img * noise).sum(), [ws])
    lengths = grad_ws.square().sum(2).mean(1).sqrt()
    assert float(loss.pl_mean) == pytest.approx(0.01 * float(lengths.mean()), rel=1e-5)

def test_update_emas_only_in_the_dmain_fake_pass():
    G, D = _nets()
    loss = StyleGAN2Loss(device='cpu', G=G, D=D, r1_gamma=1.0, pl_weight=2.0)
    batch = _batch(G)
    for phase in ('Gmain', 'Greg', 'Dreg'):
        before = G.mapping.w_avg.clone()
        (G if phase.startswith('G') else D).requires_grad_(True)
        loss.accumulate_gradients(phase, *batch, gain=1, cur_nimg=0)
        assert torch.equal(G.mapping.w_avg, before), f'{phase} moved w_avg'
    before = G.mapping.w_avg.clone()
    loss.accumulate_gradients('Dmain', *batch, gain=1, cur_nimg=0)
    assert not torch.equal(G.mapping.w_avg, before), 'Dmain did not advance w_avg'

#----------------------------------------------------------------------------

def test_style_mixing_is_a_capability_of_num_ws():
    one_step = types.SimpleNamespace(num_ws=1)
    assert StyleGAN2Loss(device='cpu', G=one_step, D=None, style_mixing_prob=0.9).style_mixing_prob == 0
    assert StyleGAN2Loss(device='cpu', G=types.SimpleNamespace(num_ws=4), D=None, style_mixing_prob=0.9).style_mixing_prob == 0.9

def test_style_mixing_mixes_painting_steps():
    G, D = _nets(num_steps=8)
    loss = StyleGAN2Loss(device='cpu', G=G, D=D, style_mixing_prob=1.0)
    _real, _real_c, z, c = _batch(G)
    plain = G.mapping(z, c)
    seen_cutoffs = set()
    for seed in range(12):
        torch.manual_seed(seed)
        _img, ws = loss.run_G(z, c)
        same = [bool(torch.equal(ws[:, t], plain[:, t])) for t in range(8)]
        cutoff = same.index(False)
        assert 1 <= cutoff < 8 and all(same[:cutoff]) and not any(same[cutoff:]), same
        seen_cutoffs.add(cutoff)
    assert len(seen_cutoffs) > 2, 'the cutoff should be random'

#----------------------------------------------------------------------------

def test_gaussian_blur_matches_dense_2d_filter():
    """The blur of D's inputs is StyleGAN3's: taps 2^-(t/sigma)^2 for |t| <= floor(3 sigma), as one dense 2-D filter."""
    gen = torch.Generator().manual_seed(0)
    img = torch.randn([2, 3, 12, 12], generator=gen, dtype=torch.float64)
    sigma = 1.3
    radius = int(np.floor(3 * sigma))
    taps = np.arange(-radius, radius + 1)
    f1 = 2.0 ** -((taps / sigma) ** 2)        # StyleGAN3's taps.
    f1 /= f1.sum()
    f2 = torch.tensor(np.outer(f1, f1))
    expected = torch.zeros_like(img)
    padded = torch.nn.functional.pad(img, [radius] * 4)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            expected += f2[dy, dx] * padded[:, :, dy:dy + 12, dx:dx + 12]
    assert_close(gaussian_blur(img, sigma), expected, rtol=1e-6, atol=1e-6, name='blur')
    assert gaussian_blur(img, 0.2) is img

def test_blur_sigma_fades_out():
    loss = StyleGAN2Loss(device='cpu', G=types.SimpleNamespace(num_ws=4), D=None, blur_init_sigma=10, blur_fade_kimg=2)
    assert loss.blur_sigma(0) == 10
    assert loss.blur_sigma(1000) == pytest.approx(5)
    assert loss.blur_sigma(5000) == 0

#----------------------------------------------------------------------------

def test_bf16_autocast_on_cpu():
    training_stats.reset()
    G, D = _nets()
    loss = StyleGAN2Loss(device='cpu', G=G, D=D, r1_gamma=1.0, precision='bf16')
    collector = training_stats.Collector(regex='Loss/.*')
    for phase in ('Gmain', 'Dmain', 'Dreg'):
        (G if phase.startswith('G') else D).requires_grad_(True)
        loss.accumulate_gradients(phase, *_batch(G), gain=1, cur_nimg=0)
    collector.update()
    for name in ('Loss/G/loss', 'Loss/D/loss', 'Loss/r1_penalty'):
        assert np.isfinite(collector.mean(name)), name
    assert all(p.grad is None or (p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()) for p in D.parameters())

def test_fp16_needs_cuda():
    with pytest.raises(ValueError, match='fp16.*CUDA'):
        StyleGAN2Loss(device='cpu', G=types.SimpleNamespace(num_ws=4), D=None, precision='fp16')

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Mode-seeking regularisation (Mao et al. 2019).

def test_mode_seeking_term_against_a_loop():
    gen = torch.Generator().manual_seed(0)
    img, z = torch.randn([7, 3, 5, 5], generator=gen, dtype=torch.float64), torch.randn([7, 6], generator=gen, dtype=torch.float64)
    ratios = [float((img[i] - img[i + 3]).abs().mean() / (z[i] - z[i + 3]).abs().mean()) for i in range(3)]   # Pairs (0,3) (1,4) (2,5); 6 left out.
    expected = 1 / (sum(ratios) / 3 + 1e-5)
    assert float(mode_seeking_term(img, z)) == pytest.approx(expected, rel=1e-12)
    assert float(mode_seeking_term(img[:1].expand(6, -1, -1, -1), z[:6])) == pytest.approx(1e5)   # One image for all: 1/eps.

def test_mode_seeking_pushes_a_collapsed_pair_apart():
    # Two latents giving nearly the same image: the term's gradient moves the images apart.
    img = torch.zeros([2, 1, 2, 2], dtype=torch.float64)
    img[1] += 1e-3
    img.requires_grad_(True)
    z = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    mode_seeking_term(img, z).backward()
    step = img.detach() - 1e-9 * img.grad
    assert float((step[1] - step[0]).abs().mean()) > 1e-3

def test_mode_seeking_in_gmain_adds_its_weighted_term():
    G, D = _nets()
    batch = _batch(G)
    results = {}
    for weight in (0, 0.5):
        training_stats.reset()
        G.requires_grad_(False)
        G.requires_grad_(True)
        for p in G.parameters():
            p.grad = None
        collector = training_stats.Collector(regex='Loss/.*')
        StyleGAN2Loss(device='cpu', G=G, D=D, mode_seeking=weight).accumulate_gradients('Gmain', *batch, gain=1, cur_nimg=0)
        collector.update()
        results[weight] = (collector, [p.grad.clone() for p in G.parameters() if p.grad is not None])
    assert 'Loss/G/mode_seeking' not in {n for n in results[0][0].names() if results[0][0].num(n) > 0}
    term = results[0.5][0].mean('Loss/G/mode_seeking')
    with torch.no_grad():
        img, _ = StyleGAN2Loss(device='cpu', G=G, D=D).run_G(batch[2], batch[3])
    assert term == pytest.approx(float(mode_seeking_term(img, batch[2])), rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(results[0][1], results[0.5][1])), 'the term changed no gradient'
