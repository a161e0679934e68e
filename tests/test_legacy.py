"""legacy.py: importing the FPA authors' checkpoints, and loading files without running code.

Synthetic reference checkpoints are built at small sizes from a layout generator that is
checked against docs/reference/reference-checkpoint-params.txt at
the paper's sizes (names, shapes and order, every model type). Converted generators are
compared with `reference_forward` below: an independent loop implementation of the
reference's forward pass written from docs/fpa-model.md, reading the raw reference state dict (explicit
LSTM cell equations, explicit per-step, per-channel learning rules). Its U-Net part is the
functional U-Net of tests/networks/test_unet.py, which reads the reference's parameter names.
"""

import argparse
import copy
import os
import subprocess
import sys
import types

import pytest
import torch
from click.testing import CliRunner

import legacy
import networks
from tests.conftest import assert_close
from tests.networks.test_unet import parse_reference_params, reference_unet_forward
from networks import reference
from torch_utils import persistence, safe_pickle

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------
# Reference checkpoint layouts (names and shapes in state-dict order), written from docs/fpa-model.md
# and the reference code's module structure.

TYPE_STRUCTURE = {  # model type: (input generator, latent_to_init, kv module, U-Net)
    'lstm_delta':               ('v1', True,  'kvb_net', False),
    'lstm_delta_unet':          ('v1', True,  'kvb_net', True),
    'lstm_delta_split_v2':      ('v2', True,  'kvb_net', False),
    'lstm_delta_split_v2_unet': ('v2', True,  'kvb_net', True),
    'lstm_oja_split_v2':        ('v2', False, 'kvb_net', False),
    'lstm_sum':                 ('v1', True,  'kv_net',  False),
}

def unet_layout(C, D, mults, hidden):
    """The reference U-Net's tensors (docs/fpa-model.md §4), names without 'u_net.'."""
    def block(p, a, b):
        return [(p + 'proj.weight', (b, a, 3, 3)), (p + 'proj.bias', (b,)), (p + 'norm.weight', (b,)), (p + 'norm.bias', (b,))]
    def res(p, a, b):
        skip = [(p + 'res_conv.weight', (b, a, 1, 1)), (p + 'res_conv.bias', (b,))] if a != b else []
        return block(p + 'block1.', a, b) + block(p + 'block2.', b, b) + skip
    def lin_attn(p, c):
        return [(p + 'fn.fn.to_qkv.weight', (3 * hidden, c, 1, 1)), (p + 'fn.fn.to_out.0.weight', (c, hidden, 1, 1)),
                (p + 'fn.fn.to_out.0.bias', (c,)), (p + 'fn.fn.to_out.1.g', (1, c, 1, 1)), (p + 'fn.fn.to_out.1.b', (1, c, 1, 1)),
                (p + 'fn.norm.g', (1, c, 1, 1)), (p + 'fn.norm.b', (1, c, 1, 1))]
    widths = [D] + [D * m for m in mults]
    pairs = list(zip(widths[:-1], widths[1:]))
    out = [('init_conv.weight', (D, C, 7, 7)), ('init_conv.bias', (D,))]
    for i, (a, b) in enumerate(pairs):
        out += res(f'downs.{i}.0.', a, b) + res(f'downs.{i}.1.', b, b) + lin_attn(f'downs.{i}.2.', b)
        out += [(f'downs.{i}.3.weight', (b, b, 4, 4)), (f'downs.{i}.3.bias', (b,))] if i < len(pairs) - 1 else []
    for i, (a, b) in enumerate(reversed(pairs)):
        out += res(f'ups.{i}.0.', 2 * b, a) + res(f'ups.{i}.1.', a, a) + lin_attn(f'ups.{i}.2.', a)
        out += [(f'ups.{i}.3.weight', (a, a, 4, 4)), (f'ups.{i}.3.bias', (a,))] if i < len(pairs) - 1 else []
    M = widths[-1]
    out += res('mid_block1.', M, M)
    out += [('mid_attn.fn.fn.to_qkv.weight', (3 * hidden, M, 1, 1)), ('mid_attn.fn.fn.to_out.weight', (M, hidden, 1, 1)),
            ('mid_attn.fn.fn.to_out.bias', (M,)), ('mid_attn.fn.norm.g', (1, M, 1, 1)), ('mid_attn.fn.norm.b', (1, M, 1, 1))]
    out += res('mid_block2.', M, M) + res('final_res_block.', 2 * D, D) + [('final_conv.weight', (C, D, 1, 1)), ('final_conv.bias', (C,))]
    return out

def reference_layout(model_type, z_dim, T, H, L, C, N, m=8, d_in=128, vect_lr=False, unet_dim=None, unet_mults=(1, 2, 4), attn_hidden=128):
    """[(name, shape, alias)] of a reference generator; alias = the primary name a mod_dict.* entry duplicates."""
    input_generator, latent_to_init, kv, unet = TYPE_STRUCTURE[model_type]
    modules = []    # (module name, [(param, shape)]) in registration order.
    if latent_to_init:
        modules.append(('latent_to_init', [('weight', (2 * L * H, z_dim)), ('bias', (2 * L * H,))]))
    if input_generator == 'v2':
        modules.append(('input_generator', [('weight', (T * m, z_dim)), ('bias', (T * m,))]))
        modules.append(('per_time_linear_input', [('weight', (d_in, m)), ('bias', (d_in,))]))
    rnn_in = d_in if input_generator == 'v2' else z_dim
    modules.append(('decoder_rnn', [p for l in range(L) for p in [
        (f'weight_ih_l{l}', (4 * H, rnn_in if l == 0 else H)), (f'weight_hh_l{l}', (4 * H, H)), (f'bias_ih_l{l}', (4 * H,)), (f'bias_hh_l{l}', (4 * H,))]]))
    rows = C * 2 * N if kv == 'kv_net' else C * (2 * N + (N if vect_lr else 1))
    modules.append((kv, [('weight', (rows, H)), ('bias', (rows,))]))
    out = [(f'{mod}.{p}', shape, None) for mod, params in modules for p, shape in params]
    if unet:
        u = unet_layout(C, unet_dim or N, unet_mults, attn_hidden)
        out += [(f'u_net.{n}', s, None) for n, s in u]
        out += [(f'mod_dict.base.{i}.{p}', shape, f'{mod}.{p}') for i, (mod, params) in enumerate(modules) for p, shape in params]
        out += [(f'mod_dict.unet.0.{n}', s, f'u_net.{n}') for n, s in u]
    return out

def random_reference_state(layout, seed):
    """Random tensors of moderate scale (outputs neither tiny nor saturated); mod_dict.* entries
    are the same tensor objects as their primaries, as in the reference's state dicts."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape, alias in layout:
        if alias is not None:
            state[name] = state[alias]
            continue
        noise = torch.randn(shape, generator=gen)
        last = name.rsplit('.', 1)[-1]
        if last in ('g',) or name.endswith('norm.weight'):
            value = 1 + 0.2 * noise
        elif last in ('b',) or 'bias' in last:
            value = 0.2 * noise
        elif name == 'decoder_time_enc':
            value = 0.5 * noise
        else:
            fan_in = torch.Size(shape[1:]).numel()
            value = noise * fan_in ** -0.5 * (1.5 if name.startswith('kv') else 1.0)
        state[name] = value
    return state

def make_checkpoint(layout, seed=0, extras=None):
    """A reference-style checkpoint: GAN state dict with G., GE. and D. entries, a version and
    a non-tensor args object (argparse.Namespace) next to it."""
    G_state = random_reference_state(layout, seed)
    GE_state = random_reference_state(layout, seed + 1000)
    gan = {f'G.{k}': v for k, v in G_state.items()}
    gan.update({'D.conv.weight': torch.randn([4, 3, 3, 3]), 'D.conv.bias': torch.zeros([4])})
    gan.update({f'GE.{k}': v for k, v in GE_state.items()})
    ckpt = {'GAN': gan, 'version': '0.21.4', 'args': argparse.Namespace(model_type='synthetic', image_size=8, use_softmax=True)}
    ckpt.update(extras or {})
    return ckpt, G_state, GE_state

def strip_mod_dict(state):
    return {k: v for k, v in state.items() if not k.startswith('mod_dict.')}

#----------------------------------------------------------------------------
# The reference forward pass, written from docs/fpa-model.md (float64, loops).

def reference_forward(state, z, rule, T, C, N, lr_width, key_softmax=True, value_tanh=False, input_tanh=True,
                      raw_lr=False, out_tanh=True, unet_input_tanh=True, attn_heads=4):
    sd = {k: v.double() for k, v in strip_mod_dict(state).items()}
    z = z.double()
    B = z.shape[0]
    L = sum(1 for k in sd if k.startswith('decoder_rnn.weight_ih_l'))
    H = sd['decoder_rnn.weight_hh_l0'].shape[1]

    # Initial LSTM state: (h0, c0) = split of latent_to_init(z), layer-major halves; else zeros.
    if 'latent_to_init.weight' in sd:
        hc = z @ sd['latent_to_init.weight'].T + sd['latent_to_init.bias']
        h = [hc[:, l * H:(l + 1) * H] for l in range(L)]
        c = [hc[:, (L + l) * H:(L + l + 1) * H] for l in range(L)]
    else:
        h = [torch.zeros([B, H], dtype=torch.float64) for _ in range(L)]
        c = [torch.zeros([B, H], dtype=torch.float64) for _ in range(L)]

    # LSTM inputs: v2 = shared per-step linear of slices of tanh(input_generator(z)); v1 = z.
    if 'input_generator.weight' in sd:
        x = z @ sd['input_generator.weight'].T + sd['input_generator.bias']
        x = torch.tanh(x) if input_tanh else x
        m = sd['per_time_linear_input.weight'].shape[1]
        inputs = [x[:, t * m:(t + 1) * m] @ sd['per_time_linear_input.weight'].T + sd['per_time_linear_input.bias'] for t in range(T)]
    else:
        inputs = [z] * T

    # LSTM cell, step by step (gate order i, f, g, o), then the key/value(/lr) projection.
    kv_name = 'kv_net' if 'kv_net.weight' in sd else 'kvb_net'
    projections = []
    for t in range(T):
        inp = inputs[t]
        for l in range(L):
            gates = inp @ sd[f'decoder_rnn.weight_ih_l{l}'].T + sd[f'decoder_rnn.bias_ih_l{l}'] \
                + h[l] @ sd[f'decoder_rnn.weight_hh_l{l}'].T + sd[f'decoder_rnn.bias_hh_l{l}']
            i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
            c[l] = torch.sigmoid(f) * c[l] + torch.sigmoid(i) * torch.tanh(g)
            h[l] = torch.sigmoid(o) * torch.tanh(c[l])
            inp = h[l]
        projections.append(inp @ sd[f'{kv_name}.weight'].T + sd[f'{kv_name}.bias'])

    # The learning rule, per step and per channel.
    def softmax(v):
        e = torch.exp(v - v.max())
        return e / e.sum()
    W = torch.zeros([B, C, N, N], dtype=torch.float64)
    for t in range(T):
        out = projections[t]
        for b in range(B):
            for ch in range(C):
                k = out[b, ch * N:(ch + 1) * N]
                v = out[b, C * N + ch * N:C * N + (ch + 1) * N]
                v = torch.tanh(v) if value_tanh else v
                k = softmax(k) if key_softmax else k
                if rule == 'hebbian':
                    W[b, ch] = W[b, ch] + torch.outer(v, k)
                    continue
                logit = out[b, 2 * C * N + ch * lr_width:2 * C * N + (ch + 1) * lr_width]
                beta = logit if raw_lr else torch.sigmoid(logit)
                if rule == 'delta':
                    u = v if t == 0 else beta * (v - W[b, ch] @ k)
                elif rule == 'oja':
                    if t > 0:
                        k = k - W[b, ch].T @ v
                    k = softmax(k) if key_softmax else k
                    u = beta * v
                W[b, ch] = W[b, ch] + torch.outer(u, k)

    if 'u_net.init_conv.weight' not in sd:
        return torch.tanh(W) if out_tanh else W
    unet_sd = {k[len('u_net.'):]: v for k, v in sd.items() if k.startswith('u_net.')}
    hidden = unet_sd['mid_attn.fn.fn.to_out.weight'].shape[1]
    y = reference_unet_forward(unet_sd, torch.tanh(W) if unet_input_tanh else W, heads=attn_heads, head_dim=hidden // attn_heads)
    return torch.tanh(y) if out_tanh else y

#----------------------------------------------------------------------------
# Layouts against docs/reference/reference-checkpoint-params.txt.

PAPER = dict(z_dim=512, T=64, H=1024, L=1, C=3, N=64)

@pytest.mark.parametrize('model_type', list(TYPE_STRUCTURE))
def test_layout_generator_matches_reference_params_file(model_type):
    expected = parse_reference_params()[model_type]
    ours = [(n, s) for n, s, _ in reference_layout(model_type, **PAPER, unet_dim=64)]
    assert ours == expected

def test_mod_dict_aliases_match_reference_shapes():
    layout = reference_layout('lstm_delta_split_v2_unet', **PAPER, unet_dim=64)
    shapes = {n: s for n, s, _ in layout}
    assert all(shapes[alias] == s for n, s, alias in layout if alias is not None)

def test_unet_renames_reach_every_unet_parameter_in_order():
    from networks.unet import UNet
    names = [n for n, _ in unet_layout(3, 8, (1, 2, 4), 32)]
    ours = list(UNet(img_channels=3, dim=8, dim_mults=(1, 2, 4)).state_dict())
    assert [reference.unet_name(n) for n in names] == ours

#----------------------------------------------------------------------------
# Conversion parity, every model type.

CASES = {   # name: (model type, layout kwargs, conversion kwargs)
    'lstm_delta':               ('lstm_delta',               dict(z_dim=12, T=5, H=10, L=1, C=3, N=6), dict(num_steps=5)),
    'lstm_delta_vlr':           ('lstm_delta',               dict(z_dim=12, T=5, H=10, L=1, C=3, N=6, vect_lr=True), dict(num_steps=5)),
    'lstm_delta_2layers':       ('lstm_delta',               dict(z_dim=12, T=4, H=10, L=2, C=3, N=6), dict(num_steps=4)),
    'lstm_delta_unet':          ('lstm_delta_unet',          dict(z_dim=12, T=4, H=10, L=2, C=3, N=8, unet_mults=(1, 2), attn_hidden=16), dict(num_steps=4)),
    'lstm_delta_split_v2':      ('lstm_delta_split_v2',      dict(z_dim=12, T=5, H=10, L=2, C=3, N=6, m=3, d_in=7), {}),
    'lstm_delta_split_v2_vlr':  ('lstm_delta_split_v2',      dict(z_dim=12, T=5, H=10, L=1, C=3, N=6, m=3, d_in=7, vect_lr=True), {}),
    'lstm_delta_split_v2_grey': ('lstm_delta_split_v2',      dict(z_dim=12, T=5, H=10, L=1, C=1, N=6, m=3, d_in=7), dict(img_channels=1)),
    'lstm_delta_split_v2_unet': ('lstm_delta_split_v2_unet', dict(z_dim=12, T=4, H=10, L=1, C=3, N=8, m=2, d_in=7, unet_mults=(1, 2, 2), attn_hidden=32), {}),
    'lstm_oja_split_v2':        ('lstm_oja_split_v2',        dict(z_dim=12, T=5, H=10, L=1, C=3, N=6, m=3, d_in=7), {}),
    'lstm_oja_split_v2_vlr':    ('lstm_oja_split_v2',        dict(z_dim=12, T=5, H=10, L=2, C=3, N=6, m=3, d_in=7, vect_lr=True), {}),
    'lstm_sum':                 ('lstm_sum',                 dict(z_dim=12, T=5, H=10, L=1, C=3, N=6), dict(num_steps=5)),
}

def raw(G):
    """The converted generator before its output mapping to [-1, 1] (2 * clamp(x, 0, 1) - 1,
    tested in test_output_range_is_ours): what the reference's forward pass returns."""
    G = copy.deepcopy(G)
    assert G.synthesis.out_unit_range, 'converted reference generators map [0, 1] images to [-1, 1]'
    G.synthesis.out_unit_range = False
    return G

def _convert(tmp_path, case, seed=0, extras=None, **overrides):
    model_type, layout_kwargs, convert_kwargs = CASES[case]
    ckpt, G_state, GE_state = make_checkpoint(reference_layout(model_type, **layout_kwargs), seed=seed, extras=extras)
    path = tmp_path / f'{case}.pt'
    torch.save(ckpt, path)
    result = legacy.load_network_pkl(str(path), **{**convert_kwargs, **overrides})
    return result, G_state, GE_state, path

def _reference_kwargs(case):
    model_type, lk, _ = CASES[case]
    rule = {'lstm_oja_split_v2': 'oja', 'lstm_sum': 'hebbian'}.get(model_type, 'delta')
    lr_width = 0 if rule == 'hebbian' else lk['N'] if lk.get('vect_lr') else 1
    return dict(rule=rule, T=lk['T'], C=lk['C'], N=lk['N'], lr_width=lr_width, key_softmax=model_type != 'lstm_sum')

@pytest.mark.parametrize('case', list(CASES))
def test_converted_generator_reproduces_reference(tmp_path, case):
    result, G_state, GE_state, _ = _convert(tmp_path, case)
    model_type, lk, _ = CASES[case]
    assert result.legacy_source['model_type'] == model_type
    assert result.D is None and result.training_set_kwargs is None
    z = torch.randn([3, lk['z_dim']], generator=torch.Generator().manual_seed(7))
    ref_kwargs = _reference_kwargs(case)
    for G, state in [(result.G_ema, GE_state), (result.G, G_state)]:
        assert (G.z_dim, G.img_resolution, G.img_channels, G.num_ws) == (lk['z_dim'], lk['N'], lk['C'], lk['T'])
        expected = reference_forward(state, z, **ref_kwargs)
        assert 0.05 < expected.abs().mean() < 0.95, f'test weights give a degenerate image (mean |x| {expected.abs().mean():.3f})'
        with torch.no_grad():
            assert_close(raw(G)(z, None), expected, rtol=0, atol=2e-5, name=f'{case} float32')
            assert_close(raw(G).double()(z.double(), None), expected, rtol=0, atol=1e-10, name=f'{case} float64')
    assert not torch.equal(result.G.synthesis.kvb_net.weight, result.G_ema.synthesis.kvb_net.weight), 'G and G_ema must come from G. and GE.'

@pytest.mark.parametrize('case,flags', [
    ('lstm_delta_split_v2', dict(key_softmax=False, value_tanh=True, raw_lr=True, input_tanh=False, out_tanh=False)),
    ('lstm_oja_split_v2', dict(key_softmax=False, value_tanh=True)),
    ('lstm_sum', dict(key_softmax=True, out_tanh=False)),
    ('lstm_delta_unet', dict(unet_input_tanh=False, raw_lr=True)),
])
def test_options_reach_the_generator(tmp_path, case, flags):
    result, _, GE_state, _ = _convert(tmp_path, case, **flags)
    z = torch.randn([2, CASES[case][1]['z_dim']], generator=torch.Generator().manual_seed(3))
    expected = reference_forward(GE_state, z, **{**_reference_kwargs(case), **flags})
    default = reference_forward(GE_state, z, **_reference_kwargs(case))
    assert (expected - default).abs().max() > 1e-3, 'the flags should change the function'
    with torch.no_grad():
        assert_close(raw(result.G_ema).double()(z.double(), None), expected, rtol=0, atol=1e-10, name=case)

def test_inferred_hyperparameters(tmp_path):
    result, _, _, _ = _convert(tmp_path, 'lstm_delta_split_v2_unet')
    kw = result.G_ema.init_kwargs
    assert (kw.z_dim, kw.num_steps, kw.step_latent_dim, kw.step_input_dim, kw.hidden_dim, kw.num_layers) == (12, 4, 2, 7, 10, 1)
    assert (kw.img_resolution, kw.img_channels, kw.vector_lr, kw.rule, kw.input_generator) == (8, 3, False, 'delta', 'v2')
    assert dict(kw.unet_kwargs) == dict(dim=8, dim_mults=[1, 2, 2], norm_groups=8, attn_heads=4, attn_head_dim=8)
    assert kw.key_softmax and kw.out_tanh and kw.input_tanh and kw.unet_input_tanh and not kw.value_tanh and kw.lr_activation == 'sigmoid'
    result, _, _, _ = _convert(tmp_path, 'lstm_sum')
    assert not result.G_ema.init_kwargs.key_softmax, 'lstm_sum was trained without key softmax'
    assert _convert(tmp_path, 'lstm_delta_split_v2_vlr')[0].G_ema.init_kwargs.vector_lr
    assert _convert(tmp_path, 'lstm_oja_split_v2')[0].G_ema.init_kwargs.painter_impl == 'sequential'

def test_v1_num_steps_default_and_option(tmp_path):
    model_type, lk, _ = CASES['lstm_delta']
    ckpt, _, _ = make_checkpoint(reference_layout(model_type, **lk))
    torch.save(ckpt, tmp_path / 'v1.pt')
    assert legacy.load_network_pkl(str(tmp_path / 'v1.pt')).G_ema.num_ws == legacy.V1_DEFAULT_NUM_STEPS == 64
    assert legacy.load_network_pkl(str(tmp_path / 'v1.pt'), num_steps=16).G_ema.num_ws == 16

def test_ambiguous_learning_rate_width(tmp_path):
    # C*(2N+1) with N=4 is 3*9 = 3*(3*3): also a vector learning rate with N=3. Scalar (the paper's) by default.
    lk = dict(z_dim=6, T=3, H=5, L=1, C=3, N=4, m=2, d_in=4)
    ckpt, _, GE_state = make_checkpoint(reference_layout('lstm_delta_split_v2', **lk))
    torch.save(ckpt, tmp_path / 'amb.pt')
    default = legacy.load_network_pkl(str(tmp_path / 'amb.pt')).G_ema
    assert (default.img_resolution, default.init_kwargs.vector_lr) == (4, False)
    vector = legacy.load_network_pkl(str(tmp_path / 'amb.pt'), img_resolution=3).G_ema
    assert (vector.img_resolution, vector.init_kwargs.vector_lr) == (3, True)
    z = torch.randn([2, 6], generator=torch.Generator().manual_seed(0))
    expected = reference_forward(GE_state, z, rule='delta', T=3, C=3, N=3, lr_width=3)
    with torch.no_grad():
        assert_close(raw(vector).double()(z.double(), None), expected, rtol=0, atol=1e-10, name='vector-lr reading')

def test_missing_ema_uses_G(tmp_path):
    model_type, lk, kw = CASES['lstm_delta_split_v2']
    ckpt, G_state, _ = make_checkpoint(reference_layout(model_type, **lk))
    ckpt['GAN'] = {k: v for k, v in ckpt['GAN'].items() if not k.startswith('GE.')}
    del ckpt['args']                # Tensors, strings and dicts only: the torch.load(weights_only=True) path.
    torch.save(ckpt, tmp_path / 'noema.pt')
    torch.load(tmp_path / 'noema.pt', weights_only=True)
    result = legacy.load_network_pkl(str(tmp_path / 'noema.pt'))
    assert torch.equal(result.G_ema.synthesis.kvb_net.weight, G_state['kvb_net.weight'])
    assert 'G_ema = G' in result.legacy_source['ema']

#----------------------------------------------------------------------------
# Loading never executes code from the file.

class _Payload:
    """Pickles as a call of `func(*args)`."""
    def __init__(self, func, *args):
        self.func, self.args = func, args
    def __reduce__(self):
        return self.func, self.args

def test_hostile_globals_are_not_executed(tmp_path):
    marker = tmp_path / 'executed'
    module_file = tmp_path / 'fpa_test_side_effect_module.py'
    module_file.write_text(f'open({str(tmp_path / "imported")!r}, "w").close()\nclass Thing:\n    pass\n')
    sys.path.insert(0, str(tmp_path))
    try:
        import fpa_test_side_effect_module                               # Written just above.
        thing = fpa_test_side_effect_module.Thing()
        thing.value = 3
        ghost = types.ModuleType('fpa_test_module_that_does_not_exist')
        ghost.Ghost = type('Ghost', (dict,), {'__module__': ghost.__name__})   # A class whose module will vanish.
        ghost_obj = ghost.Ghost(key=5)
        sys.modules[ghost.__name__] = ghost
        extras = {
            'system': _Payload(os.system, f'touch {marker}'),
            'eval':   _Payload(eval, f'open({str(marker)!r}, "w")'),
            'thing':  thing,
            'ghost':  ghost_obj,
            'optimizer_state': {'state': {0: {'exp_avg': torch.ones(2)}}, 'param_groups': [{'lr': 2e-4, 'betas': (0.5, 0.9)}]},
            'plain_data': [torch.float16, torch.Size([2, 3]), torch.nn.Parameter(torch.ones(2)), {1, 2}],
        }
        _, layout_kwargs, convert_kwargs = CASES['lstm_delta_split_v2']
        ckpt, _, GE_state = make_checkpoint(reference_layout('lstm_delta_split_v2', **layout_kwargs), extras=extras)
        torch.save(ckpt, tmp_path / 'hostile.pt')
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop('fpa_test_side_effect_module', None)
        sys.modules.pop('fpa_test_module_that_does_not_exist', None)
    os.remove(tmp_path / 'imported')

    with open(tmp_path / 'hostile.pt', 'rb') as f:
        loaded = safe_pickle.safe_torch_load(f.read(), 'hostile.pt')
    assert not marker.exists(), 'a payload ran while loading'
    assert not (tmp_path / 'imported').exists() and 'fpa_test_side_effect_module' not in sys.modules, 'an unknown module was imported'
    for key in ('system', 'eval', 'thing', 'ghost', 'args'):
        assert isinstance(loaded[key], safe_pickle.UnknownGlobal), key
    assert loaded['ghost'].global_name == 'fpa_test_module_that_does_not_exist.Ghost'
    assert loaded['thing'].state == {'value': 3} and loaded['ghost'].items == {'key': 5}
    assert loaded['args'].state == {'model_type': 'synthetic', 'image_size': 8, 'use_softmax': True}
    assert torch.equal(loaded['optimizer_state']['state'][0]['exp_avg'], torch.ones(2))
    dtype, size, param, numbers = loaded['plain_data']
    assert dtype is torch.float16 and size == torch.Size([2, 3]) and isinstance(param, torch.nn.Parameter) and numbers == {1, 2}

    result = legacy.load_network_pkl(str(tmp_path / 'hostile.pt'), **convert_kwargs)
    assert not marker.exists()
    z = torch.randn([2, layout_kwargs['z_dim']], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert_close(raw(result.G_ema).double()(z.double(), None), reference_forward(GE_state, z, **_reference_kwargs('lstm_delta_split_v2')),
                     rtol=0, atol=1e-10, name='hostile checkpoint')

#----------------------------------------------------------------------------
# Network files of this codebase, and the command line.

def test_loads_network_files_of_this_codebase(tmp_path):
    result, _, _, _ = _convert(tmp_path, 'lstm_delta_split_v2')
    persistence.save_network(tmp_path / 'net.pkl', G=result.G, G_ema=result.G_ema, D=None, augment_pipe=None, training_set_kwargs=None)
    with open(tmp_path / 'net.pkl', 'rb') as f:
        loaded = legacy.load_network_pkl(f)
    z = torch.randn([2, 12])
    with torch.no_grad():
        assert torch.equal(loaded.G_ema(z, None), result.G_ema(z, None))
    assert loaded.D is None
    with pytest.raises(ValueError, match='conversion options apply only to reference FPA checkpoints'):
        legacy.load_network_pkl(str(tmp_path / 'net.pkl'), num_steps=3)

def test_cli_end_to_end(tmp_path):
    result, _, GE_state, path = _convert(tmp_path, 'lstm_delta_split_v2_unet')
    dest = tmp_path / 'out' / 'fpa.pkl'
    dest.parent.mkdir()
    run = CliRunner().invoke(legacy.convert_main, [f'--source={path}', f'--dest={dest}'])
    assert run.exit_code == 0, run.output
    assert 'lstm_delta_split_v2_unet' in run.output and 'Wrote' in run.output
    net = networks.load_network(str(dest))
    assert net.legacy_source['model_type'] == 'lstm_delta_split_v2_unet' and net.D is None
    z = torch.randn([2, 12], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(net.G_ema(z, None), result.G_ema(z, None))
        assert torch.equal(net.G(z, None), result.G(z, None))

def test_cli_options_and_subprocess(tmp_path):
    _, _, GE_state, path = _convert(tmp_path, 'lstm_oja_split_v2')
    dest = tmp_path / 'oja.pkl'
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'legacy.py'), f'--source={path}', f'--dest={dest}',
                           '--model-type=lstm_oja_split_v2', '--no-key-softmax', '--value-tanh'],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    G = networks.load_network(str(dest)).G_ema
    assert not G.init_kwargs.key_softmax and G.init_kwargs.value_tanh
    z = torch.randn([2, 12], generator=torch.Generator().manual_seed(4))
    expected = reference_forward(GE_state, z, **{**_reference_kwargs('lstm_oja_split_v2'), 'key_softmax': False, 'value_tanh': True})
    with torch.no_grad():
        assert_close(raw(G).double()(z.double(), None), expected, rtol=0, atol=1e-10, name='CLI flags')

#----------------------------------------------------------------------------
# Bad input: one clear line naming the file and what was expected.

def _save(tmp_path, obj, name='bad.pt'):
    torch.save(obj, tmp_path / name)
    return str(tmp_path / name)

def _layout_ckpt(case='lstm_delta_split_v2'):
    model_type, lk, _ = CASES[case]
    return make_checkpoint(reference_layout(model_type, **lk))[0]

def _edit_gan(ckpt, drop=(), add=None):
    ckpt['GAN'] = {k: v for k, v in ckpt['GAN'].items() if k not in drop}
    ckpt['GAN'].update(add or {})
    return ckpt

@pytest.mark.parametrize('make_bad,match', [
    (lambda p: str(p / 'missing.pt'), 'no such file'),
    (lambda p: (p / 'text.pt').write_text('not a checkpoint') and str(p / 'text.pt'), 'not a readable pickle'),
    (lambda p: _save(p, {'model': {'w': torch.zeros(2)}}), r'not a network file \(neither .*; found a dict with keys model\)'),
    (lambda p: _save(p, {'GAN': [1, 2]}), r'"GAN" is a list, expected a state dict'),
    (lambda p: _save(p, {'GAN': {'D.w': torch.zeros(2)}}), r'no "G\." keys'),
    (lambda p: _save(p, _edit_gan(_layout_ckpt(), drop=['G.kvb_net.bias', 'GE.kvb_net.bias'])), r'missing generator parameter "kvb_net.bias"'),
    (lambda p: _save(p, _edit_gan(_layout_ckpt(), add={'G.extra_head.weight': torch.zeros(2, 2), 'GE.extra_head.weight': torch.zeros(2, 2)})), r'unrecognised generator \(parameter groups .*extra_head'),
    (lambda p: _save(p, _edit_gan(_layout_ckpt(), add={'G.latent_to_init.weight': torch.zeros(7, 12), 'GE.latent_to_init.weight': torch.zeros(7, 12)})), r'"latent_to_init.weight" has shape \[7, 12\], expected \[40, 12\]'),
    (lambda p: _save(p, _edit_gan(_layout_ckpt(), add={'G.kvb_net.weight': torch.zeros(40, 10), 'GE.kvb_net.weight': torch.zeros(40, 10),
                                                      'G.kvb_net.bias': torch.zeros(40), 'GE.kvb_net.bias': torch.zeros(40)})), r'kvb_net.weight has 40 rows, expected a multiple of img_channels=3'),
    (lambda p: _save(p, _edit_gan(_layout_ckpt(), drop=['GE.kvb_net.bias'])), r'G and GE \(EMA\) hold different parameters, e.g. kvb_net.bias'),
    (lambda p: _save(p, _edit_gan(_layout_ckpt(), add={'G.kvb_net.bias': 'oops'})), r'GAN\["G.kvb_net.bias"\] is a str, expected a tensor'),
    (lambda p: _save(p, _edit_gan(_layout_ckpt(), add={'G.decoder_rnn.weight_ih_l1': torch.zeros(40, 7), 'GE.decoder_rnn.weight_ih_l1': torch.zeros(40, 7)})), r'decoder_rnn.weight_ih_l1" has shape \[40, 7\], expected \[40, 10\]'),
])
def test_bad_input_one_clear_line(tmp_path, make_bad, match):
    path = make_bad(tmp_path)
    with pytest.raises(ValueError, match=match) as info:
        legacy.load_network_pkl(path, num_steps=None)
    message = str(info.value)
    assert '\n' not in message and os.path.basename(path) in message
    assert 'weights_only' not in message, "never pass on torch's advice to load with weights_only=False"

def test_bad_options(tmp_path):
    path = _save(tmp_path, _layout_ckpt())
    with pytest.raises(ValueError, match=r'--model-type=lstm_oja_split_v2 does not match the checkpoint, whose parameters are those of lstm_delta_split_v2'):
        legacy.load_network_pkl(path, model_type='lstm_oja_split_v2')
    with pytest.raises(ValueError, match=r'--num-steps=7 contradicts the checkpoint'):
        legacy.load_network_pkl(path, num_steps=7)
    with pytest.raises(ValueError, match=r'expected C\*\(2N\+1\) or C\*3N .* with C=3, N=5'):
        legacy.load_network_pkl(path, img_resolution=5)
    unet_path = _save(tmp_path, _layout_ckpt('lstm_delta_split_v2_unet'), 'unet.pt')
    with pytest.raises(ValueError, match=r'--img-channels=1 contradicts the U-Net, which has 3 channels'):
        legacy.load_network_pkl(unet_path, img_channels=1)

def test_cli_bad_input_is_one_line(tmp_path):
    run = CliRunner().invoke(legacy.convert_main, [f'--source={tmp_path / "nope.pt"}', f'--dest={tmp_path / "out.pkl"}'])
    assert run.exit_code == 1
    assert run.output.strip() == f'Error: {tmp_path / "nope.pt"}: no such file'
    assert not (tmp_path / 'out.pkl').exists()
    path = _save(tmp_path, _layout_ckpt())
    run = CliRunner().invoke(legacy.convert_main, [f'--source={path}', f'--dest={path}'])
    assert run.exit_code == 1 and 'refusing to overwrite the source' in run.output

#----------------------------------------------------------------------------

def test_cli_refuses_an_existing_dest_unless_overwrite(tmp_path):
    path = _save(tmp_path, _layout_ckpt())
    dest = tmp_path / 'unrelated.pkl'
    dest.write_text('precious')
    run = CliRunner().invoke(legacy.convert_main, [f'--source={path}', f'--dest={dest}'])
    assert run.exit_code == 1
    assert run.output.strip() == f'Error: --dest={dest}: already exists; refusing to replace it (give --overwrite to replace it)'
    assert dest.read_text() == 'precious'
    run = CliRunner().invoke(legacy.convert_main, [f'--source={path}', f'--dest={dest}', '--overwrite'])
    assert run.exit_code == 0, run.output
    assert networks.load_network(str(dest)).G_ema.img_resolution == 6

def test_img_channels_that_misread_an_rgb_checkpoint(tmp_path):
    # 6x6 RGB: 3 * (2 * 6 + 1) = 39 key/value/rate rows, which one channel would read as 19x19.
    path = _save(tmp_path, _layout_ckpt())
    with pytest.raises(ValueError, match=r'--img-channels=1 reads the 39 rows of kvb_net.weight as 19x19 images, but they also fit '
                                         r'6x6 RGB images \(the reference trains RGB\); give --img-resolution to confirm the side'):
        legacy.load_network_pkl(path, img_channels=1)
    G = legacy.load_network_pkl(path, img_channels=1, img_resolution=19).G_ema    # Confirmed: the user's call.
    assert (G.img_channels, G.img_resolution) == (1, 19)
    run = CliRunner().invoke(legacy.convert_main, [f'--source={path}', f'--dest={tmp_path / "grey.pkl"}', '--img-channels=1'])
    assert run.exit_code == 1 and run.output.count('\n') == 1 and not (tmp_path / 'grey.pkl').exists()
