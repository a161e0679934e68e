"""Benchmark: the whole FPA generator at the paper's 64x64 configuration.

Forward (inference, no autograd) and forward+backward (a training step's generator work:
gradients for every parameter) in float32 and under bfloat16 autocast, batch 20. Reports
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
(every matmul has two backward matmuls of the same size). The FLOP floor of a pass is its
FLOPs divided by the float32 matmul peak; efficiency = floor / measured time = achieved
GFLOP/s / peak GFLOP/s.

    python bench/bench_fpa_generator.py [--quick] [--threads N]
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
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

def matmul_peak(dtype, size=2048):
    a = torch.randn([size, size]).to(dtype)
    b = torch.randn([size, size]).to(dtype)
    return lambda: a @ b, 2 * size ** 3

def best_times(tasks, rounds, min_round_s=0.5):
    """Fastest round (seconds per call) of every task, the tasks alternating round by round."""
    best = {name: float('inf') for name in tasks}
    for fn in tasks.values():
        fn()    # Warm-up.
    for _ in range(rounds):
        for name, fn in tasks.items():
            reps, start = 0, time.perf_counter()
            while True:
                fn()
                reps += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_round_s:
                    break
            best[name] = min(best[name], elapsed / reps)
    return best

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='T=16 instead of 64, 2 rounds')
    parser.add_argument('--batch', type=int, default=20, help='batch size')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    parser.add_argument('--rounds', type=int, default=3, help='timing rounds')
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rounds = 2 if args.quick else args.rounds

    torch.manual_seed(0)
    G = fpa.Generator(z_dim=512, c_dim=0, img_resolution=64, img_channels=3, num_steps=16 if args.quick else 64)
    z = torch.randn([args.batch, G.z_dim])
    grad_img = torch.randn([args.batch, G.img_channels, G.img_resolution, G.img_resolution])

    def forward(dtype):
        def run():
            with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                G(z, None)
        return run

    def forward_backward(dtype):
        def run():
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                img = G(z, None)
            torch.autograd.backward(img, grad_img)
            G.zero_grad(set_to_none=True)
        return run

    peak_fp32, peak_flops = matmul_peak(torch.float32)
    peak_bf16, _ = matmul_peak(torch.bfloat16)
    tasks = {
        'peak float32': peak_fp32, 'peak bfloat16': peak_bf16,
        'float32 forward': forward(torch.float32), 'float32 forward+backward': forward_backward(torch.float32),
        'bfloat16 forward': forward(torch.bfloat16), 'bfloat16 forward+backward': forward_backward(torch.bfloat16),
    }
    times = best_times(tasks, rounds=rounds)
    peak = {torch.float32: peak_flops / times['peak float32'], torch.bfloat16: peak_flops / times['peak bfloat16']}
    fwd = forward_flops(G) * args.batch

    print(f'# FPA generator (paper 64x64 config, T={G.num_ws}, {sum(p.numel() for p in G.parameters()):,} parameters), '
          f'batch {args.batch}, torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}')
    print()
    print(f'Matmul peak (2048^3, same run): float32 {peak[torch.float32] / 1e9:.1f} GFLOP/s, bfloat16 {peak[torch.bfloat16] / 1e9:.1f} GFLOP/s. '
          f'Forward FLOPs per image: {forward_flops(G) / 1e9:.3f} GFLOP; forward+backward = 3x.')
    print()
    print('| precision | pass | ms / batch | images/s | GFLOP/s | float32 FLOP floor ms | efficiency vs float32 peak |')
    print('|---|---|---:|---:|---:|---:|---:|')
    rows = {}
    for dtype, name in [(torch.float32, 'float32'), (torch.bfloat16, 'bfloat16')]:
        for pass_name, flops in [('forward', fwd), ('forward+backward', 3 * fwd)]:
            sec = times[f'{name} {pass_name}']
            rows[(name, pass_name)] = sec
            floor = flops / peak[torch.float32]
            print(f'| {name} | {pass_name} | {sec * 1e3:.1f} | {args.batch / sec:.1f} | {flops / sec / 1e9:.1f} | '
                  f'{floor * 1e3:.1f} | {floor / sec * 100:.0f}% |')
    print()
    for pass_name in ['forward', 'forward+backward']:
        print(f'bfloat16 / float32 speed-up, {pass_name}: {rows[("float32", pass_name)] / rows[("bfloat16", pass_name)]:.2f}x')
    print(f'load average at the end: {os.getloadavg()[0]:.1f}')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
