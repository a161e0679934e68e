"""Benchmark: the whole FPA generator at the paper's 64x64 configuration.

Forward (inference, no autograd) and forward+backward (a training step's generator work:
gradients for every parameter) in float32 and under bfloat16 autocast, batch 20 on CPU. Reports
images/s and achieved GFLOP/s against the machine's matmul peak, measured in the same run
with one large float32 and one large bfloat16 matmul. Every measurement alternates with the
others over several rounds and keeps its fastest round (the machine is shared).

FLOPs are counted analytically (multiply-add = 2 FLOPs), per image, forward:
    latent_to_init   2 * D_z * 2LH
    input generator  2 * D_z * T m  +  2 * T m d_in          (v2)
    LSTM             2 * T * 4H * (d_in + H)  +  (L-1) * 2 * T * 4H * 2H
    kvb projection   2 * T * H * C (2N + r)
    painter          C * (2 T^2 N  +  T^2 N  +  2 T N^2)     (Gram, triangular solve, U^T K)
Elementwise work (gates, softmax, tanh) is not counted. Forward+backward = 3 x forward
(every matmul has two backward matmuls of the same size). On CPU the FLOP floor of a pass is
its FLOPs divided by the float32 matmul peak; efficiency = floor / measured time = achieved
GFLOP/s / peak GFLOP/s.

On CUDA (--device=cuda) the network, the inputs and the timing are on the GPU, the default
batch is 4096 (enough rows to fill the GPU), and there are three precision rows: float32 with
TF32 off (IEEE float32 matmuls and cuDNN LSTM), TF32 (allowed for matmuls and cuDNN), and
bfloat16 autocast (TF32 off; the painter itself runs in float32 under autocast, as in
training). Each row's FLOP floor and % of peak use the matmul peak measured in the same run
with the same setting (8192^3 float32 with TF32 off / on, bfloat16); the setting holds for the
backward pass too. A last column gives torch.cuda's peak allocation of one pass. No float16
row: the FPA has no float16 layers.

    python bench/bench_fpa_generator.py [--quick] [--threads N] [--device cuda] [--batch B]
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import timing  # noqa: E402
from networks import fpa  # noqa: E402

#----------------------------------------------------------------------------

def forward_flops(G) -> int:
    """Analytic forward FLOPs per image (formula in the module docstring)."""
    o, S = G.init_kwargs, G.synthesis
    Dz, T, C, N, H, L = G.z_dim, G.num_ws, G.img_channels, G.img_resolution, o.hidden_dim, o.num_layers
    m, d_in, r = o.step_latent_dim, o.step_input_dim, S.num_lrs
    flops = 2 * Dz * 2 * L * H if S.latent_to_init is not None else 0
    rnn_in = Dz
    if o.input_generator == 'v2':
        flops += 2 * Dz * T * m + 2 * T * m * d_in
        rnn_in = d_in
    flops += 2 * T * 4 * H * (rnn_in + H) + (L - 1) * 2 * T * 4 * H * 2 * H
    flops += 2 * T * H * C * (2 * N + r)
    flops += C * (2 * T * T * N + T * T * N + 2 * T * N * N)
    return flops

#----------------------------------------------------------------------------

# Precision settings: name -> (autocast dtype or None, TF32 allowed, dtype of the matching matmul peak).
PRECISIONS = {
    'cpu': {
        'float32':            (None,           False, torch.float32),
        'bfloat16':           (torch.bfloat16, False, torch.bfloat16),
    },
    'cuda': {
        'float32 (TF32 off)': (None,           False, torch.float32),
        'TF32':               (None,           True,  torch.float32),
        'bfloat16 autocast':  (torch.bfloat16, False, torch.bfloat16),
    },
}

def autocast(device, dtype):
    """Autocast to `dtype`, or nothing for dtype=None."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='T=16 instead of 64, 2 rounds')
    parser.add_argument('--device', default='cpu', help='cpu or cuda (default: cpu)')
    parser.add_argument('--batch', type=int, default=None, help='batch size (default: 20 on CPU, 4096 on CUDA)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    parser.add_argument('--rounds', type=int, default=3, help='timing rounds')
    args = parser.parse_args()
    device = timing.device_from_arg(args.device)
    cuda = device.type == 'cuda'
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rounds = 2 if args.quick else args.rounds
    batch = args.batch if args.batch is not None else 4096 if cuda else 20
    peak_size = 8192 if cuda else 2048
    precisions = PRECISIONS[device.type]

    torch.manual_seed(0)
    G = fpa.Generator(z_dim=512, c_dim=0, img_resolution=64, img_channels=3, num_steps=16 if args.quick else 64).to(device)
    z = torch.randn([batch, G.z_dim]).to(device)
    grad_img = torch.randn([batch, G.img_channels, G.img_resolution, G.img_resolution]).to(device)

    def forward(setting):
        autocast_dtype, allow_tf32, _ = setting
        def run():
            with torch.no_grad(), timing.tf32(allow_tf32), autocast(device, autocast_dtype):
                G(z, None)
        return run

    def forward_backward(setting):
        autocast_dtype, allow_tf32, _ = setting
        def run():
            with timing.tf32(allow_tf32):       # The backward pass too (cuDNN's LSTM backward follows it).
                with autocast(device, autocast_dtype):
                    img = G(z, None)
                torch.autograd.backward(img, grad_img)
            G.zero_grad(set_to_none=True)
        return run

    passes = {'forward': forward, 'forward+backward': forward_backward}
    peak = {}
    for name, setting in precisions.items():
        with timing.tf32(setting[1]):
            peak[name] = timing.matmul_flops_per_s(setting[2], peak_size, device)
    tasks = {(name, pass_name): make(setting) for name, setting in precisions.items() for pass_name, make in passes.items()}
    times = timing.best_seconds(tasks, device, rounds=rounds, min_round_s=0.5)
    memory = {key: timing.peak_cuda_bytes(fn, device) for key, fn in tasks.items()} if cuda else {}
    fwd = forward_flops(G) * batch

    print(f'# FPA generator (paper 64x64 config, T={G.num_ws}, {sum(p.numel() for p in G.parameters()):,} parameters), '
          f'batch {batch}; {timing.describe(device)}; load average {os.getloadavg()[0]:.1f}')
    print()
    peaks = ', '.join(f'{name} {flops / 1e9:.1f} GFLOP/s' for name, flops in peak.items())
    print(f'Matmul peak ({peak_size}^3, same run): {peaks}. '
          f'Forward FLOPs per image: {forward_flops(G) / 1e9:.3f} GFLOP; forward+backward = 3x.')
    print()
    if cuda:
        print('| precision | pass | ms / batch | images/s | GFLOP/s | FLOP floor ms (this row\'s peak) | % of peak | CUDA peak MiB |')
        print('|---|---|---:|---:|---:|---:|---:|---:|')
    else:
        print('| precision | pass | ms / batch | images/s | GFLOP/s | float32 FLOP floor ms | efficiency vs float32 peak |')
        print('|---|---|---:|---:|---:|---:|---:|')
    reference = next(iter(precisions))     # The float32 row.
    for name in precisions:
        for pass_name, flops in [('forward', fwd), ('forward+backward', 3 * fwd)]:
            sec = times[(name, pass_name)]
            floor = flops / peak[name if cuda else reference]
            row = f'| {name} | {pass_name} | {sec * 1e3:.1f} | {batch / sec:.1f} | {flops / sec / 1e9:.1f} | {floor * 1e3:.1f} | {floor / sec * 100:.0f}% |'
            print(row + (f' {memory[(name, pass_name)] / 2**20:.0f} |' if cuda else ''))
    print()
    for name in list(precisions)[1:]:
        for pass_name in passes:
            print(f'{name} / {reference} speed-up, {pass_name}: {times[(reference, pass_name)] / times[(name, pass_name)]:.2f}x')
    print(f'load average at the end: {os.getloadavg()[0]:.1f}')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
