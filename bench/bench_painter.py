"""Benchmark: the delta rule's parallel form (docs/fpa-model.md §2) against the sequential loop.

For every image side N and step count T: forward+backward time of painting a batch of B
images with C channels (keys/values [B, C, T, N], one learning rate per channel and step,
float32), and the activation memory autograd keeps for the backward pass. Memory is counted
exactly with torch.autograd.graph.saved_tensors_hooks: the bytes of every distinct storage
saved for backward, the painter's inputs excluded. Timing: the two variants run alternately,
several rounds, and each reports its fastest round (the machine is shared, so the minimum is
the least disturbed measurement); the ratios are what count.

On CUDA (--device=cuda) the inputs and the timing are on the GPU, TF32 is off (plain float32),
the default batch is B=32 (a training batch), every N is measured even with --quick, and two
more columns give torch.cuda's peak allocation during one forward+backward (inputs excluded).

    python bench/bench_painter.py            # N in {32, 64, 128, 256}, T in {16, 64}, B=20, C=3
    python bench/bench_painter.py --quick    # N in {32, 64}, T in {16, 64}
    python bench/bench_painter.py --threads=1   # one thread: robust when the cores are oversubscribed
    python bench/bench_painter.py --device=cuda [--quick]   # B=32, N up to 256; --quick: fewer, shorter rounds
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import timing  # noqa: E402
from networks import fpa  # noqa: E402

#----------------------------------------------------------------------------

def make_inputs(B, C, T, N, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    keys = torch.randn([B, C, T, N], generator=gen).softmax(dim=-1).to(device).requires_grad_()
    values = torch.randn([B, C, T, N], generator=gen).to(device).requires_grad_()
    lrs = torch.randn([B, C, T, 1], generator=gen).sigmoid().to(device).requires_grad_()
    grad_W = torch.randn([B, C, N, N], generator=gen).to(device)
    return keys, values, lrs, grad_W

def fwd_bwd(painter, keys, values, lrs, grad_W):
    W = painter(keys, values, lrs).W
    torch.autograd.backward(W, grad_W)
    keys.grad = values.grad = lrs.grad = None

def saved_bytes(painter, keys, values, lrs):
    """Bytes of the distinct storages autograd saves for backward, inputs excluded."""
    inputs = {t.untyped_storage().data_ptr() for t in (keys, values, lrs)}
    storages = {}
    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in inputs:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        W = painter(keys, values, lrs).W
    del W
    return sum(storages.values())

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='CPU: N in {32, 64} only; CUDA: 2 shorter rounds')
    parser.add_argument('--device', default='cpu', help='cpu or cuda (default: cpu)')
    parser.add_argument('--batch', type=int, default=None, help='batch size B (default: 20 on CPU, 32 on CUDA)')
    parser.add_argument('--channels', type=int, default=3, help='colour channels C')
    parser.add_argument('--rounds', type=int, default=3, help='timing rounds per variant')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    args = parser.parse_args()
    device = timing.device_from_arg(args.device)
    cuda = device.type == 'cuda'
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    batch = args.batch if args.batch is not None else 32 if cuda else 20
    rounds, min_round_s = (2, 0.1) if cuda and args.quick else (args.rounds, 0.3)

    sides = [32, 64] if args.quick and not cuda else [32, 64, 128, 256]
    steps = [16, 64]
    variants = {'sequential': fpa.delta_rule_sequential, 'parallel': fpa.delta_rule_parallel}
    print(f'# Delta-rule painter, forward+backward, float32{" (TF32 off)" if cuda else ""}, B={batch}, C={args.channels}; '
          f'{timing.describe(device)}; load average {os.getloadavg()[0]:.1f}')
    print()
    header = '| N | T | sequential ms | parallel ms | speed-up | sequential saved MiB | parallel saved MiB | memory ratio |'
    if cuda:
        header += ' sequential CUDA peak MiB | parallel CUDA peak MiB | peak ratio |'
    print(header)
    print('|' + '---:|' * (header.count('|') - 1))
    with timing.tf32(False):
        for N in sides:
            for T in steps:
                inputs = make_inputs(batch, args.channels, T, N, device)
                fns = {name: (lambda painter=painter: fwd_bwd(painter, *inputs)) for name, painter in variants.items()}
                times = timing.best_seconds(fns, device, rounds=rounds, min_round_s=min_round_s)
                mem = {name: saved_bytes(painter, *inputs[:3]) for name, painter in variants.items()}
                row = (f'| {N} | {T} | {times["sequential"] * 1e3:.1f} | {times["parallel"] * 1e3:.1f} | '
                       f'{times["sequential"] / times["parallel"]:.1f}x | {mem["sequential"] / 2**20:.1f} | '
                       f'{mem["parallel"] / 2**20:.1f} | {mem["sequential"] / mem["parallel"]:.1f}x |')
                if cuda:
                    peak = {name: timing.peak_cuda_bytes(fn, device) for name, fn in fns.items()}
                    row += f' {peak["sequential"] / 2**20:.1f} | {peak["parallel"] / 2**20:.1f} | {peak["sequential"] / peak["parallel"]:.1f}x |'
                print(row, flush=True)
    print()
    print(f'load average at the end: {os.getloadavg()[0]:.1f}')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
