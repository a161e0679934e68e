"""StyleGAN2 generator and the residual discriminator shared by every generator.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (CVPR 2020), with the
configuration of StyleGAN2-ADA (Karras et al., NeurIPS 2020) as kept in StyleGAN3's
`networks_stylegan2`: fp16 in the highest resolutions with clamped activations, `update_emas`,
`w_avg_beta` 0.998, flat synthesis keywords, fp32 whenever the tensors are not on CUDA.

- Equalised learning rate (StyleGAN2 paper section B.1, ProGAN section 4.1): weights are stored
  as N(0, 1/lr_multiplier^2) and scaled at run time by lr_multiplier / sqrt(fan_in).
- Weight (de)modulation, paper eq. 1 and 3: w'_oikk = s_i * w_oikk, then
  w''_oikk = w'_oikk / sqrt(sum_ikk w'_oikk^2 + eps). Computed either as one grouped
  convolution with per-sample weights (`fused_modconv=True`) or as scale activations ->
  shared convolution -> scale outputs (+ noise), which is the same linear map.
- Generator architecture 'skip' (paper fig. 7b): each block's toRGB output is added to the
  FIR-upsampled image of the previous block.
- Discriminator architecture 'resnet' (paper fig. 7c), minibatch standard deviation (ProGAN
  section 3), conditioning by projection (Miyato & Koyama 2018): logits = <out, cmap> /
  sqrt(cmap_dim), and Freeze-D (Mo et al. 2020): the first `freeze_layers` layers hold their
  weights as buffers, so they are never trained, whatever `requires_grad_` is called with.
"""

import math

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import bias_act
from torch_utils.ops import conv2d_resample
from torch_utils.ops import fma
from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------
# Helpers.

# Default output gain per activation, keeping the signal's second moment near 1 (He et al.).
_ACTIVATION_GAIN = dict(linear=1.0, relu=math.sqrt(2), lrelu=math.sqrt(2), swish=math.sqrt(2),
                        tanh=1.0, sigmoid=1.0, elu=1.0, selu=1.0, softplus=1.0)

# act(g * x) == g * act(x) for g > 0.
_POSITIVELY_HOMOGENEOUS = ('linear', 'relu', 'lrelu')

# Gain of each branch of a residual block, so that their sum keeps the variance (a Python
# float: a numpy scalar passed in forward() would be traced as a tensor by torch.compile).
_RESNET_BRANCH_GAIN = math.sqrt(0.5)

def _activation_gain(activation: str) -> float:
    if activation not in _ACTIVATION_GAIN:
        raise ValueError(f'activation="{activation}": expected one of {", ".join(_ACTIVATION_GAIN)}')
    return _ACTIVATION_GAIN[activation]

def _check_resolution(img_resolution: int, who: str) -> int:
    """log2 of the resolution, or a ValueError naming the value."""
    if not isinstance(img_resolution, int) or img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ValueError(f'{who}: img_resolution={img_resolution!r}, expected a power of two >= 4')
    return int(np.log2(img_resolution))

def _check_labels(c: torch.Tensor | None, batch_size: int, c_dim: int, who: str) -> torch.Tensor | None:
    """The label tensor [N, c_dim] for a conditional network, None for an unconditional one."""
    if c_dim == 0:
        if c is not None and c.numel() != 0:
            raise ValueError(f'{who}: c has shape {list(c.shape)}, but the network is unconditional (c_dim=0); pass None or an [N, 0] tensor')
        return None
    if c is None or c.ndim != 2 or c.shape[0] != batch_size or c.shape[1] != c_dim:
        got = 'None' if c is None else str(list(c.shape))
        raise ValueError(f'{who}: c is {got}, expected labels of shape [{batch_size}, {c_dim}] (c_dim={c_dim})')
    return c

def _autocast_enabled(x: torch.Tensor) -> bool:
    return torch.is_autocast_enabled(x.device.type)

def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()

#----------------------------------------------------------------------------
# Modulated convolution (paper eq. 1-3), fused and non-fused.

def modulated_conv2d(
    x,                          # Input activations: [N, I, H, W].
    weight,                     # Shared weights: [O, I, k, k] (without demodulation, fold the equalised-lr gain into styles).
    styles,                     # Per-sample input-channel scales: [N, I].
    noise           = None,     # Noise to add to the output, broadcastable to [N, O, H', W'], or None.
    up              = 1,        # Integer upsampling factor.
    down            = 1,        # Integer downsampling factor.
    padding         = 0,        # Padding of the (upsampled) input.
    resample_filter = None,     # FIR filter for up/downsampling (from upfirdn2d.setup_filter).
    demodulate      = True,     # Normalise each output channel to unit expected second moment (eq. 3)?
    flip_weight     = True,     # False = convolution, True = correlation (as torch.nn.functional.conv2d).
    fused_modconv   = True,     # One grouped convolution with per-sample weights, or scale-conv-scale?
    out_gain        = 1,        # Multiply the convolution output (not the noise) by this.
):
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    misc.assert_shape(weight, [out_channels, in_channels, kh, kw], name='weight')
    misc.assert_shape(x, [batch_size, in_channels, None, None], name='x')
    misc.assert_shape(styles, [batch_size, in_channels], name='styles')

    # In fp16, scale weights and styles to max-norm 1 first; demodulation removes the scale again,
    # and it keeps the products below the fp16 range.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / np.sqrt(in_channels * kh * kw) / weight.norm(float('inf'), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float('inf'), dim=1, keepdim=True)

    # Demodulation coefficients [N, O]: sum_ikk (s_i w_oikk)^2 = sum_i s_i^2 sum_kk w_oikk^2, one
    # small matmul instead of materialising the per-sample weights.
    dcoefs = None
    if demodulate:
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()

    # The output gain rides on the per-channel output scales (or, without them, on the styles,
    # the map being linear in them), so it costs no pass over the activations.
    if out_gain != 1 and demodulate:
        dcoefs = dcoefs * out_gain
    elif out_gain != 1:
        styles = styles * out_gain

    # Non-fused: modulate the activations, convolve with the shared weight, demodulate the output.
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample.conv2d_resample(x=x, w=weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)
        if demodulate and noise is not None:
            x = fma.fma(x, dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1), noise.to(x.dtype))
        elif demodulate:
            x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        elif noise is not None:
            x = x + noise.to(x.dtype)
        return x

    # Fused: per-sample weights, the batch becomes the group dimension of one convolution.
    w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)      # [N, O, I, k, k]
    if demodulate:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])                                      # [1, N*I, H, W]
    w = w.reshape(-1, in_channels, kh, kw)                                  # [N*O, I, k, k]
    x = conv2d_resample.conv2d_resample(x=x, w=w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])                             # [N, O, H', W']
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x

#----------------------------------------------------------------------------
# Equalised-learning-rate layers.

class FullyConnectedLayer(torch.nn.Module):
    def __init__(self,
        in_features,                # Number of input features.
        out_features,               # Number of output features.
        bias            = True,     # Add a bias?
        activation      = 'linear', # Activation function name (see torch_utils.ops.bias_act).
        lr_multiplier   = 1,        # Learning-rate multiplier of this layer.
        bias_init       = 0,        # Initial value of the bias.
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.act_gain = _activation_gain(activation)
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == 'linear' and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        x = x.matmul(w.t())
        return bias_act.bias_act(x, b, act=self.activation, gain=self.act_gain)

    def extra_repr(self):
        return f'in_features={self.in_features:d}, out_features={self.out_features:d}, activation={self.activation:s}'

#----------------------------------------------------------------------------

class Conv2dLayer(torch.nn.Module):
    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        kernel_size,                    # Width and height of the convolution kernel.
        bias            = True,         # Add a bias?
        activation      = 'linear',     # Activation function name.
        up              = 1,            # Integer upsampling factor.
        down            = 1,            # Integer downsampling factor.
        resample_filter = [1,3,3,1],    # Low-pass filter for up/downsampling.
        conv_clamp      = None,         # Clamp the output to +-X, None = no clamping.
        channels_last   = False,        # Store the weight in channels_last memory format?
        trainable       = True,         # False = weight and bias are buffers (Freeze-D).
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))
        self.act_gain = _activation_gain(activation)

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias) if bias is not None else None
        else:
            self.register_buffer('weight', weight)
            self.register_buffer('bias', bias)

    def forward(self, x, gain=1):
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        flip_weight = (self.up == 1) # Transposed convolution needs the flipped kernel to stay a correlation.
        x = conv2d_resample.conv2d_resample(x=x, w=w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down, padding=self.padding, flip_weight=flip_weight)
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, b, act=self.activation, gain=act_gain, clamp=act_clamp)

    def extra_repr(self):
        return ' '.join([
            f'in_channels={self.in_channels:d}, out_channels={self.out_channels:d}, activation={self.activation:s},',
            f'up={self.up}, down={self.down}, trainable={isinstance(self.weight, torch.nn.Parameter)}'])

#----------------------------------------------------------------------------
# Generator: mapping network z, c -> w.

class MappingNetwork(torch.nn.Module):
    def __init__(self,
        z_dim,                      # Input latent (Z) dimensionality, 0 = no latent.
        c_dim,                      # Conditioning label (C) dimensionality, 0 = no label.
        w_dim,                      # Intermediate latent (W) dimensionality.
        num_ws,                     # Number of copies of w to output, None = output [N, w_dim].
        num_layers      = 8,        # Number of mapping layers.
        embed_features  = None,     # Label embedding dimensionality, None = same as w_dim.
        layer_features  = None,     # Hidden layer width, None = same as w_dim.
        activation      = 'lrelu',  # Activation of the hidden layers.
        lr_multiplier   = 0.01,     # Learning-rate multiplier of the mapping layers.
        w_avg_beta      = 0.998,    # Decay of the running mean of w (truncation), None = no tracking.
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f'MappingNetwork: num_layers={num_layers}, expected at least 1')
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier)
            setattr(self, f'fc{idx}', layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        # Embed, normalise and concatenate the inputs.
        x = None
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f'mapping: z has shape {None if z is None else list(z.shape)}, expected [N, {self.z_dim}] (z_dim={self.z_dim})')
            x = normalize_2nd_moment(z.to(self.fc0.weight.dtype))
            batch_size = z.shape[0]
        else:
            batch_size = c.shape[0] if c is not None else 0
        c = _check_labels(c, batch_size, self.c_dim, 'mapping')
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(self.embed.weight.dtype)))
            x = torch.cat([x, y], dim=1) if x is not None else y

        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)
        x = x.to(self.fc0.weight.dtype) # Full precision also under autocast.

        # Track the running mean of w for truncation.
        if update_emas and self.w_avg_beta is not None and self.num_ws is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        # Broadcast to [N, num_ws, w_dim] and truncate toward w_avg (psi = 1: no truncation).
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.num_ws is None or self.w_avg_beta is None:
                raise ValueError('mapping: truncation needs num_ws and w_avg tracking (w_avg_beta)')
            if truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x

    def extra_repr(self):
        return f'z_dim={self.z_dim:d}, c_dim={self.c_dim:d}, w_dim={self.w_dim:d}, num_ws={self.num_ws}, num_layers={self.num_layers:d}'

#----------------------------------------------------------------------------
# Generator: synthesis layers and blocks.

class SynthesisLayer(torch.nn.Module):
    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        w_dim,                          # Intermediate latent (W) dimensionality.
        resolution,                     # Output resolution of this layer.
        kernel_size     = 3,            # Convolution kernel size.
        up              = 1,            # Integer upsampling factor.
        use_noise       = True,         # Add per-pixel noise (paper section 2.2)?
        activation      = 'lrelu',      # Activation function name.
        resample_filter = [1,3,3,1],    # Low-pass filter for upsampling.
        conv_clamp      = None,         # Clamp the output to +-X, None = no clamping.
        channels_last   = False,        # Store the weight in channels_last memory format?
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = _activation_gain(activation)

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode='random', fused_modconv=True, gain=1):
        if noise_mode not in ('random', 'const', 'none'):
            raise ValueError(f'noise_mode="{noise_mode}": expected random, const or none')
        in_resolution = self.resolution // self.up
        misc.assert_shape(x, [None, self.in_channels, in_resolution, in_resolution], name='SynthesisLayer input')
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == 'random':
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        if self.use_noise and noise_mode == 'const':
            noise = self.noise_const * self.noise_strength

        # clamp(act(y + n + b) * g) with g = activation gain * caller's gain. For positively homogeneous
        # activations act(z) * g = act(g * z), so g goes into the convolution's output scales, the
        # noise and the bias instead of a separate pass over the activations (same values).
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        fold_gain = self.activation in _POSITIVELY_HOMOGENEOUS and act_gain > 0
        out_gain = act_gain if fold_gain else 1
        bias = self.bias * out_gain
        if noise is not None and out_gain != 1:
            noise = noise * out_gain

        flip_weight = (self.up == 1) # Transposed convolution needs the flipped kernel to stay a correlation.
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, noise=noise, up=self.up, padding=self.padding,
            resample_filter=self.resample_filter, flip_weight=flip_weight, fused_modconv=fused_modconv, out_gain=out_gain)
        return bias_act.bias_act(x, bias.to(x.dtype), act=self.activation, gain=act_gain / out_gain, clamp=act_clamp)

    def extra_repr(self):
        return ' '.join([
            f'in_channels={self.in_channels:d}, out_channels={self.out_channels:d}, w_dim={self.w_dim:d},',
            f'resolution={self.resolution:d}, up={self.up}, activation={self.activation:s}'])

#----------------------------------------------------------------------------

class ToRGBLayer(torch.nn.Module):
    def __init__(self,
        in_channels,                # Number of input channels.
        out_channels,               # Number of output (image) channels.
        w_dim,                      # Intermediate latent (W) dimensionality.
        kernel_size     = 1,        # Convolution kernel size.
        conv_clamp      = None,     # Clamp the output to +-X, None = no clamping.
        channels_last   = False,    # Store the weight in channels_last memory format?
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))

    def forward(self, x, w, fused_modconv=True):
        # Without demodulation the equalised-lr gain goes into the styles.
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)

    def extra_repr(self):
        return f'in_channels={self.in_channels:d}, out_channels={self.out_channels:d}, w_dim={self.w_dim:d}'

#----------------------------------------------------------------------------

class SynthesisBlock(torch.nn.Module):
    def __init__(self,
        in_channels,                            # Number of input channels, 0 = first block (learned constant input).
        out_channels,                           # Number of output channels.
        w_dim,                                  # Intermediate latent (W) dimensionality.
        resolution,                             # Resolution of this block.
        img_channels,                           # Number of output color channels.
        is_last,                                # Is this the last block?
        architecture            = 'skip',       # 'orig', 'skip' or 'resnet'.
        resample_filter         = [1,3,3,1],    # Low-pass filter for upsampling.
        conv_clamp              = 256,          # Clamp the convolution outputs to +-X, None = no clamping.
        use_fp16                = False,        # Run this block in fp16 (CUDA only)?
        fp16_channels_last      = False,        # Use channels_last memory format in fp16?
        fused_modconv_default   = 'auto',       # fused_modconv when the caller passes None: True, False, 'inference_only' or 'auto'.
        **layer_kwargs,                         # Arguments for SynthesisLayer.
    ):
        if architecture not in ('orig', 'skip', 'resnet'):
            raise ValueError(f'architecture="{architecture}": expected orig, skip or resnet')
        if fused_modconv_default not in (True, False, 'inference_only', 'auto'):
            raise ValueError(f'fused_modconv_default={fused_modconv_default!r}: expected True, False, inference_only or auto')
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.fused_modconv_default = fused_modconv_default
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                resample_filter=resample_filter, conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
            conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == 'skip':
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp, channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, update_emas=False, **layer_kwargs):
        _ = update_emas # No running statistics in the synthesis network.
        misc.assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], name=f'b{self.resolution} ws')
        w_iter = iter(ws.unbind(dim=1))
        if ws.device.type != 'cuda':
            force_fp32 = True
        full_dtype = self.conv1.weight.dtype # float32, or float64 for tests.
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else full_dtype
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        if fused_modconv is None:
            fused_modconv = self.fused_modconv_default
        if fused_modconv == 'inference_only':
            fused_modconv = (not self.training)
        if fused_modconv == 'auto': # Grouped convolutions pay off only in cuDNN inference.
            fused_modconv = (not self.training) and ws.device.type == 'cuda'

        # Input: the learned constant, or the previous block's features.
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            misc.assert_shape(x, [None, self.in_channels, self.resolution // 2, self.resolution // 2], name=f'b{self.resolution} input')
            x = x.to(dtype=x.dtype if _autocast_enabled(x) else dtype, memory_format=memory_format) # Autocast picks the dtype per op.

        # Main layers.
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == 'resnet':
            y = self.skip(x, gain=_RESNET_BRANCH_GAIN)
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=_RESNET_BRANCH_GAIN, **layer_kwargs)
            x = y.add_(x)
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        # Image: upsample the previous image, add this block's toRGB (always in full precision).
        if img is not None:
            misc.assert_shape(img, [None, self.img_channels, self.resolution // 2, self.resolution // 2], name=f'b{self.resolution} img')
            img = upfirdn2d.upsample2d(img, self.resample_filter).to(full_dtype)
        if self.is_last or self.architecture == 'skip':
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=full_dtype, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y

        assert x.dtype == dtype or _autocast_enabled(x), f'b{self.resolution}: features are {x.dtype}, expected {dtype}'
        assert img is None or img.dtype == full_dtype
        return x, img

    def extra_repr(self):
        return f'resolution={self.resolution:d}, architecture={self.architecture:s}, use_fp16={self.use_fp16}'

#----------------------------------------------------------------------------

def channel_counts(channel_base: int, channel_max: int, resolutions: list[int], where: str) -> dict[int, int]:
    """{resolution: min(channel_base // resolution, channel_max)}; ValueError when a count is below 1."""
    channels = {res: min(channel_base // res, channel_max) for res in resolutions}
    empty = [res for res, num in channels.items() if num < 1]
    if empty:
        raise ValueError(f'{where}: channel_base={channel_base}, channel_max={channel_max} give no channels at {max(empty)}x{max(empty)}; '
                         f'channel_base must be at least {max(empty)} and channel_max at least 1')
    return channels

#----------------------------------------------------------------------------

class SynthesisNetwork(torch.nn.Module):
    def __init__(self,
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output image resolution.
        img_channels,               # Number of color channels.
        channel_base    = 32768,    # Overall multiplier for the number of channels.
        channel_max     = 512,      # Maximum number of channels in any layer.
        num_fp16_res    = 4,        # Use fp16 for the N highest resolutions (CUDA only).
        **block_kwargs,             # Arguments for SynthesisBlock.
    ):
        super().__init__()
        img_resolution_log2 = _check_resolution(img_resolution, 'SynthesisNetwork')
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = img_resolution_log2
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2 ** i for i in range(2, img_resolution_log2 + 1)]
        channels_dict = channel_counts(channel_base, channel_max, self.block_resolutions, 'SynthesisNetwork')
        fp16_resolution = max(2 ** (img_resolution_log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels_dict[res // 2] if res > 4 else 0
            out_channels = channels_dict[res]
            use_fp16 = (res >= fp16_resolution)
            is_last = (res == self.img_resolution)
            block = SynthesisBlock(in_channels, out_channels, w_dim=w_dim, resolution=res,
                img_channels=img_channels, is_last=is_last, use_fp16=use_fp16, **block_kwargs)
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f'b{res}', block)

    def forward(self, ws, **block_kwargs):
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim], name='ws')
        full_dtype = self.b4.conv1.weight.dtype # float32, or float64 for tests.
        ws = ws.to(full_dtype)
        # Consecutive blocks share one w: a block's toRGB uses the same w as the next block's conv0.
        block_ws = []
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            block_ws.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv

        x = img = None
        for res, cur_ws in zip(self.block_resolutions, block_ws):
            x, img = getattr(self, f'b{res}')(x, img, cur_ws, **block_kwargs)
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], name='image')
        return img.to(full_dtype)

    def extra_repr(self):
        return ' '.join([
            f'w_dim={self.w_dim:d}, num_ws={self.num_ws:d},',
            f'img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d},',
            f'num_fp16_res={self.num_fp16_res:d}'])

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    """Mapping network + synthesis network. Families that share the mapping network (StyleGAN3)
    subclass this with their own `synthesis_class` and mapping defaults."""
    synthesis_class = SynthesisNetwork      # Built with w_dim, img_resolution, img_channels and **synthesis_kwargs.
    mapping_defaults = {}                   # MappingNetwork arguments that mapping_kwargs may override.

    def __init__(self,
        z_dim,                      # Input latent (Z) dimensionality.
        c_dim,                      # Conditioning label (C) dimensionality, 0 = unconditional.
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output resolution (a power of two).
        img_channels,               # Number of output color channels.
        mapping_kwargs  = {},       # Arguments for MappingNetwork (num_layers, lr_multiplier, w_avg_beta, ...).
        **synthesis_kwargs,         # Arguments for SynthesisNetwork and its blocks (channel_base, channel_max, num_fp16_res, conv_clamp, architecture, ...).
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = self.synthesis_class(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **{**self.mapping_defaults, **mapping_kwargs})

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)

#----------------------------------------------------------------------------
# Discriminator.

class DiscriminatorBlock(torch.nn.Module):
    def __init__(self,
        in_channels,                        # Number of input channels, 0 = first block (reads the image).
        tmp_channels,                       # Number of intermediate channels.
        out_channels,                       # Number of output channels.
        resolution,                         # Resolution of this block.
        img_channels,                       # Number of input color channels.
        first_layer_idx,                    # Index of this block's first layer (for Freeze-D).
        architecture        = 'resnet',     # 'orig', 'skip' or 'resnet'.
        activation          = 'lrelu',      # Activation function name.
        resample_filter     = [1,3,3,1],    # Low-pass filter for downsampling.
        conv_clamp          = None,         # Clamp the convolution outputs to +-X, None = no clamping.
        use_fp16            = False,        # Run this block in fp16 (CUDA only)?
        fp16_channels_last  = False,        # Use channels_last memory format in fp16?
        freeze_layers       = 0,            # Layers with an index below this are frozen (Freeze-D).
    ):
        if architecture not in ('orig', 'skip', 'resnet'):
            raise ValueError(f'architecture="{architecture}": expected orig, skip or resnet')
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))

        # Layers are numbered in creation order across the whole discriminator.
        self.num_layers = 0
        def trainable_next():
            trainable = (first_layer_idx + self.num_layers >= freeze_layers)
            self.num_layers += 1
            return trainable

        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                trainable=trainable_next(), conv_clamp=conv_clamp, channels_last=self.channels_last)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
            trainable=trainable_next(), conv_clamp=conv_clamp, channels_last=self.channels_last)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
            trainable=trainable_next(), resample_filter=resample_filter, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if architecture == 'resnet':
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                trainable=trainable_next(), resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, force_fp32=False):
        if (x if x is not None else img).device.type != 'cuda':
            force_fp32 = True
        full_dtype = self.conv1.weight.dtype # float32, or float64 for tests.
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else full_dtype
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format

        # Input: features of the previous block and/or the image.
        if x is not None:
            misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], name=f'b{self.resolution} input')
            x = x.to(dtype=x.dtype if _autocast_enabled(x) else dtype, memory_format=memory_format) # Autocast picks the dtype per op.
        if self.in_channels == 0 or self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution], name=f'b{self.resolution} img')
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = upfirdn2d.downsample2d(img, self.resample_filter) if self.architecture == 'skip' else None

        # Main layers.
        if self.architecture == 'resnet':
            y = self.skip(x, gain=_RESNET_BRANCH_GAIN)
            x = self.conv0(x)
            x = self.conv1(x, gain=_RESNET_BRANCH_GAIN)
            x = y.add_(x)
        else:
            x = self.conv0(x)
            x = self.conv1(x)

        assert x.dtype == dtype or _autocast_enabled(x), f'b{self.resolution}: features are {x.dtype}, expected {dtype}'
        return x, img

    def extra_repr(self):
        return f'resolution={self.resolution:d}, architecture={self.architecture:s}, use_fp16={self.use_fp16}, first_layer_idx={self.first_layer_idx}'

#----------------------------------------------------------------------------

class MinibatchStdLayer(torch.nn.Module):
    """Appends, per group of samples, the mean standard deviation over the group (ProGAN section 3).
    Sample n belongs to group n % (N / G), as upstream."""

    def __init__(self,
        group_size,                 # Samples per group, None = the whole minibatch; min(group_size, N) is used.
        num_channels    = 1,        # Number of feature channels to append (channel groups).
    ):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x):
        N, C, H, W = x.shape
        G = min(self.group_size, N) if self.group_size is not None else N
        F = self.num_channels
        if N % G != 0:
            raise ValueError(f'minibatch std: batch size {N} is not divisible by mbstd_group_size={G}; use a multiple of it')
        if C % F != 0:
            raise ValueError(f'minibatch std: {C} channels are not divisible by mbstd_num_channels={F}')
        c = C // F
        y = x.reshape(G, -1, F, c, H, W)    # [GnFcHW] Split the minibatch into n groups of G and the channels into F groups.
        y = y - y.mean(dim=0)               # [GnFcHW] Deviation from the group mean.
        y = y.square().mean(dim=0)          # [nFcHW]  Variance over the group.
        y = (y + 1e-8).sqrt()               # [nFcHW]  Standard deviation.
        y = y.mean(dim=[2, 3, 4])           # [nF]     Averaged over channels and pixels.
        y = y.reshape(-1, F, 1, 1)          # [nF11]
        y = y.repeat(G, 1, H, W)            # [NFHW]   One value per sample and channel group.
        return torch.cat([x, y], dim=1)     # [N(C+F)HW]

    def extra_repr(self):
        return f'group_size={self.group_size}, num_channels={self.num_channels:d}'

#----------------------------------------------------------------------------

class DiscriminatorEpilogue(torch.nn.Module):
    def __init__(self,
        in_channels,                    # Number of input channels.
        cmap_dim,                       # Dimensionality of the projected label, 0 = unconditional.
        resolution,                     # Resolution of this block (4).
        img_channels,                   # Number of input color channels.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        mbstd_group_size    = 4,        # Group size of the minibatch std layer, None = whole minibatch.
        mbstd_num_channels  = 1,        # Features of the minibatch std layer, 0 = disable.
        activation          = 'lrelu',  # Activation function name.
        conv_clamp          = None,     # Clamp the convolution outputs to +-X, None = no clamping.
    ):
        if architecture not in ('orig', 'skip', 'resnet'):
            raise ValueError(f'architecture="{architecture}": expected orig, skip or resnet')
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture

        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * (resolution ** 2), in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap, force_fp32=False):
        _ = force_fp32 # The epilogue always runs in full precision.
        full_dtype = self.fc.weight.dtype # float32, or float64 for tests.
        misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], name='epilogue input')
        x = x.to(dtype=full_dtype, memory_format=torch.contiguous_format)
        if self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution], name='epilogue img')
            x = x + self.fromrgb(img.to(full_dtype))

        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)

        # Projection conditioning: the logit is the scaled inner product with the label's embedding.
        if self.cmap_dim > 0:
            misc.assert_shape(cmap, [None, self.cmap_dim], name='cmap')
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x.to(full_dtype)

    def extra_repr(self):
        return f'resolution={self.resolution:d}, architecture={self.architecture:s}, cmap_dim={self.cmap_dim:d}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class Discriminator(torch.nn.Module):
    def __init__(self,
        c_dim,                          # Conditioning label (C) dimensionality, 0 = unconditional.
        img_resolution,                 # Input resolution (a power of two).
        img_channels,                   # Number of input color channels.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        channel_base        = 32768,    # Overall multiplier for the number of channels.
        channel_max         = 512,      # Maximum number of channels in any layer.
        num_fp16_res        = 4,        # Use fp16 for the N highest resolutions (CUDA only).
        conv_clamp          = 256,      # Clamp the convolution outputs to +-X, None = no clamping.
        cmap_dim            = None,     # Dimensionality of the projected label, None = channels at 4x4.
        mbstd_group_size    = 4,        # Group size of the minibatch std layer; the batch must be divisible by min(this, N).
        mbstd_num_channels  = 1,        # Features of the minibatch std layer, 0 = disable.
        freeze_layers       = 0,        # Freeze-D: the first N layers (from the image side) are not trained.
        block_kwargs        = {},       # Further arguments for DiscriminatorBlock (activation, fp16_channels_last, ...).
        mapping_kwargs      = {},       # Arguments for the label MappingNetwork (num_layers, ...).
        epilogue_kwargs     = {},       # Further arguments for DiscriminatorEpilogue (activation).
    ):
        super().__init__()
        img_resolution_log2 = _check_resolution(img_resolution, 'Discriminator')
        for name, kwargs, owned in [('block_kwargs', block_kwargs, ['freeze_layers']), ('epilogue_kwargs', epilogue_kwargs, ['mbstd_group_size', 'mbstd_num_channels'])]:
            for key in owned:
                if key in kwargs:
                    raise ValueError(f'Discriminator: pass {key} as a Discriminator argument, not inside {name}')
        if mbstd_group_size is not None and mbstd_group_size < 1:
            raise ValueError(f'Discriminator: mbstd_group_size={mbstd_group_size}, expected a positive integer or None')
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = img_resolution_log2
        self.img_channels = img_channels
        self.freeze_layers = freeze_layers
        self.block_resolutions = [2 ** i for i in range(img_resolution_log2, 2, -1)]
        channels_dict = channel_counts(channel_base, channel_max, self.block_resolutions + [4], 'Discriminator')
        fp16_resolution = max(2 ** (img_resolution_log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels_dict[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim

        cur_layer_idx = 0
        for res in self.block_resolutions:
            in_channels = channels_dict[res] if res < img_resolution else 0
            tmp_channels = channels_dict[res]
            out_channels = channels_dict[res // 2]
            use_fp16 = (res >= fp16_resolution)
            block = DiscriminatorBlock(in_channels, tmp_channels, out_channels, resolution=res, img_channels=img_channels,
                first_layer_idx=cur_layer_idx, architecture=architecture, conv_clamp=conv_clamp, use_fp16=use_fp16,
                freeze_layers=freeze_layers, **block_kwargs)
            setattr(self, f'b{res}', block)
            cur_layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(channels_dict[4], cmap_dim=cmap_dim, resolution=4, img_channels=img_channels,
            architecture=architecture, mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels,
            conv_clamp=conv_clamp, **epilogue_kwargs)

    def forward(self, img, c, update_emas=False, **block_kwargs):
        _ = update_emas # No running statistics in the discriminator.
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, self.img_resolution, self.img_resolution):
            raise ValueError(f'Discriminator: img has shape {list(img.shape)}, expected [N, {self.img_channels}, {self.img_resolution}, {self.img_resolution}]')
        c = _check_labels(c, img.shape[0], self.c_dim, 'Discriminator')
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f'b{res}')(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        x = self.b4(x, img, cmap)
        misc.assert_shape(x, [None, 1], name='logits')
        return x

    def extra_repr(self):
        return f'c_dim={self.c_dim:d}, img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d}, freeze_layers={self.freeze_layers}'

#----------------------------------------------------------------------------
