"""The U-Net refiner of FPA/U-Net (Irie & Schmidhuber, ICLR 2023, section 3.3).

A diffusion-model-style convolutional U-Net without time embedding that maps the FPA's
painted image to the final image in one step (see docs/FPA.md section 4 for the exact
architecture this module reproduces):

    init 7x7 conv -> [ResBlock, ResBlock, x + LinAttn(LN(x)), skip, 4x4/2 conv] per level
    -> ResBlock, x + Attn(LN(x)), ResBlock
    -> [concat skip, ResBlock, ResBlock, x + LinAttn(LN(x)), 4x4/2 transposed conv] per level
    -> concat first activation, ResBlock, 1x1 conv.

Parameter shapes equal the reference implementation's tensor for tensor, and the modules
are registered in the reference's order, so its state dict maps onto ours by a short list
of renames (legacy.py, docs/legacy.md).
"""

import torch

from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------
# Convolutional blocks.

class Block(torch.nn.Module):
    """3x3 conv -> GroupNorm -> SiLU."""
    def __init__(self,
        in_channels,            # Input channels.
        out_channels,           # Output channels.
        norm_groups,            # Number of GroupNorm groups.
    ):
        super().__init__()
        self.proj = torch.nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = torch.nn.GroupNorm(norm_groups, out_channels)

    def forward(self, x):
        return torch.nn.functional.silu(self.norm(self.proj(x)))

class ResBlock(torch.nn.Module):
    """Two Blocks plus a skip that is the identity, or a 1x1 conv when the width changes."""
    def __init__(self,
        in_channels,            # Input channels.
        out_channels,           # Output channels.
        norm_groups,            # Number of GroupNorm groups.
    ):
        super().__init__()
        self.block1 = Block(in_channels, out_channels, norm_groups)
        self.block2 = Block(out_channels, out_channels, norm_groups)
        self.res_conv = torch.nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None

    def forward(self, x):
        skip = x if self.res_conv is None else self.res_conv(x)
        return self.block2(self.block1(x)) + skip

#----------------------------------------------------------------------------
# Attention.

class ChannelNorm(torch.nn.Module):
    """Layer norm over the channel axis of an NCHW tensor: biased variance, eps added to
    the variance, then per-channel gain and bias (stored as [1, C, 1, 1] like the reference)."""
    def __init__(self,
        channels,               # Number of channels.
        eps = 1e-5,             # Added to the variance.
    ):
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones([1, channels, 1, 1]))
        self.bias = torch.nn.Parameter(torch.zeros([1, channels, 1, 1]))

    def forward(self, x):
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, unbiased=False, keepdim=True)
        return (x - mean) * (var + self.eps).rsqrt() * self.weight + self.bias

    def extra_repr(self):
        return f'channels={self.weight.shape[1]}, eps={self.eps:g}'

def split_heads(qkv, num_heads):
    """[B, 3*heads*head_dim, H, W] -> q, k, v each [B, heads, head_dim, H*W] (head-major channels)."""
    B, _, H, W = qkv.shape
    q, k, v = qkv.reshape(B, 3, num_heads, -1, H * W).unbind(dim=1)
    return q, k, v

class HeadProjections(torch.nn.Module):
    """The 1x1 projections shared by both attentions: x -> q, k, v (num_heads x head_dim each,
    no bias) and the heads back to `channels`."""
    def __init__(self,
        channels,               # Input and output channels.
        num_heads,              # Number of heads.
        head_dim,               # Features per head.
    ):
        super().__init__()
        self.num_heads = num_heads
        self.scale = head_dim ** -0.5
        hidden = num_heads * head_dim
        self.to_qkv = torch.nn.Conv2d(channels, hidden * 3, kernel_size=1, bias=False)
        self.to_out = torch.nn.Conv2d(hidden, channels, kernel_size=1)

class LinearAttention(HeadProjections):
    """Linear attention: per head, context = softmax_n(k) v^T, out = context^T softmax_d(q) / sqrt(d)."""
    def __init__(self, channels, num_heads, head_dim): # As HeadProjections.
        super().__init__(channels, num_heads, head_dim)
        self.out_norm = ChannelNorm(channels)

    def forward(self, x):
        B, _, H, W = x.shape
        q, k, v = split_heads(self.to_qkv(x), self.num_heads)      # [B, heads, d, H*W]
        q = q.softmax(dim=-2) * self.scale                          # Over features.
        k = k.softmax(dim=-1)                                       # Over positions.
        context = torch.einsum('bhdn,bhen->bhde', k, v)             # [B, heads, d, d]
        out = torch.einsum('bhde,bhdn->bhen', context, q)           # [B, heads, d, H*W]
        return self.out_norm(self.to_out(out.reshape(B, -1, H, W)))

class FullAttention(HeadProjections):
    """Softmax attention over all H*W positions, per head."""

    def forward(self, x):
        B, _, H, W = x.shape
        q, k, v = split_heads(self.to_qkv(x), self.num_heads)      # [B, heads, d, H*W]
        logits = torch.einsum('bhdi,bhdj->bhij', q * self.scale, k) # [B, heads, queries, keys]
        out = torch.einsum('bhij,bhdj->bhdi', logits.softmax(dim=-1), v)
        return self.to_out(out.reshape(B, -1, H, W))

class AttentionBlock(torch.nn.Module):
    """Residual pre-norm attention: x + attn(norm(x))."""
    def __init__(self,
        channels,               # Input and output channels.
        linear,                 # True = LinearAttention, False = FullAttention.
        num_heads,              # Number of heads.
        head_dim,               # Features per head.
    ):
        super().__init__()
        attn_class = LinearAttention if linear else FullAttention
        self.attn = attn_class(channels, num_heads, head_dim)      # Registered before norm, as in the reference.
        self.norm = ChannelNorm(channels)

    def forward(self, x):
        return x + self.attn(self.norm(x))

#----------------------------------------------------------------------------
# One resolution level of the encoder or decoder.

class Level(torch.nn.Module):
    """ResBlock(in->out), ResBlock(out->out), residual linear attention, then an optional
    4x4 stride-2 conv ('down') or transposed conv ('up') at width out."""
    def __init__(self,
        in_channels,            # Input channels (including a concatenated skip).
        out_channels,           # Output channels.
        resample,               # 'down', 'up' or None.
        norm_groups,            # Number of GroupNorm groups.
        attn_heads,             # Attention heads.
        attn_head_dim,          # Features per attention head.
    ):
        super().__init__()
        assert resample in ('down', 'up', None), f'resample must be "down", "up" or None, not {resample!r}'
        self.res1 = ResBlock(in_channels, out_channels, norm_groups)
        self.res2 = ResBlock(out_channels, out_channels, norm_groups)
        self.attn = AttentionBlock(out_channels, linear=True, num_heads=attn_heads, head_dim=attn_head_dim)
        conv_class = {'down': torch.nn.Conv2d, 'up': torch.nn.ConvTranspose2d, None: None}[resample]
        self.resample = conv_class(out_channels, out_channels, kernel_size=4, stride=2, padding=1) if conv_class else None

    def forward(self, x):
        """Returns (features before resampling, resampled features)."""
        x = self.attn(self.res2(self.res1(x)))
        return x, (x if self.resample is None else self.resample(x))

#----------------------------------------------------------------------------

@persistence.persistent_class
class UNet(torch.nn.Module):
    def __init__(self,
        img_channels,           # Image channels in and out.
        dim             = 64,   # Base width D (the reference uses D = image side N).
        dim_mults       = (1, 2, 4), # Width multipliers per level; len - 1 = number of 2x downsamplings.
        norm_groups     = 8,    # GroupNorm groups in every Block; all widths must be divisible by it.
        attn_heads      = 4,    # Attention heads.
        attn_head_dim   = 32,   # Features per attention head.
    ):
        super().__init__()
        dim_mults = [int(m) for m in dim_mults]
        assert img_channels >= 1 and dim >= 1 and len(dim_mults) >= 1, 'UNet: img_channels, dim and dim_mults must be positive/non-empty'
        widths = [dim] + [dim * m for m in dim_mults]
        assert all(w % norm_groups == 0 for w in widths), f'UNet: widths {widths} must be divisible by norm_groups={norm_groups}'
        self.img_channels = img_channels
        self.num_downsamplings = len(dim_mults) - 1
        level = dict(norm_groups=norm_groups, attn_heads=attn_heads, attn_head_dim=attn_head_dim)
        pairs = list(zip(widths[:-1], widths[1:]))
        is_last = lambda i: i == len(pairs) - 1

        # Registration order follows the reference state dict (init, downs, ups, mid, final).
        self.init_conv = torch.nn.Conv2d(img_channels, dim, kernel_size=7, padding=3)
        self.downs = torch.nn.ModuleList([
            Level(a, b, resample=None if is_last(i) else 'down', **level) for i, (a, b) in enumerate(pairs)])
        self.ups = torch.nn.ModuleList([
            Level(b * 2, a, resample=None if is_last(i) else 'up', **level) for i, (a, b) in enumerate(reversed(pairs))])
        mid = widths[-1]
        self.mid_block1 = ResBlock(mid, mid, norm_groups)
        self.mid_attn = AttentionBlock(mid, linear=False, num_heads=attn_heads, head_dim=attn_head_dim)
        self.mid_block2 = ResBlock(mid, mid, norm_groups)
        self.final_res_block = ResBlock(dim * 2, dim, norm_groups)
        self.final_conv = torch.nn.Conv2d(dim, img_channels, kernel_size=1)

    def forward(self, x):
        B, C, H, W = x.shape
        misc.assert_shape(x, [None, self.img_channels, None, None], name='UNet input')
        factor = 2 ** self.num_downsamplings
        assert H % factor == 0 and W % factor == 0, f'UNet: image size {H}x{W} must be divisible by {factor}'
        x = self.init_conv(x)
        first = x
        skips = []
        for level in self.downs:
            skip, x = level(x)
            skips.append(skip)
        x = self.mid_block2(self.mid_attn(self.mid_block1(x)))
        for level in self.ups:
            _, x = level(torch.cat([x, skips.pop()], dim=1))
        x = self.final_conv(self.final_res_block(torch.cat([x, first], dim=1)))
        misc.assert_shape(x, [B, C, H, W], name='UNet output')
        return x

    def extra_repr(self):
        return ', '.join(f'{k}={v}' for k, v in self.init_kwargs.items())

#----------------------------------------------------------------------------
