"""networks/unet.py against docs/fpa-model.md §4 and the reference checkpoint layout.

`reference_unet_forward` below is an independent functional U-Net written from the docs/fpa-model.md
text: it reads a state dict with the *reference's* parameter names and uses per-head loops
and plain matrix products for attention. tests/test_legacy.py reuses it.
"""

import os
import re

import pytest
import torch
import torch.nn.functional as F

from networks.unet import AttentionBlock, FullAttention, LinearAttention, UNet
from tests.conftest import assert_close
from torch_utils import misc

# The authors' checkpoint layout (parameter names and shapes), kept in docs/reference/.
_REPO = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..'))
PARAMS_FILE = os.path.join(_REPO, 'docs', 'reference', 'reference-checkpoint-params.txt')

#----------------------------------------------------------------------------
# The reference checkpoint layout, parsed from docs/reference/reference-checkpoint-params.txt.

def parse_reference_params() -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """{model_type: [(name, shape), ...]} in state-dict order, from reference-checkpoint-params.txt."""
    path = PARAMS_FILE
    sections, current = {}, None
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            header = re.match(r'^## (\S+)', line)
            if header:
                current = sections.setdefault(header.group(1), [])
                continue
            entry = re.match(r'^(\S+) \(([\d, ]*)\)$', line)
            if entry and current is not None:
                shape = tuple(int(s) for s in entry.group(2).replace(' ', '').split(',') if s)
                current.append((entry.group(1), shape))
    return sections

def reference_unet_names() -> list[str]:
    """Names of the reference U-Net's tensors (without the 'u_net.' prefix), in state-dict order."""
    layout = parse_reference_params()['lstm_delta_split_v2_unet']
    return [name[len('u_net.'):] for name, _ in layout if name.startswith('u_net.')]

#----------------------------------------------------------------------------
# Independent reference: attention by per-head loops, the U-Net as functions of a
# reference-named state dict.

def naive_layer_norm(x, g, b, eps=1e-5):
    mean = x.sum(dim=1, keepdim=True) / x.shape[1]
    var = ((x - mean) ** 2).sum(dim=1, keepdim=True) / x.shape[1]
    return (x - mean) / torch.sqrt(var + eps) * g + b

def _qkv_per_head(x, w_qkv, heads, head_dim):
    """Yield (batch, head, q, k, v) with q, k, v [head_dim, positions]."""
    B, C, H, W = x.shape
    hidden = heads * head_dim
    for bi in range(B):
        qkv = w_qkv.reshape(3 * hidden, C) @ x[bi].reshape(C, H * W)
        for h in range(heads):
            rows = slice(h * head_dim, (h + 1) * head_dim)
            yield bi, h, qkv[:hidden][rows], qkv[hidden:2 * hidden][rows], qkv[2 * hidden:][rows]

def naive_linear_attention_core(x, w_qkv, heads, head_dim):
    """docs/fpa-model.md §4: q softmax over features, k softmax over positions, q * d^-0.5,
    context = k v^T, out = context^T q. Returns [B, heads*head_dim, H, W] before to_out."""
    B, C, H, W = x.shape
    out = torch.zeros([B, heads * head_dim, H * W], dtype=x.dtype)
    for bi, h, q, k, v in _qkv_per_head(x, w_qkv, heads, head_dim):
        q = torch.exp(q) / torch.exp(q).sum(dim=0, keepdim=True) * head_dim ** -0.5
        k = torch.exp(k) / torch.exp(k).sum(dim=1, keepdim=True)
        context = k @ v.T
        out[bi, h * head_dim:(h + 1) * head_dim] = context.T @ q
    return out.reshape(B, heads * head_dim, H, W)

def naive_full_attention_core(x, w_qkv, heads, head_dim):
    """docs/fpa-model.md §4: q * d^-0.5; for every query position i, softmax over keys j of q_i . k_j,
    output = sum_j weight_ij v_j. Returns [B, heads*head_dim, H, W] before to_out."""
    B, C, H, W = x.shape
    out = torch.zeros([B, heads * head_dim, H * W], dtype=x.dtype)
    for bi, h, q, k, v in _qkv_per_head(x, w_qkv, heads, head_dim):
        q = q * head_dim ** -0.5
        for i in range(H * W):
            logits = (q[:, i:i + 1] * k).sum(dim=0)
            weights = torch.exp(logits - logits.max())
            weights = weights / weights.sum()
            out[bi, h * head_dim:(h + 1) * head_dim, i] = (v * weights).sum(dim=1)
    return out.reshape(B, heads * head_dim, H, W)

def reference_unet_forward(sd, x, heads=4, head_dim=32, groups=8):
    """The docs/fpa-model.md §4 U-Net, from a state dict with the reference's names (no prefix)."""
    def block(p, x):
        x = F.conv2d(x, sd[p + 'proj.weight'], sd[p + 'proj.bias'], padding=1)
        return F.silu(F.group_norm(x, groups, sd[p + 'norm.weight'], sd[p + 'norm.bias'], eps=1e-5))
    def resblock(p, x):
        h = block(p + 'block2.', block(p + 'block1.', x))
        skip = F.conv2d(x, sd[p + 'res_conv.weight'], sd[p + 'res_conv.bias']) if p + 'res_conv.weight' in sd else x
        return h + skip
    def lin_attn(p, x):
        y = naive_layer_norm(x, sd[p + 'fn.norm.g'], sd[p + 'fn.norm.b'])
        y = naive_linear_attention_core(y, sd[p + 'fn.fn.to_qkv.weight'], heads, head_dim)
        y = F.conv2d(y, sd[p + 'fn.fn.to_out.0.weight'], sd[p + 'fn.fn.to_out.0.bias'])
        return x + naive_layer_norm(y, sd[p + 'fn.fn.to_out.1.g'], sd[p + 'fn.fn.to_out.1.b'])
    def full_attn(p, x):
        y = naive_layer_norm(x, sd[p + 'fn.norm.g'], sd[p + 'fn.norm.b'])
        y = naive_full_attention_core(y, sd[p + 'fn.fn.to_qkv.weight'], heads, head_dim)
        return x + F.conv2d(y, sd[p + 'fn.fn.to_out.weight'], sd[p + 'fn.fn.to_out.bias'])

    num_levels = len({k.split('.')[1] for k in sd if k.startswith('downs.')})
    x = F.conv2d(x, sd['init_conv.weight'], sd['init_conv.bias'], padding=3)
    r = x
    skips = []
    for i in range(num_levels):
        p = f'downs.{i}.'
        x = lin_attn(p + '2.', resblock(p + '1.', resblock(p + '0.', x)))
        skips.append(x)
        if p + '3.weight' in sd:
            x = F.conv2d(x, sd[p + '3.weight'], sd[p + '3.bias'], stride=2, padding=1)
    x = resblock('mid_block2.', full_attn('mid_attn.', resblock('mid_block1.', x)))
    for i in range(num_levels):
        p = f'ups.{i}.'
        x = torch.cat([x, skips.pop()], dim=1)
        x = lin_attn(p + '2.', resblock(p + '1.', resblock(p + '0.', x)))
        if p + '3.weight' in sd:
            x = F.conv_transpose2d(x, sd[p + '3.weight'], sd[p + '3.bias'], stride=2, padding=1)
    x = resblock('final_res_block.', torch.cat([x, r], dim=1))
    return F.conv2d(x, sd['final_conv.weight'], sd['final_conv.bias'])

def randomize_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random parameters of moderate scale; norm gains and biases random too, so that they matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if name.endswith('norm.weight'):        # GroupNorm and ChannelNorm gains.
                value = 1 + 0.3 * noise
            elif name.endswith('bias'):
                value = 0.3 * noise
            else:                                   # Conv weights: unit-variance outputs.
                value = noise * p[0].numel() ** -0.5
            p.copy_(value.to(p.dtype))
    return module

#----------------------------------------------------------------------------
# Layout and size.

def test_parameter_count_paper_config():
    # FPA/U-Net has 14,423,366 parameters, its FPA 6,437,891 (reference-checkpoint-params.txt).
    assert misc.count_params(UNet(img_channels=3, dim=64)) == 14_423_366 - 6_437_891 == 7_985_475

def test_reference_layout_parameter_counts():
    layout = parse_reference_params()
    total = sum(torch.Size(s).numel() for n, s in layout['lstm_delta_split_v2_unet'] if not n.startswith('mod_dict.'))
    fpa = sum(torch.Size(s).numel() for n, s in layout['lstm_delta_split_v2'] if not n.startswith('mod_dict.'))
    assert (total, fpa) == (14_423_366, 6_437_891)

def test_state_dict_matches_reference_layout_tensor_for_tensor():
    layout = [(n[len('u_net.'):], s) for n, s in parse_reference_params()['lstm_delta_split_v2_unet'] if n.startswith('u_net.')]
    ours = [(n, tuple(t.shape)) for n, t in UNet(img_channels=3, dim=64, dim_mults=(1, 2, 4)).state_dict().items()]
    assert len(ours) == len(layout) == 191
    for (ref_name, ref_shape), (our_name, our_shape) in zip(layout, ours):
        assert ref_shape == our_shape, f'reference {ref_name} {ref_shape} vs ours {our_name} {our_shape}'
        assert to_reference_name(our_name) == ref_name

#----------------------------------------------------------------------------
# Attention against the naive per-head loops, float64.

def _attention_inputs(channels=12, size=(3, 5), batch=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn([batch, channels, *size], generator=gen, dtype=torch.float64)

@pytest.mark.parametrize('heads,head_dim', [(1, 4), (3, 5)])
def test_linear_attention_matches_naive(heads, head_dim):
    x = _attention_inputs()
    attn = randomize_(LinearAttention(12, heads, head_dim).double(), seed=1)
    core = naive_linear_attention_core(x, attn.to_qkv.weight, heads, head_dim)
    expected = naive_layer_norm(F.conv2d(core, attn.to_out.weight, attn.to_out.bias), attn.out_norm.weight, attn.out_norm.bias)
    assert_close(attn(x), expected, rtol=1e-12, atol=1e-12, name='LinearAttention')

@pytest.mark.parametrize('heads,head_dim', [(1, 4), (3, 5)])
def test_full_attention_matches_naive(heads, head_dim):
    x = _attention_inputs()
    attn = randomize_(FullAttention(12, heads, head_dim).double(), seed=2)
    core = naive_full_attention_core(x, attn.to_qkv.weight, heads, head_dim)
    expected = F.conv2d(core, attn.to_out.weight, attn.to_out.bias)
    assert_close(attn(x), expected, rtol=1e-12, atol=1e-12, name='FullAttention')

@pytest.mark.parametrize('linear', [True, False])
def test_attention_block_is_residual_prenorm(linear):
    x = _attention_inputs()
    block = randomize_(AttentionBlock(12, linear=linear, num_heads=2, head_dim=4).double(), seed=3)
    core_fn = naive_linear_attention_core if linear else naive_full_attention_core
    y = naive_layer_norm(x, block.norm.weight, block.norm.bias)
    y = F.conv2d(core_fn(y, block.attn.to_qkv.weight, 2, 4), block.attn.to_out.weight, block.attn.to_out.bias)
    if linear:
        y = naive_layer_norm(y, block.attn.out_norm.weight, block.attn.out_norm.bias)
    assert_close(block(x), x + y, rtol=1e-12, atol=1e-12, name='AttentionBlock')

#----------------------------------------------------------------------------
# The whole U-Net.

@pytest.mark.parametrize('img_channels,dim,dim_mults,size', [(3, 8, (1, 2, 4), 8), (1, 16, (1, 2), 4), (3, 8, (1, 1, 2, 2), 16)])
def test_unet_matches_functional_reference(img_channels, dim, dim_mults, size):
    net = randomize_(UNet(img_channels=img_channels, dim=dim, dim_mults=dim_mults, attn_heads=2, attn_head_dim=4).double(), seed=4)
    ref_sd = {to_reference_name(n): t for n, t in net.state_dict().items()}
    x = torch.randn([2, img_channels, size, size], generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = reference_unet_forward(ref_sd, x, heads=2, head_dim=4)
    actual = net(x)
    assert actual.shape == x.shape
    assert expected.abs().mean() > 0.1, 'test inputs should give a non-trivial output'
    assert_close(actual, expected, rtol=1e-10, atol=1e-10, name='UNet')

def to_reference_name(name: str) -> str:
    """Our parameter name -> the reference's (the inverse of legacy.py's rename, written independently)."""
    for pattern, repl in [
        (r'^(downs|ups)\.(\d+)\.res1\.', r'\1.\2.0.'),
        (r'^(downs|ups)\.(\d+)\.res2\.', r'\1.\2.1.'),
        (r'^(downs|ups)\.(\d+)\.attn\.', r'\1.\2.2.'),
        (r'^(downs|ups)\.(\d+)\.resample\.', r'\1.\2.3.'),
        (r'\.attn\.out_norm\.weight$', '.fn.fn.to_out.1.g'),
        (r'\.attn\.out_norm\.bias$', '.fn.fn.to_out.1.b'),
        (r'^((?:downs|ups)\.\d+\.2)\.attn\.to_out\.', r'\1.fn.fn.to_out.0.'),
        (r'\.attn\.', '.fn.fn.'),
        (r'^((?:downs|ups)\.\d+\.2|mid_attn)\.norm\.weight$', r'\1.fn.norm.g'),
        (r'^((?:downs|ups)\.\d+\.2|mid_attn)\.norm\.bias$', r'\1.fn.norm.b'),
    ]:
        name = re.sub(pattern, repl, name)
    return name

def test_to_reference_name_matches_positional_layout():
    ours = list(UNet(img_channels=3, dim=8).state_dict())
    assert [to_reference_name(n) for n in ours] == reference_unet_names()

#----------------------------------------------------------------------------
# Shapes, gradients, persistence, bad input.

def test_output_shape_and_gradients():
    torch.manual_seed(0)
    net = UNet(img_channels=3, dim=8)
    x = torch.randn([2, 3, 16, 16], requires_grad=True)
    y = net(x)
    assert y.shape == (2, 3, 16, 16) and y.dtype == torch.float32 and torch.isfinite(y).all()
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f'no gradient reaches {name}'

def test_gradcheck_tiny():
    torch.manual_seed(0)
    net = randomize_(UNet(img_channels=1, dim=8, dim_mults=(1, 2), attn_heads=1, attn_head_dim=4).double(), seed=6)
    x = torch.randn([1, 1, 4, 4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,), eps=1e-6, atol=1e-6, fast_mode=True)

def test_init_kwargs_are_plain_data():
    net = UNet(img_channels=3, dim=8, dim_mults=[1, 2])
    assert dict(net.init_kwargs) == dict(img_channels=3, dim=8, dim_mults=[1, 2], norm_groups=8, attn_heads=4, attn_head_dim=32)
    assert net.class_name == 'networks.unet.UNet'

def test_bad_input():
    net = UNet(img_channels=3, dim=8)
    with pytest.raises(AssertionError, match='divisible by 4'):
        net(torch.zeros([1, 3, 6, 6]))
    with pytest.raises(AssertionError):
        net(torch.zeros([1, 1, 8, 8]))
    with pytest.raises(AssertionError, match='norm_groups'):
        UNet(img_channels=3, dim=12)

#----------------------------------------------------------------------------
