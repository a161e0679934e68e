"""Seconds per generated image of trained network files, side by side in one process.

    python bench/bench_sampling.py --net="FPA=runs/b/network-snapshot-000200.pkl" \\
        --net="FPA/U-Net=runs/a/network-snapshot-000200.pkl" [--batch=64] [--rounds=5] [--threads=1]

G_ema(z, c) of each file under torch.no_grad() on the CPU, one batch of --batch seeded latents
per timing; the files take turns within every round (so a change of machine load hits all of
them alike) and the best round counts. Prints a markdown table with each file's seconds per
image and its ratio to the first file: e.g. an FPA against an FPA/U-Net, for what the
refinement step costs per image.
"""

import os
import sys
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from painting import api, latents    # noqa: E402

def time_batch(G: torch.nn.Module, z: torch.Tensor, c: torch.Tensor) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        G(z, c)
    return time.perf_counter() - t0

@click.command()
@click.option('--net', 'nets', multiple=True, required=True, metavar='LABEL=PATH', help='A labelled network file (repeat)')
@click.option('--batch', default=64, show_default=True, type=click.IntRange(1, 4096), help='Images per timed call')
@click.option('--rounds', default=5, show_default=True, type=click.IntRange(1, 100), help='Rounds (best counts)')
@click.option('--threads', default=1, show_default=True, type=click.IntRange(min=1), help='torch threads')
def main(nets, batch, rounds, threads):
    """Seconds per image of network files' G_ema, alternating, best of --rounds."""
    torch.set_num_threads(threads)
    try:
        generators = api.load_labelled_generators(nets)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint='--net') from None
    gens = []
    for label, G in generators:
        z = latents.seeds_to_z(list(range(batch)), G.z_dim)
        c = latents.make_labels(G, None, batch)
        time_batch(G, z, c)                                  # Warm-up (allocations, oneDNN kernels).
        gens.append((label, G, z, c))
    best = {label: float('inf') for label, *_ in gens}
    load_start = os.getloadavg()[0]
    for _ in range(rounds):
        for label, G, z, c in gens:
            best[label] = min(best[label], time_batch(G, z, c))
    first = best[gens[0][0]] / batch
    print(f'# Seconds per generated image (G_ema, batch {batch}, CPU, {threads} threads, torch {torch.__version__}); '
          f'load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; best of {rounds} rounds\n')
    print('| network | s / image | images / s | vs first |')
    print('|---|---:|---:|---:|')
    for label, *_ in gens:
        s = best[label] / batch
        print(f'| {label} | {s:.5f} | {1 / s:.1f} | {s / first:.2f}x |')

if __name__ == '__main__':
    main()
