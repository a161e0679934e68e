"""Fast Weight Painters (networks/fpa.py): painters, their reference twins, the generator."""

import copy
import inspect
import math

import pytest
import torch

import dnnlib
import networks
from networks import fpa
from tests.conftest import assert_close

#----------------------------------------------------------------------------
# Painter inputs: softmax keys, raw values, sigmoid learning rates (as the generator makes them).

def _painter_inputs(B, C, T, N, r, seed=0, dtype=torch.float64, key_softmax=True):
    gen = torch.Generator().manual_seed(seed)
    keys = torch.randn([B, C, T, N], generator=gen, dtype=dtype)
    keys = keys.softmax(dim=-1) if key_softmax else keys / math.sqrt(N)
    values = torch.randn([B, C, T, N], generator=gen, dtype=dtype)
    lrs = torch.randn([B, C, T, r], generator=gen, dtype=dtype).sigmoid()
    return keys.requires_grad_(), values.requires_grad_(), lrs.requires_grad_()

def _grads(painting, inputs, seed=1):
    """Gradients of a random linear function of W and U with respect to `inputs`."""
    gen = torch.Generator().manual_seed(seed)
    gW = torch.randn(painting.W.shape, generator=gen, dtype=painting.W.dtype)
    gU = torch.randn(painting.U.shape, generator=gen, dtype=painting.U.dtype)
    loss = (painting.W * gW).sum() + (painting.U * gU).sum()
    return torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True, materialize_grads=True)

SIZES = [(1, 1, 1, 4), (2, 3, 5, 8), (3, 1, 16, 16), (2, 3, 64, 32), (1, 2, 33, 7)]   # (B, C, T, N)

@pytest.mark.parametrize('B,C,T,N', SIZES)
@pytest.mark.parametrize('vector_lr', [False, True])
@pytest.mark.parametrize('key_softmax', [True, False])
def test_delta_parallel_equals_sequential(B, C, T, N, vector_lr, key_softmax):
    keys, values, lrs = _painter_inputs(B, C, T, N, r=N if vector_lr else 1, seed=B * 1000 + T * 10 + N, key_softmax=key_softmax)
    par = fpa.delta_rule_parallel(keys, values, lrs)
    seq = fpa.delta_rule_sequential(keys, values, lrs)
    assert par.W.shape == (B, C, N, N) and par.U.shape == (B, C, T, N)
    assert_close(par.W, seq.W, rtol=1e-10, atol=1e-10, name='W')
    assert_close(par.U, seq.U, rtol=1e-10, atol=1e-10, name='U')
    for name, g_par, g_seq in zip(['keys', 'values', 'lrs'], _grads(par, (keys, values, lrs)), _grads(seq, (keys, values, lrs))):
        assert_close(g_par, g_seq, rtol=1e-10, atol=1e-10, name=f'd/d{name}')
    assert float(_grads(par, (lrs,))[0][:, :, 0].abs().max()) == 0, 'the first learning rate must not be used'

@pytest.mark.parametrize('vector_lr', [False, True])
def test_delta_parallel_gradcheck(vector_lr):
    keys, values, lrs = _painter_inputs(1, 2, 4, 3, r=3 if vector_lr else 1)
    assert torch.autograd.gradcheck(lambda k, v, b: fpa.delta_rule_parallel(k, v, b)[:2], (keys, values, lrs))
    keys, values, lrs = _painter_inputs(1, 1, 3, 2, r=2 if vector_lr else 1)
    assert torch.autograd.gradgradcheck(lambda k, v, b: fpa.delta_rule_parallel(k, v, b).W, (keys, values, lrs))

def test_delta_first_step_convention_by_hand():
    # Two steps, N = 2, one channel. t = 0: W_0 = v_0 k_0^T whatever beta_0 is.
    # t = 1: u_1 = beta_1 (v_1 - W_0 k_1) = 0.5 ([3, 4] - [0.5, 1.0]) = [1.25, 1.5].
    keys = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=torch.float64).reshape(1, 1, 2, 2)
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64).reshape(1, 1, 2, 2)
    scalar_lr = torch.tensor([0.9, 0.5], dtype=torch.float64).reshape(1, 1, 2, 1)
    vector_lr = torch.tensor([[0.9, 0.1], [0.5, 0.25]], dtype=torch.float64).reshape(1, 1, 2, 2)
    expected_scalar = torch.tensor([[1.625, 0.625], [2.75, 0.75]], dtype=torch.float64)
    expected_vector = torch.tensor([[1.625, 0.625], [2.375, 0.375]], dtype=torch.float64)   # u_1 = [0.5 * 2.5, 0.25 * 3]
    for painter in [fpa.delta_rule_sequential, fpa.delta_rule_parallel]:
        assert_close(painter(keys, values, scalar_lr).W[0, 0], expected_scalar, rtol=0, atol=1e-14, name=painter.__name__)
        assert_close(painter(keys, values, vector_lr).W[0, 0], expected_vector, rtol=0, atol=1e-14, name=painter.__name__)

def test_delta_image_orientation():
    # One step: W = v k^T, value index = row (height), key index = column (width).
    keys = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).reshape(1, 1, 1, 3)
    values = torch.tensor([5.0, 0.0, 0.0], dtype=torch.float64).reshape(1, 1, 1, 3)
    W = fpa.delta_rule_parallel(keys, values, torch.ones(1, 1, 1, 1, dtype=torch.float64)).W[0, 0]
    assert W[0, 1] == 5 and W.abs().sum() == 5

@pytest.mark.parametrize('B,C,T,N', SIZES)
def test_hebbian_matmul_equals_loop(B, C, T, N):
    keys, values, _ = _painter_inputs(B, C, T, N, r=1, seed=T)
    fast, slow = fpa.hebbian_rule(keys, values), fpa.hebbian_rule_sequential(keys, values)
    assert_close(fast.W, slow.W, rtol=1e-12, atol=1e-12, name='W')
    for g_fast, g_slow in zip(_grads(fast, (keys, values)), _grads(slow, (keys, values))):
        assert_close(g_fast, g_slow, rtol=1e-12, atol=1e-12, name='grad')
    assert torch.autograd.gradcheck(lambda k, v: fpa.hebbian_rule(k, v).W, (keys[:1, :1, :3, :3].detach().requires_grad_(), values[:1, :1, :3, :3].detach().requires_grad_()))

def test_oja_by_hand():
    # Two steps, N = 2, by hand with Python floats: the key is softmax'd once more at every step
    # (twice in total at t = 0), the learning rate scales the value at every step.
    def softmax(x):
        e = [math.exp(a) for a in x]
        return [a / sum(e) for a in e]
    k0, k1 = [0.3, 0.7], [0.6, 0.4]
    v0, v1 = [1.0, 2.0], [-1.0, 0.5]
    b0, b1 = 0.5, 0.25
    kk0 = softmax(k0)
    W0 = [[b0 * v0[i] * kk0[j] for j in range(2)] for i in range(2)]
    kk1 = softmax([k1[j] - sum(W0[i][j] * v1[i] for i in range(2)) for j in range(2)])
    W1 = [[W0[i][j] + b1 * v1[i] * kk1[j] for j in range(2)] for i in range(2)]
    t = lambda x: torch.tensor(x, dtype=torch.float64)
    out = fpa.oja_rule_sequential(t([k0, k1]).reshape(1, 1, 2, 2), t([v0, v1]).reshape(1, 1, 2, 2), t([b0, b1]).reshape(1, 1, 2, 1))
    assert_close(out.W[0, 0], t(W1), rtol=0, atol=1e-14, name='W')
    assert_close(out.K[0, 0], t([kk0, kk1]), rtol=0, atol=1e-14, name='written keys')
    assert_close(fpa.outer_sum(out.U, out.K), out.W, rtol=0, atol=1e-14, name='sum of updates')

@pytest.mark.parametrize('key_softmax', [True, False])
@pytest.mark.parametrize('vector_lr', [False, True])
def test_oja_gradcheck(key_softmax, vector_lr):
    keys, values, lrs = _painter_inputs(1, 2, 4, 3, r=3 if vector_lr else 1)
    assert torch.autograd.gradcheck(lambda k, v, b: fpa.oja_rule_sequential(k, v, b, key_softmax=key_softmax)[:3:2], (keys, values, lrs))

@pytest.mark.parametrize('painter', ['delta_parallel', 'delta_sequential', 'hebbian', 'oja'])
def test_updates_and_prefix_sums(painter):
    keys, values, lrs = _painter_inputs(2, 3, 6, 5, r=1)
    painting = dict(
        delta_parallel=lambda: fpa.delta_rule_parallel(keys, values, lrs),
        delta_sequential=lambda: fpa.delta_rule_sequential(keys, values, lrs),
        hebbian=lambda: fpa.hebbian_rule(keys, values),
        oja=lambda: fpa.oja_rule_sequential(keys, values, lrs),
    )[painter]()
    updates = fpa.rank1_updates(painting)
    assert updates.shape == (2, 6, 3, 5, 5)
    assert_close(updates.sum(dim=1), painting.W, rtol=1e-12, atol=1e-12, name='sum of updates')
    assert torch.linalg.matrix_rank(updates[1, 2, 0]) == 1, 'each update must be rank 1'

def test_display_frames():
    gen = torch.Generator().manual_seed(0)
    frames = torch.randn([2, 4, 3, 5, 5], generator=gen)
    frames[1, 2] = 0
    final = 7 * torch.randn([2, 3, 5, 5], generator=gen)
    raw = fpa.display_frames(frames, final, out_tanh=False)
    norms = raw.flatten(2).norm(dim=2)
    expected = final.flatten(1).norm(dim=1)[:, None].expand(2, 4).clone()
    expected[1, 2] = 0
    assert_close(norms, expected, rtol=1e-5, atol=1e-5, name='frame norms')
    assert_close(raw[0, 1] / frames[0, 1], torch.full_like(frames[0, 1], float(raw[0, 1, 0, 0, 0] / frames[0, 1, 0, 0, 0])), rtol=1e-5, atol=0, name='one scale per frame over all channels')
    assert torch.equal(fpa.display_frames(frames, final), raw.tanh())
    with pytest.raises(ValueError, match='frames'):
        fpa.display_frames(frames[0], final)
    with pytest.raises(ValueError, match='final'):
        fpa.display_frames(frames, final[:, :1])

#----------------------------------------------------------------------------
# The generator: parameter count, initialisation, an independent float64 reference forward.

PAPER_PARTS = dict(latent_to_init=1_050_624, input_generator=262_656, per_time_linear_input=1_152, decoder_rnn=4_726_784, kvb_net=396_675)

def test_paper_parameter_count():
    G = fpa.Generator(z_dim=512, c_dim=0, img_resolution=64, img_channels=3)
    assert sum(p.numel() for p in G.parameters()) == 6_437_891
    for part, count in PAPER_PARTS.items():
        assert sum(p.numel() for p in getattr(G.synthesis, part).parameters()) == count, part
    assert G.num_ws == 64 and G.w_dim == 512

@pytest.mark.parametrize('name,count', [('fpa', 6_437_891), ('fpa-v1', 7_746_947), ('fpa-oja', 5_387_267), ('fpa-hebbian', 7_743_872), ('fpa-unet', 14_423_366)])
def test_registered_parameter_counts(name, count):
    # The parameter counts of the FPA authors' reference checkpoints at 64x64 RGB, D_z = 512.
    G = dnnlib.util.construct_class_by_name(**networks.generator_kwargs(name), z_dim=512, c_dim=0, img_resolution=64, img_channels=3)
    assert sum(p.numel() for p in G.parameters()) == count

def test_initialisation():
    torch.manual_seed(0)
    G = fpa.Generator(z_dim=64, c_dim=0, img_resolution=32, img_channels=3, num_steps=8, hidden_dim=256).requires_grad_(False)
    S = G.synthesis
    for name, param in S.decoder_rnn.named_parameters():
        assert param.abs().max() <= 1 / math.sqrt(256) and param.std() > 0.9 / math.sqrt(3 * 256), name
    b = 1 / math.sqrt(3 * (2 * 32 + 1))
    for param in S.kvb_net.parameters():
        assert param.abs().max() <= b and abs(float(param.std()) - b / math.sqrt(3)) < 0.05 * b
    std = float(S.per_time_linear_input.weight.std())
    assert abs(std - math.sqrt(2 / 8)) < 0.1 * math.sqrt(2 / 8), 'Kaiming normal, fan_in = m = 8, ReLU gain'
    bound = 1 / math.sqrt(64)
    assert S.input_generator.weight.abs().max() <= bound and S.latent_to_init.weight.abs().max() <= bound, 'PyTorch default Linear init'

def _options(G):
    """Every FPA option of G: the constructor's arguments over SynthesisNetwork's defaults."""
    defaults = {k: p.default for k, p in inspect.signature(fpa.SynthesisNetwork).parameters.items() if p.default is not inspect.Parameter.empty}
    return dnnlib.EasyDict({**defaults, **G.init_kwargs})

def _reference_forward(G, z):
    """docs/fpa-model.md §1 and §3 written out one sample step by one, in float64, independently of
    the module's code paths: LSTM cell equations, channel-major slices, the rules' loops."""
    opts, S = _options(G), dict(G.synthesis.named_parameters())
    T, C, N, H, L = opts.num_steps, G.img_channels, G.img_resolution, opts.hidden_dim, opts.num_layers
    m = opts.step_latent_dim
    sig = torch.sigmoid
    images = []
    for zb in z.double():
        if opts.latent_to_init or opts.input_generator == 'v1':
            s = S['latent_to_init.weight'] @ zb + S['latent_to_init.bias']
            h = [s[l * H:(l + 1) * H] for l in range(L)]
            c = [s[L * H + l * H:L * H + (l + 1) * H] for l in range(L)]
        else:
            h = [torch.zeros(H, dtype=torch.float64) for _ in range(L)]
            c = [torch.zeros(H, dtype=torch.float64) for _ in range(L)]
        if opts.input_generator == 'v2':
            gen = S['input_generator.weight'] @ zb + S['input_generator.bias']
            gen = gen.tanh() if opts.input_tanh else gen
        W = [torch.zeros(N, N, dtype=torch.float64) for _ in range(C)]
        for t in range(T):
            if opts.input_generator == 'v2':
                x = S['per_time_linear_input.weight'] @ gen[t * m:(t + 1) * m] + S['per_time_linear_input.bias']
                x = x + S['position_table'][t] if opts.position_table else x
            else:
                x = zb
            for l in range(L):
                gates = S[f'decoder_rnn.weight_ih_l{l}'] @ x + S[f'decoder_rnn.bias_ih_l{l}'] + S[f'decoder_rnn.weight_hh_l{l}'] @ h[l] + S[f'decoder_rnn.bias_hh_l{l}']
                i, f, g, o = gates[:H], gates[H:2 * H], gates[2 * H:3 * H], gates[3 * H:]
                c[l] = sig(f) * c[l] + sig(i) * g.tanh()
                h[l] = sig(o) * c[l].tanh()
                x = h[l]
            out = S['kvb_net.weight'] @ x + S['kvb_net.bias']
            r = 0 if opts.rule == 'hebbian' else N if opts.vector_lr else 1
            for ch in range(C):
                k = out[ch * N:(ch + 1) * N]
                v = out[C * N + ch * N:C * N + (ch + 1) * N]
                k = k.softmax(0) if opts.key_softmax else k
                v = v.tanh() if opts.value_tanh else v
                if r:
                    beta = out[2 * C * N + ch * r:2 * C * N + (ch + 1) * r]
                    beta = sig(beta) if opts.lr_activation == 'sigmoid' else beta
                if opts.rule == 'delta':
                    u = v if t == 0 else beta * (v - W[ch] @ k)
                    W[ch] = W[ch] + torch.outer(u, k)
                elif opts.rule == 'hebbian':
                    W[ch] = W[ch] + torch.outer(v, k)
                else:
                    k = k - W[ch].T @ v
                    k = k.softmax(0) if opts.key_softmax else k
                    W[ch] = W[ch] + torch.outer(beta * v, k)
        img = torch.stack(W)
        images.append(img.tanh() if opts.out_tanh else img)
    return torch.stack(images)

REFERENCE_CONFIGS = {
    'paper-v2':        dict(),
    'v1':              dict(input_generator='v1'),
    'vector-lr-raw':   dict(vector_lr=True, lr_activation='raw', value_tanh=True),
    'two-layers-pos':  dict(num_layers=2, position_table=True, input_tanh=False, latent_to_init=False),
    'no-softmax-out':  dict(key_softmax=False, out_tanh=False),
    'sequential':      dict(painter_impl='sequential', vector_lr=True),
    'hebbian':         dict(rule='hebbian', input_generator='v1', key_softmax=False),
    'oja':             dict(rule='oja', latent_to_init=False, painter_impl='sequential'),
    'oja-vector':      dict(rule='oja', vector_lr=True, key_softmax=False, painter_impl='sequential'),
}

def _tiny(seed=0, **kwargs):
    torch.manual_seed(seed)
    base = dict(z_dim=12, c_dim=0, img_resolution=6, img_channels=3, num_steps=5, step_latent_dim=3, step_input_dim=10, hidden_dim=16)
    return fpa.Generator(**{**base, **kwargs})

@pytest.mark.parametrize('config', sorted(REFERENCE_CONFIGS))
def test_generator_equals_reference_loop(config):
    G = _tiny(**REFERENCE_CONFIGS[config]).double()
    if getattr(G.synthesis, 'position_table', None) is not None:
        torch.nn.init.normal_(G.synthesis.position_table)
    z = torch.randn([3, G.z_dim], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert_close(G(z, None), _reference_forward(G, z), rtol=1e-10, atol=1e-10, name=config)

def test_parallel_and_sequential_generators_agree():
    for kwargs in [dict(), dict(vector_lr=True), dict(rule='hebbian', input_generator='v1')]:
        G_par = _tiny(**kwargs, painter_impl='parallel').double()
        G_seq = _tiny(**kwargs, painter_impl='sequential').double()
        z = torch.randn([4, G_par.z_dim], dtype=torch.float64)
        img_par, img_seq = G_par(z, None), G_seq(z, None)
        assert_close(img_par, img_seq, rtol=1e-10, atol=1e-10, name=str(kwargs))
        g_par = torch.autograd.grad(img_par.square().sum(), list(G_par.parameters()))
        g_seq = torch.autograd.grad(img_seq.square().sum(), list(G_seq.parameters()))
        for (name, _), a, b in zip(G_par.named_parameters(), g_par, g_seq):
            assert_close(a, b, rtol=1e-9, atol=1e-10, name=f'd/d{name}')

#----------------------------------------------------------------------------
# Mapping/synthesis split: conditioning, truncation, w_avg, style mixing.

def test_conditioning_embedding():
    G = _tiny(c_dim=4)
    z = torch.randn([2, G.z_dim])
    c = torch.eye(4)[[1, 3]]
    ws = G.mapping(z, c)
    assert torch.equal(ws[:, 0], z + G.mapping.embed.weight.T[[1, 3]])
    assert (ws == ws[:, :1]).all(), 'every step gets the same code'
    assert sum(p.numel() for p in G.parameters()) == sum(p.numel() for p in _tiny().parameters()) + 4 * G.z_dim

def test_truncation_cutoff_and_w_avg():
    G = _tiny()
    z = torch.randn([5, G.z_dim])
    assert G.mapping.w_avg.abs().max() == 0
    G.mapping(z, None)
    assert G.mapping.w_avg.abs().max() == 0, 'w_avg must only move with update_emas=True'
    G.mapping(z, None, update_emas=True)
    assert_close(G.mapping.w_avg, (1 - 0.998) * z.mean(dim=0), rtol=1e-5, atol=1e-7, name='w_avg')
    ws = G.mapping(z, None)
    ws_t = G.mapping(z, None, truncation_psi=0.3, truncation_cutoff=2)
    assert torch.equal(ws_t[:, 2:], ws[:, 2:])
    assert_close(ws_t[:, :2], G.mapping.w_avg.lerp(ws[:, :2], 0.3), rtol=1e-6, atol=1e-6, name='truncated rows')

@pytest.mark.parametrize('input_generator', ['v1', 'v2'])
def test_style_mixing_first_strokes(input_generator):
    # Rows < k from z1, rows >= k from z2: the first k strokes are exactly z1's, the rest differ.
    G = _tiny(input_generator=input_generator, num_steps=6)
    z1, z2 = torch.randn([2, 2, G.z_dim]).unbind(0)
    ws1, ws2 = G.mapping(z1, None), G.mapping(z2, None)
    mixed = torch.cat([ws1[:, :3], ws2[:, 3:]], dim=1)
    p1, pm = G.synthesis_paint(ws1), G.synthesis_paint(mixed)
    assert torch.equal(pm.updates[:, :3], p1.updates[:, :3])
    assert not torch.allclose(pm.updates[:, 3:], p1.updates[:, 3:])
    assert torch.equal(G.synthesis(mixed), pm.image)

#----------------------------------------------------------------------------
# The painting API.

@pytest.mark.parametrize('kwargs', [dict(), dict(vector_lr=True), dict(rule='hebbian', input_generator='v1'), dict(rule='oja', painter_impl='sequential')])
def test_paint(kwargs):
    G = _tiny(**kwargs)
    z = torch.randn([2, G.z_dim])
    out = G.paint(z, None)
    T, C, N = G.num_ws, G.img_channels, G.img_resolution
    assert out.updates.shape == out.partials.shape == (2, T, C, N, N)
    assert out.refined is None
    assert torch.equal(out.image, G(z, None))
    assert_close(out.partials[:, -1].tanh(), G(z, None), rtol=1e-5, atol=1e-6, name='last partial image')
    assert_close(out.partials, out.updates.cumsum(dim=1), rtol=0, atol=0, name='prefix sums')
    W = G.synthesis.paint_ws(G.mapping(z, None)).W
    assert_close(out.updates.sum(dim=1), W, rtol=1e-5, atol=1e-5, name='sum of updates')
    ranks = torch.linalg.matrix_rank(out.updates.double().flatten(0, 2), rtol=1e-5)
    assert (ranks == 1).all(), 'every update must be rank 1'

def test_oja_updates_are_the_written_terms():
    G = _tiny(rule='oja', painter_impl='sequential').double()
    z = torch.randn([2, G.z_dim], dtype=torch.float64)
    out = G.paint(z, None)
    keys, values, lrs = G.synthesis.slow_net(G.mapping(z, None))
    W = torch.zeros_like(out.updates[:, 0])
    for t in range(G.num_ws):
        k = (keys[:, :, t] - torch.einsum('bcij,bci->bcj', W, values[:, :, t])).softmax(dim=-1)
        update = torch.einsum('bci,bcj->bcij', lrs[:, :, t] * values[:, :, t], k)
        assert_close(out.updates[:, t], update, rtol=1e-12, atol=1e-12, name=f'update {t}')
        W = W + update

def test_autocast_bfloat16():
    G = _tiny()
    z = torch.randn([2, G.z_dim])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        img = G(z, None)
    assert img.dtype == torch.float32 and torch.isfinite(img).all()
    assert (img - G(z, None)).abs().max() < 0.1

def test_every_parameter_gets_a_gradient():
    G = _tiny(c_dim=2, position_table=True)
    z, c = torch.randn([3, G.z_dim]), torch.eye(2)[[0, 1, 1]]
    G(z, c).square().sum().backward()
    for name, param in G.named_parameters():
        assert param.grad is not None and param.grad.abs().max() > 0, name

#----------------------------------------------------------------------------
# FPA/U-Net (docs/fpa-model.md §4).

TINY_UNET = dict(dim=8, dim_mults=(1, 2), attn_heads=1, attn_head_dim=8)

@pytest.mark.parametrize('unet_input_tanh', [True, False])
def test_unet_refiner(unet_input_tanh):
    G = _tiny(img_resolution=8, unet_kwargs=TINY_UNET, unet_input_tanh=unet_input_tanh)
    z = torch.randn([2, G.z_dim])
    W = G.synthesis.paint_ws(G.mapping(z, None)).W
    expected = G.synthesis.unet(W.tanh() if unet_input_tanh else W).tanh()
    assert_close(G(z, None), expected, rtol=0, atol=1e-6, name='tanh(U(tanh(W)))')
    out = G.paint(z, None)
    assert torch.equal(out.refined, G(z, None))
    assert torch.equal(out.image, W.tanh())
    assert sum(p.numel() for p in G.parameters()) == sum(p.numel() for p in _tiny(img_resolution=8).parameters()) + sum(p.numel() for p in G.synthesis.unet.parameters())

@pytest.mark.parametrize('train_fpa', [True, False])
def test_frozen_fpa_gets_no_gradient(train_fpa):
    G = _tiny(img_resolution=8, c_dim=2, unet_kwargs=TINY_UNET, train_fpa=train_fpa)
    unet_params = set(G.synthesis.unet.parameters())
    assert {p for p in G.parameters() if p.requires_grad} == (set(G.parameters()) if train_fpa else unet_params)
    G.requires_grad_(True)  # What the training loop does before each phase.
    z, c = torch.randn([2, G.z_dim]), torch.eye(2)
    G(z, c).square().sum().backward()
    for name, param in G.named_parameters():
        if param in unet_params or train_fpa:
            assert param.grad is not None and param.grad.abs().max() > 0, name
        else:
            assert param.grad is None, f'{name} of the frozen FPA got a gradient'

def test_align_frozen_fpa_copies_the_ema_fpa_and_keeps_the_unet():
    """Two-stage start: G's frozen FPA (parameters and buffers: the mapping's w_avg) becomes the
    file's G_ema FPA; G's U-Net is left as initialised."""
    from training import checkpoint     # pylint: disable=import-outside-toplevel
    G = _tiny(img_resolution=8, c_dim=2, unet_kwargs=TINY_UNET, train_fpa=False)
    G_ema = copy.deepcopy(G)
    with torch.no_grad():
        for tensor in [*G_ema.parameters(), *G_ema.buffers()]:
            tensor.add_(torch.randn_like(tensor))
    unet_before = copy.deepcopy(dict(G.synthesis.unet.named_parameters()))
    unet_ids = {id(t) for t in [*G.synthesis.unet.parameters(), *G.synthesis.unet.buffers()]}
    assert {id(t) for t in G.fpa_parameters() + G.fpa_buffers()} | unet_ids == {id(t) for t in [*G.parameters(), *G.buffers()]}
    assert any(t is G.mapping.w_avg for t in G.fpa_buffers())
    checkpoint.align_frozen_fpa(G, G_ema)
    ema = dict(G_ema.named_parameters()) | dict(G_ema.named_buffers())
    for name, tensor in [*G.named_parameters(), *G.named_buffers()]:
        if name.startswith('synthesis.unet.'):
            assert torch.equal(tensor, unet_before[name.removeprefix('synthesis.unet.')]), f'U-Net {name} changed'
        else:
            assert torch.equal(tensor, ema[name]), f'frozen FPA {name} is not G_ema\'s'

@pytest.mark.gpu
def test_cuda_matches_cpu():
    G = _tiny(vector_lr=True).double()
    z = torch.randn([3, G.z_dim], dtype=torch.float64)
    G_cuda = copy.deepcopy(G).cuda()
    assert_close(G_cuda(z.cuda(), None).cpu(), G(z, None), rtol=1e-9, atol=1e-9, name='cuda vs cpu')
    G_cuda = G_cuda.float()
    with torch.autocast('cuda', dtype=torch.bfloat16):
        img = G_cuda(z.float().cuda(), None)
    assert img.dtype == torch.float32 and torch.isfinite(img).all()

@pytest.mark.gpu
def test_cuda_lstm_weights_are_compacted_once():
    """No "not part of single contiguous chunk of memory" warning on CUDA: not after .cuda(),
    not in a deep copy (G_ema, the metrics' copy), not after a dtype change, forward or backward."""
    import warnings
    G = _tiny().cuda()
    z = torch.randn([3, G.z_dim], device='cuda')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for module in (G, copy.deepcopy(G), copy.deepcopy(G).double().float()):
            module(z, None).square().mean().backward()
    messages = [str(w.message) for w in caught if 'contiguous chunk' in str(w.message)]
    assert messages == [], messages[0]

def test_lstm_compaction_keeps_parameters_and_copies_independent():
    """CPU side of the compaction: moving and deep-copying keep the parameter objects the
    optimiser holds, and a copy's weights stay its own."""
    G = _tiny()
    params = list(G.parameters())
    G.to('cpu').float()
    assert all(a is b for a, b in zip(params, G.parameters()))
    G_ema = copy.deepcopy(G)
    with torch.no_grad():
        G_ema.synthesis.decoder_rnn.weight_hh_l0.add_(1)
    assert not torch.equal(G_ema.synthesis.decoder_rnn.weight_hh_l0, G.synthesis.decoder_rnn.weight_hh_l0)
    z = torch.randn([2, G.z_dim])
    assert_close(copy.deepcopy(G)(z, None), G(z, None), rtol=0, atol=0, name='deep copy')

#----------------------------------------------------------------------------
# Bad input: one clear ValueError naming the option or tensor.

@pytest.mark.parametrize('kwargs,match', [
    (dict(rule='hebb'), 'rule'),
    (dict(input_generator='v3'), 'input_generator'),
    (dict(lr_activation='relu'), 'lr_activation'),
    (dict(painter_impl='fast'), 'painter_impl'),
    (dict(rule='oja'), "painter_impl='parallel'.*no parallel form"),
    (dict(num_steps=0), 'num_steps'),
    (dict(img_resolution=0), 'img_resolution'),
    (dict(c_dim=-1), 'c_dim'),
    (dict(rule='hebbian', vector_lr=True), 'vector_lr'),
    (dict(input_generator='v1', latent_to_init=False), 'latent_to_init'),
    (dict(input_generator='v1', position_table=True), 'position_table'),
    (dict(train_fpa=False), 'train_fpa'),
    (dict(unet_kwargs='big'), 'unet_kwargs'),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _tiny(**kwargs)

def test_bad_inputs():
    G, Gc = _tiny(), _tiny(c_dim=3)
    z = torch.randn([2, 12])
    for bad_z in [torch.randn([2, 11]), torch.randn([12]), torch.zeros([2, 12], dtype=torch.long), None]:
        with pytest.raises(ValueError, match=r'z must be a floating-point tensor of shape \[N, 12\]'):
            G(bad_z, None)
    with pytest.raises(ValueError, match=r'unconditional \(c_dim=0\)'):
        G(z, torch.zeros([2, 3]))
    for bad_c in [None, torch.zeros([2, 2]), torch.zeros([3, 3]), torch.zeros([2, 3], dtype=torch.long)]:
        with pytest.raises(ValueError, match=r'conditional \(c_dim=3\): c must be a floating-point tensor of shape \[2, 3\]'):
            Gc(z, bad_c)
    with pytest.raises(ValueError, match=r'ws must be .* \[N, 5, 12\]'):
        G.synthesis(torch.zeros([2, 4, 12]))
    assert G(z, torch.zeros([2, 0])).shape == (2, 3, 6, 6)

#----------------------------------------------------------------------------

def test_v1_latent_to_init_is_kaiming_normal_as_the_reference():
    """The reference's v1 models draw latent_to_init from a Kaiming normal (std sqrt(2 / z_dim),
    0.0625 at z_dim = 512); PyTorch's default would be uniform with std 1 / sqrt(3 z_dim) = 0.0255."""
    torch.manual_seed(0)
    G = fpa.Generator(z_dim=512, c_dim=0, img_resolution=8, img_channels=3, num_steps=2, input_generator='v1', hidden_dim=64)
    std = float(G.synthesis.latent_to_init.weight.detach().std())
    assert abs(std - 0.0625) < 0.002, std

def test_generator_traces_as_one_graph_for_torch_compile():
    # What compiling the G step needs of the FPA: no graph break. Dynamo wraps nn.LSTM only
    # with its (experimental) allow_rnn switch, which a compiled training step would set.
    import torch._dynamo                                            # pylint: disable=import-outside-toplevel
    from tests.training.tiny import TINY_FPA                        # pylint: disable=import-outside-toplevel
    torch.manual_seed(0)
    G = dnnlib.util.construct_class_by_name(**TINY_FPA, c_dim=0, img_resolution=16, img_channels=3).train()
    z = torch.randn([4, G.z_dim])
    with torch._dynamo.config.patch(allow_rnn=True), torch.autocast('cpu', dtype=torch.bfloat16):
        explanation = torch._dynamo.explain(G)(z, None)
    assert explanation.graph_break_count == 0, [str(reason.reason)[:200] for reason in explanation.break_reasons]
    assert explanation.graph_count == 1
