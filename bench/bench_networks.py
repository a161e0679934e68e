"""Throughput of the StyleGAN2 generator and discriminator (networks/stylegan2.py) on the CPU,
beside the FPA generator (networks/fpa.py), at 64x64 with batch 20.

Rows: G forward (inference), G forward+backward (to the parameters), D forward+backward, R1
(D forward, input gradient with create_graph, backward of the penalty to the parameters), each
in float32 and under bfloat16 autocast. Columns: images/s and the achieved GFLOP/s as a share
of the matrix-multiply peak measured in the same run, just before and after the row (the best
of the two, so that a machine shared with other jobs is compared with itself).

FLOPs are counted analytically, 2 per multiply-add, for the convolutions and linear layers only
(what `analytic_flops` below computes from the layer shapes):
- modulated 3x3 conv:   2 N O I 9 H W, at the input resolution for the upsampling ones (the
                        strided transposed convolution multiplies each input pixel once);
- toRGB 1x1, fromRGB:   2 N O I H W;  D strided conv: 2 N O I k^2 at the output resolution;
- linear layers (mapping, affine style layers, D epilogue): 2 N in out.
Not counted: FIR filters, bias/activation, (de)modulation arithmetic. Forward+backward is 3x
forward (input and weight gradients); R1 is 4x D forward (forward, input gradient, and its
backward = 2 convolutions per layer). The header line cross-checks the forward counts with
torch.utils.flop_counter (executed matmuls and convolutions, FIR filters included). The FPA
rows report images/s only (its LSTM is invisible to flop_counter, and its FLOPs are not ours
to derive here); the ratio SG2 / FPA is printed under the table.

On a machine shared with other jobs, use --threads=1: two OpenMP threads lose much of their time
waiting for each other whenever the scheduler takes one of them away, which hurts the network's
many medium-sized operations far more than one large matmul.

    python bench/bench_networks.py [--quick] [--repeats 1] [--threads N]
"""

import argparse
import os
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dnnlib                       # pylint: disable=wrong-import-position
import networks                     # pylint: disable=wrong-import-position
from networks import stylegan2      # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------
# Analytic FLOPs of one forward pass, from forward hooks that see the actual shapes.

def analytic_flops(module: torch.nn.Module, run) -> int:
    total = [0]
    def conv_hook(mod, inputs, output):
        x = inputs[0]
        N, I, H_in, W_in = x.shape
        O, _, kh, kw = mod.weight.shape
        H, W = output.shape[2], output.shape[3]
        if getattr(mod, 'up', 1) > 1:
            H, W = H_in, W_in # Transposed convolution: one multiply per input pixel and tap.
        total[0] += 2 * N * O * I * kh * kw * H * W
    def fc_hook(mod, inputs, output):
        total[0] += 2 * inputs[0].shape[0] * mod.in_features * mod.out_features
    hooks = []
    for mod in module.modules():
        if isinstance(mod, (stylegan2.SynthesisLayer, stylegan2.ToRGBLayer, stylegan2.Conv2dLayer)):
            hooks.append(mod.register_forward_hook(conv_hook))
        if isinstance(mod, stylegan2.FullyConnectedLayer):
            hooks.append(mod.register_forward_hook(fc_hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]

def counted_flops(run) -> int:
    """Executed FLOPs of matmuls and convolutions, including the backward, as torch counts them."""
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return counter.get_total_flops()

#----------------------------------------------------------------------------
# Timing.

def best_seconds(fn, repeats: int) -> float:
    fn() # Warm-up: oneDNN primitive creation, allocator.
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best

def matmul_peak(dtype: torch.dtype, size: int, repeats: int = 3) -> float:
    """FLOP/s of a square matmul, the best of a few."""
    a = torch.randn([size, size]).to(dtype)
    b = torch.randn([size, size]).to(dtype)
    return 2 * size ** 3 / best_seconds(lambda: a @ b, repeats)

#----------------------------------------------------------------------------

def build_networks(resolution: int):
    torch.manual_seed(0)
    G = stylegan2.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                            mapping_kwargs=dict(num_layers=2), channel_base=16384, channel_max=512)
    D = stylegan2.Discriminator(c_dim=0, img_resolution=resolution, img_channels=3, channel_base=16384, channel_max=512)
    fpa = None
    if 'fpa' in networks.GENERATORS:
        fpa = dnnlib.util.construct_class_by_name(**networks.generator_kwargs('fpa'), z_dim=512, c_dim=0,
                                                  img_resolution=resolution, img_channels=3)
    return G, D, fpa

def workloads(G, D, fpa, batch: int, resolution: int):
    """name -> (step function, FLOPs per step, how the FLOPs were counted)."""
    z = torch.randn([batch, 512])
    img = torch.randn([batch, 3, resolution, resolution])

    def g_forward(G=G):
        with torch.no_grad():
            G.eval()(z, None)
    def g_forward_fused():
        with torch.no_grad():
            G.eval()(z, None, fused_modconv=True)
    def g_forward_backward(G=G):
        G.train()(z, None).float().square().mean().backward()
    def d_forward_backward():
        torch.nn.functional.softplus(D(img, None)).mean().backward()
    def r1():
        x = img.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x, None).sum(), [x], create_graph=True)
        grad.float().square().sum(dim=[1, 2, 3]).mean().backward()

    flops_G = analytic_flops(G, g_forward)
    flops_D = analytic_flops(D, lambda: D(img, None))
    rows = {
        'SG2 G forward':                 (g_forward,          flops_G,     'analytic'),
        'SG2 G forward, fused modconv':  (g_forward_fused,    flops_G,     'analytic'),
        'SG2 G forward+backward':        (g_forward_backward, 3 * flops_G, '3x analytic fwd'),
        'SG2 D forward+backward':        (d_forward_backward, 3 * flops_D, '3x analytic fwd'),
        'SG2 R1 (D double backward)':    (r1,                 4 * flops_D, '4x analytic fwd'),
    }
    if fpa is not None:
        rows['FPA G forward'] = (lambda: g_forward(fpa), None, 'not counted')
        rows['FPA G forward+backward'] = (lambda: g_forward_backward(fpa), None, 'not counted')
    extra = dict(flops_G=flops_G, flops_D=flops_D, counted_G=counted_flops(g_forward), counted_D=counted_flops(lambda: D(img, None)))
    return rows, extra

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='batch 4 at 32x32, one repeat, smaller peak matmul')
    parser.add_argument('--repeats', type=int, default=1, help='timed repeats per cell after one warm-up (default 1; the best counts)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s choice)')
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    batch, resolution, repeats, peak_size = (4, 32, 1, 1024) if args.quick else (20, 64, args.repeats, 2048)

    G, D, fpa = build_networks(resolution)
    rows, extra = workloads(G, D, fpa, batch, resolution)
    dtypes = {'float32': None, 'bfloat16': torch.bfloat16}

    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {resolution}x{resolution}, batch {batch}, '
          f'best of {repeats} after a warm-up; peak = best {peak_size}^3 matmul measured around each cell')
    print(f'SG2 G {sum(p.numel() for p in G.parameters()):,} parameters, D {sum(p.numel() for p in D.parameters()):,}'
          + (f', FPA {sum(p.numel() for p in fpa.parameters()):,}' if fpa is not None else ''))
    print(f'Forward GFLOP per batch: G {extra["flops_G"] / 1e9:.1f} analytic ({extra["counted_G"] / 1e9:.1f} counted by torch, '
          f'incl. FIR filters and demodulation), D {extra["flops_D"] / 1e9:.1f} ({extra["counted_D"] / 1e9:.1f})')
    print()
    print('| workload | dtype | images/s | GFLOP/s | peak GFLOP/s | % of peak | FLOPs | bf16 / fp32 |')
    print('|---|---|---:|---:|---:|---:|---|---:|')
    fp32_speed = {}
    for name, (step, flops, how) in rows.items():
        for dtype_name, dtype in dtypes.items():
            if 'fused' in name and dtype is not None:
                continue # The fused path is the GPU's; one float32 row shows why the CPU does not use it.
            peak_dtype = dtype or torch.float32
            peak = matmul_peak(peak_dtype, peak_size)
            with torch.autocast('cpu', dtype=dtype, enabled=dtype is not None):
                seconds = best_seconds(step, repeats)
            peak = max(peak, matmul_peak(peak_dtype, peak_size))
            speed = batch / seconds
            ratio = ''
            if dtype is None:
                fp32_speed[name] = speed
            else:
                ratio = f'{speed / fp32_speed[name]:.2f}x'
            gflops, share = ('-', '-') if flops is None else (f'{flops / seconds / 1e9:.1f}', f'{100 * flops / seconds / peak:.0f}%')
            print(f'| {name} | {dtype_name} | {speed:.2f} | {gflops} | {peak / 1e9:.1f} | {share} | {how} | {ratio} |', flush=True)
    if fpa is None:
        print('\nFPA rows skipped: networks.fpa is not registered as "fpa" yet.')
    else:
        print(f'\nSG2 / FPA images/s (float32): forward {fp32_speed["SG2 G forward"] / fp32_speed["FPA G forward"]:.2f}x, '
              f'forward+backward {fp32_speed["SG2 G forward+backward"] / fp32_speed["FPA G forward+backward"]:.2f}x')

if __name__ == '__main__':
    main()
