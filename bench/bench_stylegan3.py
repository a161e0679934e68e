"""StyleGAN3 (networks/stylegan3.py, torch_utils/ops/filtered_lrelu.py) beside NVlabs/stylegan3's
own code with the same weights, in one process: parity, then speed.

1. Parity: upstream's generator (training/networks_stylegan3.py) for T and R, built with random
   weights, random magnitude EMAs and a non-trivial user transform, loaded by name into ours
   (`load_state_dict(strict=True)`: the tensor names are the same); the images compared
   (float32, max abs difference), and the discriminator of training/networks_stylegan2.py
   against ours with the same weights (logits).
2. The filtered leaky ReLU at the layer shapes of a 256x256 StyleGAN3 (layers whose sampling
   rate doubles or not, T's separable and R's radial downsampling filter): ours (impl='fast',
   the default) against upstream's implementation on the CPU (its `_filtered_lrelu_ref`, upfirdn2d
   + bias_act; its CUDA kernel needs a GPU), forward and forward+backward, float32.
3. The generator forward+backward (to the parameters, as the G step), ours against upstream's,
   T and R, at the given resolution.
Rounds alternate between the variants and the fastest is kept (timing.best_seconds).

Upstream is an export of NVlabs/stylegan3 (--upstream, default /tmp/stylegan3); without it the
script says so and stops after building ours. Its modules are imported under their own names and
moved aside in sys.modules (bench_networks.load_upstream_networks), nothing of it is copied.

    python bench/bench_stylegan3.py [--quick] [--batch N] [--resolution R] [--threads N] [--upstream DIR]
"""

import argparse
import os
import re
import sys
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timing                       # pylint: disable=wrong-import-position
from bench_networks import load_upstream_networks      # pylint: disable=wrong-import-position
import networks                                        # pylint: disable=wrong-import-position
from networks import stylegan2, stylegan3              # pylint: disable=wrong-import-position
from torch_utils.ops import filtered_lrelu             # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def _version_tuple(text: str) -> tuple:
    return tuple(int(part) for part in re.findall(r'\d+', text.split('+')[0])[:3])

def load_upstream(path: str):
    """(networks_stylegan3, networks_stylegan2) of the export, or None. Its conv2d_gradfix reads
    the torch version with pkg_resources.parse_version (not installed here): a stand-in."""
    if 'pkg_resources' not in sys.modules:
        sys.modules['pkg_resources'] = types.ModuleType('pkg_resources')
    sys.modules['pkg_resources'].parse_version = _version_tuple
    sg3 = load_upstream_networks(path, 'training.networks_stylegan3')
    sg2 = load_upstream_networks(path, 'training.networks_stylegan2')
    return None if sg3 is None or sg2 is None else (sg3, sg2)

def generator_kwargs(config: str, resolution: int, channel_base: int, channel_max: int) -> dict:
    radial = dict(conv_kernel=1, use_radial_filters=True) if config == 'R' else {}
    return dict(z_dim=64, c_dim=0, w_dim=64, img_resolution=resolution, img_channels=3, mapping_kwargs=dict(num_layers=2),
                channel_base=channel_base, channel_max=channel_max, num_fp16_res=0, conv_clamp=256, magnitude_ema_beta=0.999, **radial)

def parity(up3, up2, resolution: int, channel_base: int, channel_max: int) -> None:
    torch.manual_seed(0)
    print(f'Parity (float32, same weights; {resolution}x{resolution}, channel_base {channel_base}, channel_max {channel_max}, batch 4):')
    print()
    print('| network | max abs difference | largest value |')
    print('|---|---:|---:|')
    for config in ('T', 'R'):
        kwargs = generator_kwargs(config, resolution, channel_base, channel_max)
        G_up = up3.Generator(**kwargs).eval()
        with torch.no_grad():
            for name, tensor in G_up.named_buffers():
                if name.endswith('magnitude_ema'):
                    tensor.uniform_(0.5, 2)
            G_up.synthesis.input.affine.weight.normal_()        # A learned rotation and translation per w.
            G_up.synthesis.input.transform.copy_(torch.tensor(networks.image_transform((0.1, -0.2), 30)).inverse())
        G = stylegan3.Generator(**kwargs).eval()
        G.load_state_dict(G_up.state_dict(), strict=True)
        z = torch.randn([4, 64])
        with torch.no_grad():
            img_up, img = G_up(z, None), G(z, None)
        print(f'| StyleGAN3-{config} G image | {float((img - img_up).abs().max()):.1e} | {float(img_up.abs().max()):.2f} |')
    D_kwargs = dict(c_dim=0, img_resolution=resolution, img_channels=3, channel_base=channel_base, channel_max=channel_max, num_fp16_res=0, conv_clamp=256)
    D_up = up2.Discriminator(**D_kwargs, block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4)).eval()
    D = stylegan2.Discriminator(**D_kwargs, mbstd_group_size=4).eval()
    D.load_state_dict(D_up.state_dict(), strict=True)
    img = torch.randn([4, 3, resolution, resolution])
    with torch.no_grad():
        logits_up, logits = D_up(img, None), D(img, None)
    print(f'| D logits (networks_stylegan2) | {float((logits - logits_up).abs().max()):.1e} | {float(logits_up.abs().max()):.2f} |')
    print()

#----------------------------------------------------------------------------

def op_rows(up_filtered_lrelu, batch: int, channels: int, rounds: int, min_round_s: float) -> None:
    """Our op against upstream's CPU implementation at layer shapes of a 256x256 StyleGAN3."""
    device = torch.device('cpu')
    print(f'filtered_lrelu, float32, batch {batch}, {channels} channels, layer shapes of a 256x256 StyleGAN3:')
    print()
    print('| layer | config | input | up/down | ours fwd ms | upstream fwd ms | speed-up | ours fwd+bwd ms | upstream fwd+bwd ms | speed-up |')
    print('|---|---|---|---|---:|---:|---:|---:|---:|---:|')
    for config in ('T', 'R'):
        with torch.device('meta'):      # The layer schedule (filters are rebuilt below on the CPU).
            G = stylegan3.Generator(**generator_kwargs(config, 256, 32768, 512))
        S = G.synthesis
        for index in (1, 3, 7, 10, 12):
            name = S.layer_names[index]
            meta = getattr(S, name)
            layer = stylegan3.SynthesisLayer(w_dim=8, is_torgb=False, is_critically_sampled=meta.is_critically_sampled, use_fp16=False,
                in_channels=1, out_channels=1, in_size=meta.in_size, out_size=meta.out_size,
                in_sampling_rate=meta.in_sampling_rate, out_sampling_rate=meta.out_sampling_rate, in_cutoff=meta.in_cutoff,
                out_cutoff=meta.out_cutoff, in_half_width=meta.in_half_width, out_half_width=meta.out_half_width,
                conv_kernel=meta.conv_kernel, use_radial_filters=config == 'R')
            gen = torch.Generator().manual_seed(index)
            size = [s + layer.conv_kernel - 1 for s in layer.in_size]
            x = torch.randn([batch, channels, size[1], size[0]], generator=gen)
            b = torch.randn([channels], generator=gen)
            args = dict(fu=layer.up_filter, fd=layer.down_filter, b=b, up=layer.up_factor, down=layer.down_factor,
                        padding=layer.padding, gain=2 ** 0.5, slope=0.2, clamp=256)
            ours = lambda x: filtered_lrelu.filtered_lrelu(x, **args)
            theirs = lambda x: up_filtered_lrelu._filtered_lrelu_ref(x, **args) # pylint: disable=protected-access
            assert torch.allclose(ours(x), theirs(x), rtol=1e-4, atol=1e-5)
            x_grad = x.clone().requires_grad_(True)
            fns = {'ours fwd': lambda: ours(x), 'upstream fwd': lambda: theirs(x),
                   'ours fb': lambda: ours(x_grad).square().sum().backward(), 'upstream fb': lambda: theirs(x_grad).square().sum().backward()}
            sec = timing.best_seconds(fns, device, rounds=rounds, min_round_s=min_round_s)
            radial = config == 'R' and layer.down_radial
            print(f'| {name} | {config}{" (radial)" if radial else ""} | {size[0]}x{size[1]} | {layer.up_factor}/{layer.down_factor} | '
                  f'{sec["ours fwd"] * 1e3:.1f} | {sec["upstream fwd"] * 1e3:.1f} | {sec["upstream fwd"] / sec["ours fwd"]:.2f}x | '
                  f'{sec["ours fb"] * 1e3:.1f} | {sec["upstream fb"] * 1e3:.1f} | {sec["upstream fb"] / sec["ours fb"]:.2f}x |', flush=True)
    print()

def generator_rows(up3, batch: int, resolution: int, channel_base: int, channel_max: int, rounds: int, min_round_s: float) -> None:
    device = torch.device('cpu')
    print(f'Generator forward+backward (to the parameters), float32, batch {batch}, {resolution}x{resolution}, '
          f'channel_base {channel_base}, channel_max {channel_max}, training mode:')
    print()
    print('| generator | ours images/s | upstream images/s | speed-up |')
    print('|---|---:|---:|---:|')
    for config in ('T', 'R'):
        torch.manual_seed(0)
        kwargs = generator_kwargs(config, resolution, channel_base, channel_max)
        G_up = up3.Generator(**kwargs).train()
        G = stylegan3.Generator(**kwargs).train()
        G.load_state_dict(G_up.state_dict(), strict=True)
        z = torch.randn([batch, 64], generator=torch.Generator().manual_seed(1))
        step = lambda net: (lambda: net(z, None).square().mean().backward())
        sec = timing.best_seconds({'ours': step(G), 'upstream': step(G_up)}, device, rounds=rounds, min_round_s=min_round_s)
        print(f'| StyleGAN3-{config} | {batch / sec["ours"]:.2f} | {batch / sec["upstream"]:.2f} | {sec["upstream"] / sec["ours"]:.2f}x |', flush=True)
    print()

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='batch 2, 16 channels in the op rows, 32x32 G, one round')
    parser.add_argument('--batch', type=int, default=4, help='batch of every row')
    parser.add_argument('--resolution', type=int, default=64, help='resolution of the generator rows and the parity check')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    parser.add_argument('--upstream', default='/tmp/stylegan3', help='export of NVlabs/stylegan3 (the comparison is skipped without it)')
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    batch, channels, resolution = (2, 16, 32) if args.quick else (args.batch, 64, args.resolution)
    rounds, min_round_s = (1, 0.1) if args.quick else (3, 0.5)
    print(f'{timing.describe(torch.device("cpu"))}; load average {os.getloadavg()[0]:.1f}')
    print()
    upstream = load_upstream(args.upstream)
    if upstream is None:
        print(f'Skipped: no NVlabs/stylegan3 export at --upstream={args.upstream} (training/networks_stylegan3.py missing).')
        return
    up3, up2 = upstream
    parity(up3, up2, resolution, channel_base=4096, channel_max=128)
    op_rows(up3.filtered_lrelu, batch, channels, rounds, min_round_s)
    generator_rows(up3, batch, resolution, channel_base=4096, channel_max=128, rounds=rounds, min_round_s=min_round_s)
    print(f'load average at the end {os.getloadavg()[0]:.1f}')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
