"""Benchmark: the delta rule's parallel form (FPA.md section 2) against the sequential loop.

For every image side N and step count T: forward+backward time of painting a batch of B
images with C channels (keys/values [B, C, T, N], one learning rate per channel and step,
float32), and the activation memory autograd keeps for the backward pass. Memory is counted
exactly with torch.autograd.graph.saved_tensors_hooks: the bytes of every distinct storage
saved for backward, the painter's inputs excluded. Timing: the two variants run alternately,
several rounds, and each reports its fastest round (the machine is shared, so the minimum is
the least disturbed measurement); the ratios are what count.

    python bench/bench_painter.py            # N in {32, 64, 128, 256}, T in {16, 64}, B=20, C=3
    python bench/bench_painter.py --quick    # N in {32, 64}, T in {16, 64}
    python bench/bench_painter.py --threads=1   # one thread: robust when the cores are oversubscribed
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from networks import fpa  # noqa: E402

#----------------------------------------------------------------------------

def make_inputs(B, C, T, N, seed=0):
    gen = torch.Generator().manual_seed(seed)
    keys = torch.randn([B, C, T, N], generator=gen).softmax(dim=-1).requires_grad_()
    values = torch.randn([B, C, T, N], generator=gen).requires_grad_()
    lrs = torch.randn([B, C, T, 1], generator=gen).sigmoid().requires_grad_()
    grad_W = torch.randn([B, C, N, N], generator=gen)
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

def time_variants(variants, args, rounds, min_round_s=0.3):
    """Fastest round of each variant, the variants alternating round by round."""
    best = {name: float('inf') for name in variants}
    for name, painter in variants.items():
        fwd_bwd(painter, *args)     # Warm-up.
    for _ in range(rounds):
        for name, painter in variants.items():
            reps, start = 0, time.perf_counter()
            while True:
                fwd_bwd(painter, *args)
                reps += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_round_s:
                    break
            best[name] = min(best[name], elapsed / reps)
    return best

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='N in {32, 64} only')
    parser.add_argument('--batch', type=int, default=20, help='batch size B')
    parser.add_argument('--channels', type=int, default=3, help='colour channels C')
    parser.add_argument('--rounds', type=int, default=3, help='timing rounds per variant')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    sides = [32, 64] if args.quick else [32, 64, 128, 256]
    steps = [16, 64]
    variants = {'sequential': fpa.delta_rule_sequential, 'parallel': fpa.delta_rule_parallel}
    print(f'# Delta-rule painter, forward+backward, float32, B={args.batch}, C={args.channels}, '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}')
    print()
    print('| N | T | sequential ms | parallel ms | speed-up | sequential saved MiB | parallel saved MiB | memory ratio |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|')
    for N in sides:
        for T in steps:
            inputs = make_inputs(args.batch, args.channels, T, N)
            times = time_variants(variants, inputs, rounds=args.rounds)
            mem = {name: saved_bytes(painter, *inputs[:3]) for name, painter in variants.items()}
            print(f'| {N} | {T} | {times["sequential"] * 1e3:.1f} | {times["parallel"] * 1e3:.1f} | '
                  f'{times["sequential"] / times["parallel"]:.1f}x | {mem["sequential"] / 2**20:.1f} | '
                  f'{mem["parallel"] / 2**20:.1f} | {mem["sequential"] / mem["parallel"]:.1f}x |', flush=True)
    print()
    print(f'load average at the end: {os.getloadavg()[0]:.1f}')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
