"""Training throughput (sec/kimg) of the real training loop on this machine's CPU or GPU:
the paper's FPA (--cfg=fpa) versus the StyleGAN2 generator with the same discriminator
(--cfg=fpa --gen=stylegan2), fp32 versus bf16 autocast, at 32x32 and 64x64.

Each variant runs training_loop for a few iterations on random images (no snapshots, no
metrics, no augmentation) and reports the steady-state sec/kimg of the ticks after the
first iteration (which carries the warm-up). The machine may be shared: compare the
ratios in one table rather than absolute numbers across runs.

    python bench/bench_training.py            # 32x32 and 64x64, batch 8, 4 timed iterations each
    python bench/bench_training.py --quick    # 32x32 only, batch 4, 1 timed iteration
    python bench/bench_training.py --device=cuda   # 64x64, the preset's batch 32 and D, fp32/bf16/fp16

On the CPU the discriminator is narrowed by default (--cbase=4096 --cmax=256, as in the CPU
training run of docs/training.md) so that a run takes minutes; --cbase=0 uses the preset's D.
On CUDA the preset's D is the default and one timed tick spans 16 iterations (one lazy R1
step included, as in training). Every row uses train.py's default DataLoader workers for the
device. On the CPU a second table runs the demo's preset (fpa-cpu, 32x32, its own D) and the paper's
(fpa, 64x64, the D above) with the former defaults (--workers=3 --precision=fp32)
and with today's (--workers from the device: 0 on the CPU; --precision=auto: bf16 on a CPU with
native bf16).

    python bench/bench_training.py --against=REV   # this tree against the code of git revision REV

--against measures code rather than options: the same two presets, each tree with its own
defaults, every row in a fresh process (BENCH_CODE names the tree whose code it imports).
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np
import PIL.Image
import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
sys.path.insert(0, os.environ.get('BENCH_CODE', ROOT))  # The tree whose training code runs (--against sets it for a row).

import dnnlib                                          # noqa: E402
import timing                                          # noqa: E402
from training.config import build_training_config   # noqa: E402
from training.training_loop import training_loop      # noqa: E402

#----------------------------------------------------------------------------

def make_dataset(path: str, resolution: int, num_images: int) -> str:
    os.makedirs(path, exist_ok=True)
    rnd = np.random.RandomState(0)
    for i in range(num_images):
        small = rnd.randint(0, 256, [8, 8, 3], dtype=np.uint8)
        PIL.Image.fromarray(small).resize([resolution, resolution], PIL.Image.BILINEAR).save(os.path.join(path, f'{i:04d}.png'))
    return path

def measure(data: str, resolution: int, gen: str | None, precision: str, batch: int, timed_iters: int, device: str,
            cbase: int | None, cmax: int | None, iters_per_tick: int = 1, cfg: str = 'fpa', workers: int | None = None) -> dnnlib.EasyDict:
    """sec/kimg of the steady ticks; None (gen, precision, workers, cbase, cmax) = the default of the code that runs."""
    info = dict(name='bench', resolution=resolution, num_channels=3, num_images=batch, has_labels=False)
    opts = dict(data=data, cfg=cfg, gen=gen, batch=batch, aug='noaug', metrics=[], workers=workers, precision=precision, device=device,
                cbase=cbase, cmax=cmax)
    opts = {name: value for name, value in opts.items() if value is not None}   # Missing = the code's default.
    c = build_training_config(opts, info)
    # Tick 0 ends after the warm-up iteration, then one tick per `iters_per_tick` timed iterations.
    c.kimg_per_tick = batch * iters_per_tick / 1000
    c.total_kimg = batch * (1 + timed_iters) / 1000
    c.image_snapshot_ticks = c.network_snapshot_ticks = None
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.time()
        training_loop(**c, run_dir=run_dir, rank=0, print_fn=lambda *args, **kwargs: None)
        wall = time.time() - start
        with open(os.path.join(run_dir, 'stats.jsonl')) as f:
            ticks = [json.loads(line) for line in f]
    sec_per_kimg = [t['Timing/sec_per_kimg']['mean'] for t in ticks[1:]]
    return dnnlib.EasyDict(sec_per_kimg=float(np.median(sec_per_kimg)), wall=wall, G=c.G_kwargs.class_name,
                           D_channels=f'{c.D_kwargs.channel_base}/{c.D_kwargs.channel_max}', workers=c.data_loader_kwargs.num_workers)

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='32x32 only, batch 4, one timed iteration')
    parser.add_argument('--cbase', type=int, default=None, help='D channel_base (0 = the preset\'s 16384; default 4096 on CPU, 0 on CUDA)')
    parser.add_argument('--cmax', type=int, default=None, help='D channel_max (0 = the preset\'s 512; default 256 on CPU, 0 on CUDA)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda (default cpu)')
    parser.add_argument('--against', metavar='REV', help='only the table of this tree against the code of git revision REV, '
                        'each with its own defaults (fpa-cpu 32x32, fpa 64x64)')
    parser.add_argument('--row', help=argparse.SUPPRESS)    # (Internal: one measure() as JSON, for --against.)
    args = parser.parse_args()
    if args.row is not None:
        print(json.dumps(measure(**json.loads(args.row))))
        return
    if args.against is not None:
        against_table(args.against, args.device, args.cbase, args.cmax)
        return
    on_cuda = timing.device_from_arg(args.device).type == 'cuda'
    if on_cuda:
        resolutions, batch, timed_iters, iters_per_tick = [64], 32, 16, 16
        precisions = ['fp32', 'bf16', 'fp16']
        cbase, cmax = (args.cbase if args.cbase is not None else 0), (args.cmax if args.cmax is not None else 0)
    else:
        resolutions = [32] if args.quick else [32, 64]
        batch = 4 if args.quick else 8
        timed_iters, iters_per_tick = (1 if args.quick else 4), 1
        precisions = ['fp32', 'bf16']
        cbase, cmax = (args.cbase if args.cbase is not None else 4096), (args.cmax if args.cmax is not None else 256)
    cbase, cmax = cbase or None, cmax or None   # None = the preset's value
    generators = [('FPA (--cfg=fpa)', None), ('StyleGAN2 G (--cfg=fpa --gen=stylegan2)', 'stylegan2')]

    print(f'{timing.describe(torch.device(args.device))}; batch {batch}, {timed_iters} timed iteration(s) per row, {iters_per_tick} per tick')
    print()
    print('| resolution | generator | D channel_base/max | precision | sec/kimg | vs FPA fp32 |')
    print('|---|---|---|---|---|---|')
    with tempfile.TemporaryDirectory() as tmp:
        for res in resolutions:
            data = make_dataset(os.path.join(tmp, f'data{res}'), res, batch)
            baseline = None
            for label, gen in generators:
                for precision in precisions:
                    r = measure(data, res, gen, precision, batch, timed_iters, args.device, cbase, cmax, iters_per_tick)
                    baseline = r.sec_per_kimg if baseline is None else baseline
                    print(f'| {res}x{res} | {label} | {r.D_channels} | {precision} | {r.sec_per_kimg:.1f} | {r.sec_per_kimg / baseline:.2f}x |', flush=True)
    print()
    print('Same discriminator in every row of a resolution (StyleGAN2 residual D); no augmentation, no metrics.')
    if not on_cuda:
        print()
        defaults_table(resolutions, args.device, cbase, cmax)

def defaults_table(resolutions: list[int], device: str, cbase: int | None, cmax: int | None, rounds: int = 2) -> None:
    """The demo's preset (fpa-cpu, 32x32, its own narrow D) and the paper's (fpa, 64x64, the D of
    the table above) with the former defaults (--workers=3, --precision=fp32), with
    the DataLoader default chosen from the device, and with both of today's defaults
    (--precision=auto as well: bf16 on a CPU with native bf16). Each at the preset's batch over
    one tick of 16 iterations (one lazy R1 step, as in training), the three variants in turn,
    `rounds` times; the fastest round of each."""
    from training.config import default_precision     # pylint: disable=import-outside-toplevel (not in older trees: --against)
    resolved = default_precision(device, False)
    print(f'Defaults: before (--workers=3 --precision=fp32) vs today\'s, on {device} with {os.cpu_count()} cores '
          f'(--precision=auto resolves to {resolved} here); the preset\'s batch, 16 iterations per row, best of {rounds} rounds')
    print()
    print('| resolution | preset | batch | workers | precision | sec/kimg | speed vs before |')
    print('|---|---|---:|---:|---|---:|---:|')
    variants = ((3, 'fp32'), (None, 'fp32'), (None, 'auto'))
    with tempfile.TemporaryDirectory() as tmp:
        for res, cfg, channels in ((32, 'fpa-cpu', (None, None)), (64, 'fpa', (cbase, cmax))):
            if res not in resolutions:
                continue
            batch = build_training_config(dict(cfg=cfg), dict(name='bench', resolution=res, num_channels=3, num_images=1,
                                                             has_labels=False)).batch_size
            data = make_dataset(os.path.join(tmp, f'defaults{res}'), res, batch)
            results = {}
            for _ in range(rounds):
                for workers, precision in variants:
                    r = measure(data, res, None, precision, batch, 16, device, *channels, iters_per_tick=16, cfg=cfg, workers=workers)
                    best = results.get((workers, precision))
                    results[workers, precision] = r if best is None or r.sec_per_kimg < best.sec_per_kimg else best
            before = results[variants[0]].sec_per_kimg
            for workers, precision in variants:
                r = results[workers, precision]
                workers_label = '3' if workers is not None else f'{r.workers} (default)'
                precision_label = 'fp32' if precision == 'fp32' else f'{resolved} (auto, default)'
                print(f'| {res}x{res} | {cfg} (D {r.D_channels}) | {batch} | {workers_label} | {precision_label} | '
                      f'{r.sec_per_kimg:.1f} | {before / r.sec_per_kimg:.2f}x |', flush=True)

def against_table(rev: str, device: str, cbase: int | None, cmax: int | None, rounds: int = 3) -> None:
    """This tree's training step against the code of git revision `rev`, each with its own
    defaults (precision, DataLoader workers, optimiser, ...), at this tree's preset batch and
    the same D: fpa-cpu at 32x32 and fpa at 64x64 (D narrowed on the CPU as above). Every
    measurement is a fresh process (a row of --row with BENCH_CODE naming the tree), the two
    trees in turn, `rounds` times; the fastest of each."""
    cbase = cbase if cbase is not None else (4096 if device == 'cpu' else 0)
    cmax = cmax if cmax is not None else (256 if device == 'cpu' else 0)
    commit = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', rev], check=True, capture_output=True, text=True).stdout.strip()
    head = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'], check=True, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(['git', '-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], check=True, capture_output=True, text=True).stdout
    print(f'This tree ({head}{" + uncommitted changes" if dirty else ""}) against {rev} ({commit}), each with its own defaults, on {device} '
          f'with {os.cpu_count()} cores; 16 iterations per row (one lazy R1 step), best of {rounds} rounds, a fresh process per row')
    print()
    print('| resolution | preset | batch | code | sec/kimg | speed vs against |')
    print('|---|---|---:|---|---:|---:|')
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = os.path.join(tmp, 'against')
        os.makedirs(old_tree)
        archive = subprocess.run(['git', '-C', ROOT, 'archive', commit], check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(old_tree, filter='data')
        for res, cfg, channels in ((32, 'fpa-cpu', (None, None)), (64, 'fpa', (cbase or None, cmax or None))):
            batch = build_training_config(dict(cfg=cfg), dict(name='bench', resolution=res, num_channels=3, num_images=1,
                                                             has_labels=False)).batch_size
            data = make_dataset(os.path.join(tmp, f'against{res}'), res, batch)
            row = dict(data=data, resolution=res, gen=None, precision=None, batch=batch, timed_iters=16, device=device,
                       cbase=channels[0], cmax=channels[1], iters_per_tick=16, cfg=cfg, workers=None)
            best = {}
            for _ in range(rounds):
                for tree in (old_tree, ROOT):
                    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--row', json.dumps(row)], check=True,
                                         capture_output=True, text=True, env=dict(os.environ, BENCH_CODE=tree)).stdout
                    sec_per_kimg = json.loads(out.strip().splitlines()[-1])['sec_per_kimg']
                    best[tree] = min(best.get(tree, sec_per_kimg), sec_per_kimg)
            for tree, label in ((old_tree, f'{rev} ({commit})'), (ROOT, 'this tree')):
                print(f'| {res}x{res} | {cfg} | {batch} | {label} | {best[tree]:.2f} | {best[old_tree] / best[tree]:.2f}x |', flush=True)

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
