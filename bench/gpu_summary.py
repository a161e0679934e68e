"""Collect one training run into the folder that bench/gpu_train.sh brings back (8 files or fewer).

    python bench/gpu_summary.py --run-dir=runs/00000-... --out=gpu-train --metric=fid10k_full

Writes stats.jsonl and metric-fid.jsonl (copies), fid-curve.png (FID against kimg and against
training minutes; absent without FIDs), fakes.png (the top-left 8x8 samples of the last grid),
paint.png (the last painting grid, for generators that paint) and summary.md (one table row).
"""

import json
import os
import shutil
import sys

import click

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import study   # noqa: E402  (bench/study.py: plots, grids, parameter counts)

BLUE = (31, 119, 180)

def read_jsonl(path: str) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]

def snapshot_kimg(snapshot_pkl: str) -> float:
    """network-snapshot-KKKKKK.pkl -> KKKKKK."""
    return float(os.path.basename(snapshot_pkl).rsplit('-', 1)[1].split('.')[0])

@click.command()
@click.option('--run-dir', required=True, metavar='DIR', help='train.py run directory')
@click.option('--out', required=True, metavar='DIR', help='Folder to write into')
@click.option('--metric', default='fid10k_full', show_default=True, help='The metric train.py computed, or none')
@click.option('--elapsed-s', type=float, default=None, help='Seconds the whole command took (for summary.md)')
def main(run_dir, out, metric, elapsed_s):
    stats = read_jsonl(os.path.join(run_dir, 'stats.jsonl'))
    if not stats:
        raise click.BadParameter(f'{run_dir} has no stats.jsonl lines (did training run a tick?)', param_hint='--run-dir')
    os.makedirs(out, exist_ok=True)
    shutil.copyfile(os.path.join(run_dir, 'stats.jsonl'), os.path.join(out, 'stats.jsonl'))
    points = []     # (kimg, training minutes, FID)
    if metric != 'none':
        rows = read_jsonl(os.path.join(run_dir, f'metric-{metric}.jsonl'))
        with open(os.path.join(out, 'metric-fid.jsonl'), 'w') as f:
            f.writelines(json.dumps(row) + '\n' for row in rows)
        sec_at_kimg = [(s['Progress/kimg']['mean'], s['Timing/total_sec']['mean']) for s in stats]
        for row in rows:
            kimg = snapshot_kimg(row['snapshot_pkl'])
            sec = min(sec_at_kimg, key=lambda ks: abs(ks[0] - kimg))[1]
            points.append((kimg, sec / 60, row['results'][metric]))
    with open(os.path.join(run_dir, 'training_options.json')) as f:
        options = json.load(f)
    label = options['G_kwargs']['class_name'].split('.')[1]     # networks.fpa.Generator -> fpa
    if points:
        from PIL import Image
        halves = [os.path.join(out, f'.fid-{axis}.png') for axis in ('kimg', 'minutes')]
        study.plot_curves([(label, BLUE, [(k, fid) for k, _, fid in points])], None, 'kimg', f'{metric} vs kimg', halves[0])
        study.plot_curves([(label, BLUE, [(m, fid) for _, m, fid in points])], None, 'training minutes', f'{metric} vs time', halves[1])
        parts = [Image.open(path) for path in halves]
        curve = Image.new('RGB', (sum(p.width for p in parts), max(p.height for p in parts)), 'white')
        for i, part in enumerate(parts):
            curve.paste(part, (sum(p.width for p in parts[:i]), 0))
        curve.save(os.path.join(out, 'fid-curve.png'))
        for path in halves:
            os.remove(path)
    fakes = study.newest(os.path.join(run_dir, 'fakes[0-9]*.png'))
    network = study.newest(os.path.join(run_dir, 'network-snapshot-*.pkl'))
    res = options['training_set_kwargs']['resolution']
    if fakes is not None:
        study.crop_grid(fakes, os.path.join(out, 'fakes.png'), 8, res)
    paint = study.newest(os.path.join(run_dir, 'paint[0-9]*.png'))
    if paint is not None:
        shutil.copyfile(paint, os.path.join(out, 'paint.png'))
    last = stats[-1]
    kimg, sec = last['Progress/kimg']['mean'], last['Timing/total_sec']['mean']
    total, trained = study.parameter_counts(network) if network else (0, 0)
    fid = f'{points[-1][2]:.2f}' if points else 'not computed'
    lines = ['| generator | FID (' + metric + ') | kimg | training minutes | sec/kimg | G parameters |', '|---|---:|---:|---:|---:|---:|',
             f'| {label} | {fid} | {kimg:.1f} | {sec / 60:.1f} | {sec / max(kimg, 1e-9):.2f} | {total:,} |', '',
             f'Run directory {run_dir}; last snapshot {os.path.basename(network) if network else "none"}'
             + (f'; the whole command took {elapsed_s / 60:.1f} minutes.' if elapsed_s is not None else '.')]
    with open(os.path.join(out, 'summary.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))

if __name__ == '__main__':
    main()
