"""StyleGAN3: the alias-free generator of Karras et al., "Alias-Free Generative Adversarial
Networks" (NeurIPS 2021), configurations T (translation equivariant) and R (rotation too).

The image is a continuous signal represented by samples (paper Sec. 2): every layer keeps
its feature maps band-limited below a cutoff f_c, and the only operations are ones that
commute with translation (and, for R, rotation) of that continuous signal.

- Mapping: StyleGAN2's mapping network (networks/stylegan2.py) with 2 layers (Sec. 3.2).
- Input (Sec. 3.1, Appendix D): Fourier features, sin(2 pi (f . x + phi)) of C random
  frequencies f drawn uniformly from the disc of radius f_c,0 (the first cutoff), sampled on
  a grid of `size` pixels at sampling rate s_0 (a margin of 10 pixels around the image,
  Sec. 3.2 "boundaries"). The first w rotates and translates them (an affine layer -> (r_c,
  r_s, t_x, t_y), the rotation normalised), and `input.transform` (a [3, 3] buffer, identity
  by default) is a user transform of the output image given as its inverse: generate.py
  --translate/--rotate (networks.set_input_transform) and the equivariance metrics set it. Frequencies pushed above the
  band by it are faded out linearly between f_c,0 and s_0 / 2.
- Layers (Fig. 4b): modulated convolution (3x3 for T, 1x1 for R; StyleGAN2 eq. 1-3, inputs
  divided by the square root of a running mean of their square, the "magnitude EMA"), then
  the filtered leaky ReLU (torch_utils/ops/filtered_lrelu.py): upsample by 2 (of the larger
  of the two sampling rates) with a Kaiser-windowed lowpass at the input cutoff, leaky ReLU,
  downsample to the output rate with a lowpass at the output cutoff; R uses a radially
  symmetric jinc lowpass for the downsampling of all but the critically sampled layers.
- Schedule (Sec. 3.2, Fig. 4c, Appendix F): over layers i = 0..N (N = num_layers, the last
  one is ToRGB) the cutoff f_c[i] grows geometrically from first_cutoff (2) to
  img_resolution / 2, reached num_critical (2) layers before the end, and the minimum
  stopband f_t[i] from first_stopband (2^2.1) to f_c,N * last_stopband_rel (2^0.3); the
  sampling rate s[i] is the smallest power of two >= 2 f_t[i] (at most img_resolution);
  the transition-band half width f_h[i] = max(f_t[i], s[i] / 2) - f_c[i]; channels
  min(channel_base / 2 / f_c[i], channel_max).
- Output: ToRGB (1x1 modulated conv without demodulation), times output_scale (0.25).

Tensor and attribute names are upstream's (NVlabs/stylegan3, training/networks_stylegan3.py),
e.g. `synthesis.L0_36_512.affine.weight`, `synthesis.input.freqs`, so their networks load
by name (networks/upstream.py). docs/stylegan3.md describes the use here.
"""

import math

import numpy as np
import scipy.signal
import scipy.special
import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import filtered_lrelu
from networks import stylegan2
from networks.stylegan2 import FullyConnectedLayer, modulated_conv2d

#----------------------------------------------------------------------------
# Filter design (paper Appendix C.1 and C.2).

def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> torch.Tensor | None:
    """A lowpass FIR filter of `numtaps` taps with the given cutoff and transition band width
    (both in the units of the sampling rate `fs`), windowed by a Kaiser window whose beta
    follows from the attenuation reachable with that many taps and that width (Kaiser's
    formulas). Separable: a 1-D windowed sinc (scipy.signal.firwin), unit DC gain. Radial: a
    2-D windowed jinc, 2 f_c J1(2 pi f_c r) / r, with the outer product of the 1-D window,
    normalised to unit sum. None for a single tap (identity)."""
    if numtaps < 1:
        raise ValueError(f'design_lowpass_filter: numtaps={numtaps}, expected >= 1')
    if numtaps == 1:
        return None
    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32)
    pos = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(pos, pos))
    f = scipy.special.j1(2 * np.pi * cutoff * r) / (np.pi * r)    # numtaps is even in every layer: r > 0.
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = f * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)

def layer_schedule(img_resolution: int, img_channels: int, channel_base: int, channel_max: int, num_layers: int,
                   num_critical: int, first_cutoff: float, first_stopband: float, last_stopband_rel: float,
                   margin_size: int) -> dict[str, np.ndarray]:
    """Per layer 0..num_layers (float64 arrays): cutoffs, stopbands, sampling_rates,
    half_widths, sizes and channels (see the module docstring)."""
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution                 # The last two layers are cropped to the image.
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return dict(cutoffs=cutoffs, stopbands=stopbands, sampling_rates=sampling_rates, half_widths=half_widths, sizes=sizes, channels=channels)

#----------------------------------------------------------------------------

class SynthesisInput(torch.nn.Module):
    def __init__(self,
        w_dim,          # Intermediate latent (W) dimensionality.
        channels,       # Number of output channels.
        size,           # Output size in pixels: int or [width, height].
        sampling_rate,  # Output sampling rate (s_0).
        bandwidth,      # Output bandwidth (f_c,0): radius of the disc the frequencies are drawn from.
    ):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = [int(s) for s in np.broadcast_to(np.asarray(size), [2])]
        self.sampling_rate = float(sampling_rate)
        self.bandwidth = float(bandwidth)

        # Frequencies uniform in the disc of radius `bandwidth`: a Gaussian direction, radius
        # r -> r / exp(r^2 / 4) maps the Gaussian's radius distribution onto about that of the disc.
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5

        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad(): # Identity transform at initialisation: (r_c, r_s, t_x, t_y) = (1, 0, 0, 0).
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer('transform', torch.eye(3, 3)) # User transform, the inverse of the one applied to the image.
        self.register_buffer('freqs', freqs)
        self.register_buffer('phases', phases)

    def forward(self, w):
        misc.assert_shape(w, [None, self.w_dim])
        batch_size = w.shape[0]

        # Learned rotation and translation (inverse, with respect to the image), then the user's.
        t = self.affine(w.to(self.freqs.dtype))                     # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        r_c, r_s, t_x, t_y = t.unbind(dim=1)
        zero, one = torch.zeros_like(r_c), torch.ones_like(r_c)
        m_r = torch.stack([r_c, -r_s, zero, r_s, r_c, zero, zero, zero, one], dim=1).reshape(batch_size, 3, 3)
        m_t = torch.stack([one, zero, -t_x, zero, one, -t_y, zero, zero, one], dim=1).reshape(batch_size, 3, 3)
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)        # [N, 3, 3]

        # A feature sin(2 pi (f . x + phi)) at transformed positions M x + m: frequencies f M, phases phi + f . m.
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)   # [N, C]
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]                                          # [N, C, 2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        # Sample positions: pixel centres, in units of the sampling rate, centred on the image.
        width, height = self.size
        xs = (torch.arange(width, device=w.device, dtype=self.freqs.dtype) + 0.5 - width / 2) / self.sampling_rate
        ys = (torch.arange(height, device=w.device, dtype=self.freqs.dtype) + 0.5 - height / 2) / self.sampling_rate
        x = xs.reshape(1, 1, width, 1) * freqs[:, :, 0].reshape(batch_size, 1, 1, -1) \
          + ys.reshape(1, height, 1, 1) * freqs[:, :, 1].reshape(batch_size, 1, 1, -1)   # [N, H, W, C]
        x = x + phases.reshape(batch_size, 1, 1, -1)
        x = torch.sin(x * (2 * math.pi)) * amplitudes.reshape(batch_size, 1, 1, -1)

        # Trainable channel mixing (equalised learning rate).
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        x = x.permute(0, 3, 1, 2)
        misc.assert_shape(x, [batch_size, self.channels, height, width])
        return x

    def extra_repr(self):
        return (f'w_dim={self.w_dim:d}, channels={self.channels:d}, size={self.size}, '
                f'sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}')

#----------------------------------------------------------------------------

class SynthesisLayer(torch.nn.Module):
    def __init__(self,
        w_dim,                          # Intermediate latent (W) dimensionality.
        is_torgb,                       # The final ToRGB layer?
        is_critically_sampled,          # Critically sampled (stopband = sampling rate / 2)?
        use_fp16,                       # Run in float16 on CUDA?
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        in_size,                        # Input size in pixels: int or [width, height].
        out_size,                       # Output size in pixels: int or [width, height].
        in_sampling_rate,               # Input sampling rate (s).
        out_sampling_rate,              # Output sampling rate (s).
        in_cutoff,                      # Input cutoff frequency (f_c).
        out_cutoff,                     # Output cutoff frequency (f_c).
        in_half_width,                  # Input transition band half-width (f_h).
        out_half_width,                 # Output transition band half-width (f_h).
        conv_kernel         = 3,        # Convolution kernel size (1 for R); ToRGB always 1.
        filter_size         = 6,        # Filter taps per unit of the lower sampling rate when resampling.
        lrelu_upsampling    = 2,        # Sampling rate of the nonlinearity relative to the layer's (ToRGB: 1).
        use_radial_filters  = False,    # Radially symmetric downsampling filter (R)? Not in critically sampled layers.
        conv_clamp          = 256,      # Clamp the output to [-X, +X], None = no clamping.
        magnitude_ema_beta  = 0.999,    # Decay of the running mean of the input's squared magnitude.
    ):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = [int(s) for s in np.broadcast_to(np.asarray(in_size), [2])]
        self.out_size = [int(s) for s in np.broadcast_to(np.asarray(out_size), [2])]
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer('magnitude_ema', torch.ones([]))

        # Resampling filters: up to the temporary rate at the input cutoff, down at the output cutoff.
        self.up_factor = int(round(self.tmp_sampling_rate / in_sampling_rate))
        self.down_factor = int(round(self.tmp_sampling_rate / out_sampling_rate))
        if in_sampling_rate * self.up_factor != self.tmp_sampling_rate or out_sampling_rate * self.down_factor != self.tmp_sampling_rate:
            raise ValueError(f'SynthesisLayer: sampling rates {in_sampling_rate} -> {out_sampling_rate} are not integer ratios '
                             f'of the temporary rate {self.tmp_sampling_rate}')
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer('up_filter', design_lowpass_filter(
            numtaps=self.up_taps, cutoff=in_cutoff, width=in_half_width * 2, fs=self.tmp_sampling_rate))
        self.register_buffer('down_filter', design_lowpass_filter(
            numtaps=self.down_taps, cutoff=out_cutoff, width=out_half_width * 2, fs=self.tmp_sampling_rate, radial=self.down_radial))

        # Padding of the upsampled image, so that the output has out_size pixels, centred
        # as the symmetric interpretation of the sample grid requires (paper Appendix C.3).
        pad_total = [(o - 1) * self.down_factor + 1 - (i + self.conv_kernel - 1) * self.up_factor + self.up_taps + self.down_taps - 2
                     for i, o in zip(self.in_size, self.out_size)]
        pad_lo = [(p + self.up_factor) // 2 for p in pad_total]
        self.padding = [pad_lo[0], pad_total[0] - pad_lo[0], pad_lo[1], pad_total[1] - pad_lo[1]]

    def forward(self, x, w, force_fp32=False, update_emas=False):
        misc.assert_shape(x, [None, self.in_channels, self.in_size[1], self.in_size[0]])
        misc.assert_shape(w, [x.shape[0], self.w_dim])

        # Track the input's mean square; inputs are divided by its square root.
        if update_emas:
            magnitude_cur = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude_cur.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        styles = self.affine(w)
        if self.is_torgb: # No demodulation: the equalised-learning-rate gain goes on the styles.
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel ** 2))
        dtype = torch.float16 if (self.use_fp16 and not force_fp32 and x.device.type == 'cuda') else self.weight.dtype
        x = modulated_conv2d(x=x.to(dtype), weight=self.weight, styles=styles, padding=self.conv_kernel - 1,
                             demodulate=not self.is_torgb, fused_modconv=not self.training, out_gain=input_gain)

        x = filtered_lrelu.filtered_lrelu(x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype),
                                          up=self.up_factor, down=self.down_factor, padding=self.padding,
                                          gain=1 if self.is_torgb else math.sqrt(2), slope=1 if self.is_torgb else 0.2,
                                          clamp=self.conv_clamp)
        misc.assert_shape(x, [None, self.out_channels, self.out_size[1], self.out_size[0]])
        return x

    def extra_repr(self):
        return (f'w_dim={self.w_dim:d}, is_torgb={self.is_torgb}, is_critically_sampled={self.is_critically_sampled}, '
                f'use_fp16={self.use_fp16}, in_sampling_rate={self.in_sampling_rate:g}, out_sampling_rate={self.out_sampling_rate:g}, '
                f'in_cutoff={self.in_cutoff:g}, out_cutoff={self.out_cutoff:g}, in_half_width={self.in_half_width:g}, '
                f'out_half_width={self.out_half_width:g}, in_size={self.in_size}, out_size={self.out_size}, '
                f'in_channels={self.in_channels:d}, out_channels={self.out_channels:d}')

#----------------------------------------------------------------------------

class SynthesisNetwork(torch.nn.Module):
    def __init__(self,
        w_dim,                          # Intermediate latent (W) dimensionality.
        img_resolution,                 # Output resolution.
        img_channels,                   # Number of color channels.
        channel_base        = 32768,    # Overall multiplier for the number of channels.
        channel_max         = 512,      # Maximum number of channels in any layer.
        num_layers          = 14,       # Number of layers, not counting the Fourier features and ToRGB.
        num_critical        = 2,        # Number of critically sampled layers at the end.
        first_cutoff        = 2,        # Cutoff of the first layer (f_c,0).
        first_stopband      = 2**2.1,   # Minimum stopband of the first layer (f_t,0).
        last_stopband_rel   = 2**0.3,   # Minimum stopband of the last layer, relative to its cutoff.
        margin_size         = 10,       # Pixels computed outside the image on each side.
        output_scale        = 0.25,     # Scale of the output image.
        num_fp16_res        = 4,        # float16 (on CUDA) in the layers of the N highest sampling rates.
        **layer_kwargs,                 # Arguments for SynthesisLayer.
    ):
        super().__init__()
        if num_layers <= num_critical or num_critical < 0:
            raise ValueError(f'SynthesisNetwork: num_layers={num_layers}, num_critical={num_critical}; expected num_layers > num_critical >= 0')
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        s = layer_schedule(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                           first_cutoff, first_stopband, last_stopband_rel, margin_size)
        self.input = SynthesisInput(w_dim=w_dim, channels=int(s['channels'][0]), size=int(s['sizes'][0]),
                                    sampling_rate=s['sampling_rates'][0], bandwidth=s['cutoffs'][0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=(idx == num_layers), is_critically_sampled=(idx >= num_layers - num_critical),
                use_fp16=bool(s['sampling_rates'][idx] * 2 ** num_fp16_res > img_resolution),
                in_channels=int(s['channels'][prev]), out_channels=int(s['channels'][idx]),
                in_size=int(s['sizes'][prev]), out_size=int(s['sizes'][idx]),
                in_sampling_rate=int(s['sampling_rates'][prev]), out_sampling_rate=int(s['sampling_rates'][idx]),
                in_cutoff=s['cutoffs'][prev], out_cutoff=s['cutoffs'][idx],
                in_half_width=s['half_widths'][prev], out_half_width=s['half_widths'][idx],
                **layer_kwargs)
            name = f'L{idx}_{layer.out_size[0]}_{layer.out_channels}'
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws, noise_mode='const', force_fp32=False, update_emas=False):
        del noise_mode # StyleGAN3 has no noise inputs.
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        ws = ws.to(self.input.freqs.dtype).unbind(dim=1)    # float32 (float64 in the float64 tests)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, force_fp32=force_fp32, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        x = x.to(self.input.freqs.dtype)
        misc.assert_shape(x, [None, self.img_channels, self.img_resolution, self.img_resolution])
        return x

    def extra_repr(self):
        return (f'w_dim={self.w_dim:d}, num_ws={self.num_ws:d}, img_resolution={self.img_resolution:d}, '
                f'img_channels={self.img_channels:d}, num_layers={self.num_layers:d}, num_critical={self.num_critical:d}, '
                f'margin_size={self.margin_size:d}, num_fp16_res={self.num_fp16_res:d}')

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(stylegan2.Generator):
    """StyleGAN3's generator: StyleGAN2's mapping network (2 layers unless mapping_kwargs says
    otherwise, as upstream's StyleGAN3 configs) and the alias-free synthesis network above.
    Constructor: z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs and the
    SynthesisNetwork's arguments, as stylegan2.Generator."""
    synthesis_class = SynthesisNetwork
    mapping_defaults = dict(num_layers=2)

#----------------------------------------------------------------------------
