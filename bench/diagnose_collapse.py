"""Why does a run collapse? The measurements behind docs/results.md's mode-collapse section.

    python bench/diagnose_collapse.py --run=runs/00000-emoji-google32-fpa-cpu-gpus1 --data=datasets/emoji-google32.zip

Prints two tables, cheap enough to run beside training (no Inception network):

1. Per tick, from the run's stats.jsonl: kimg, ADA's p and the real-sign statistic r_t it
   steers (E[sign(D(x_real))], target 0.6), the largest p that ADA's speed allows at that kimg
   (p <= kimg / ada_kimg: when p equals it, ADA has been raising p at full speed since the start,
   i.e. it is too slow for the run), and D's mean logits on reals and fakes with their gap.
2. Per snapshot (network-snapshot-*.pkl), G_ema on --num seeds:
   - pixel collapse index: the share of generated images whose nearest other generated image
     (pixel L2) is closer than the median nearest-neighbour distance among as many real
     images (metrics/collapse_index.collapse_index on pixels instead of Inception features;
     about 0.5 for data-like variety, near 1 for a few repeated images);
   - pixel spread: the mean distance between two generated images over the same among reals
     (1 = as spread as the data);
   - for painters, the latent path: how much the first key, the first written vector and the
     final image vary across seeds (the across-seed standard deviation over the root mean
     square, each averaged over its entries: 0 = the same for every z, about 1 = as varied as
     independent noise). A z that barely moves the first strokes shows here first.
3. For a painter's last snapshot, the same spread per painting step t: of the key, the written
   vector, the value and the learning rates the slow net emits at t, of the rank-1 update and of
   the partial image W_t. Where along the painting the seeds stop differing shows here.
"""

import glob
import json
import os
import re
import sys

import click
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dnnlib                               # noqa: E402
from metrics import collapse_index          # noqa: E402
from painting import api, latents           # noqa: E402
from training import dataset as dataset_mod  # noqa: E402

#----------------------------------------------------------------------------

def tick_rows(stats_path: str, ada_kimg: float) -> list[dict]:
    """One row per tick of a stats.jsonl."""
    rows = []
    with open(stats_path) as f:
        for line in f:
            s = json.loads(line)
            mean = lambda key: s[key]['mean'] if key in s else float('nan')
            kimg = mean('Progress/kimg')
            real, fake = mean('Loss/scores/real'), mean('Loss/scores/fake')
            rows.append(dict(kimg=kimg, p=mean('Progress/augment'), p_max=min(kimg / ada_kimg, 1.0), r_t=mean('Loss/signs/real'),
                             d_real=real, d_fake=fake, d_gap=real - fake))
    return rows

def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean distance between two different rows of x [n, d] (float64)."""
    d = torch.cdist(torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(x, dtype=torch.float64))
    n = len(x)
    return float(d.sum() / (n * (n - 1)))

def seed_spread(x: np.ndarray) -> float:
    """x [n, ...] one tensor per seed: sqrt(mean across-seed variance / mean square), 0 when every seed gives the same."""
    x = x.reshape(len(x), -1).astype(np.float64)
    return float(np.sqrt(x.var(0).mean() / max((x ** 2).mean(), 1e-30)))

#----------------------------------------------------------------------------

def real_images(data: str, num: int, seed: int = 0) -> np.ndarray:
    """num images of the dataset (a seeded random subset), float in [-1, 1], flattened [num, C*H*W]."""
    ds = dataset_mod.ImageFolderDataset(path=data, max_size=num, random_seed=seed)
    return np.stack([ds[i][0].astype(np.float64).reshape(-1) / 127.5 - 1 for i in range(len(ds))])

def snapshot_row(network: str, real: np.ndarray, num: int, keep_painting: bool = False) -> tuple[dict, dnnlib.EasyDict | None]:
    """The per-snapshot measurements of G_ema on seeds 0..num-1, and (keep_painting, painters
    only) its painting of them for step_rows."""
    G = api.load_generator(network, device='cpu')
    z = latents.seeds_to_z(list(range(num)), G.z_dim)
    c = torch.zeros([num, G.c_dim])
    with torch.no_grad():
        img = G(z, c, noise_mode='const').clamp(-1, 1)
        flat = img.reshape(num, -1).numpy()
        row = dict(pixel_collapse=collapse_index.collapse_index(real, flat),
                   pixel_spread=mean_pairwise_distance(flat) / mean_pairwise_distance(real),
                   image_spread=seed_spread(img.numpy()))
        painting = G.paint(z, c) if hasattr(G, 'paint') else None
    if painting is not None:
        row.update(first_key_spread=seed_spread(painting.key_vectors[:, 0].numpy()), first_written_spread=seed_spread(painting.written[:, 0].numpy()))
    return row, (painting if keep_painting else None)

def step_rows(painting: dnnlib.EasyDict) -> list[dict]:
    """Per painting step t of G.paint's output: the across-seed spread of what step t emits and of W_t."""
    num_steps = painting.updates.shape[1]
    steps = sorted({0, 1, 2, 4, 8, num_steps // 2, 3 * num_steps // 4, num_steps - 1} & set(range(num_steps)))
    spread = lambda x, t: None if x is None else seed_spread(x[:, t].numpy())
    return [dict(step=t + 1, key=spread(painting.key_vectors, t), written=spread(painting.written, t), value=spread(painting.value_vectors, t),
                 learning_rate=spread(painting.lrs, t), update=spread(painting.updates, t), partial_image=spread(painting.partials, t)) for t in steps]

def markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---:|' * len(columns)]
    for r in rows:
        lines.append('| ' + ' | '.join('' if r.get(k) is None else f'{r[k]:.3f}' if isinstance(r[k], float) else str(r[k]) for k in columns) + ' |')
    return '\n'.join(lines)

#----------------------------------------------------------------------------

@click.command()
@click.option('--run', 'run_dir', required=True, type=click.Path(exists=True, file_okay=False), help='A training run directory')
@click.option('--data', required=True, type=click.Path(exists=True), help='Its dataset (zip or folder)')
@click.option('--num', default=256, show_default=True, type=click.IntRange(min=4, max=4096), help='Seeds and real images per snapshot')
@click.option('--every', default=1, show_default=True, type=click.IntRange(min=1), help='Print every Nth tick')
def main(run_dir, data, num, every):
    """Collapse diagnosis of a training run: ADA and D per tick, variety and the latent path per snapshot."""
    stats_path, options_path = os.path.join(run_dir, 'stats.jsonl'), os.path.join(run_dir, 'training_options.json')
    if not os.path.isfile(stats_path):
        raise click.BadParameter(f'{run_dir}: no stats.jsonl (expected a training run directory)', param_hint='--run')
    ada_kimg = 500
    if os.path.isfile(options_path):
        with open(options_path) as f:
            ada_kimg = json.load(f).get('ada_kimg', 500)
    rows = tick_rows(stats_path, ada_kimg)
    print(f'Per tick (ada_kimg {ada_kimg}: p_max = kimg / ada_kimg is the most ADA can have reached)\n')
    print(markdown(rows[::every] + ([rows[-1]] if (len(rows) - 1) % every else []), ['kimg', 'p', 'p_max', 'r_t', 'd_real', 'd_fake', 'd_gap']))
    real = real_images(data, num)
    snaps = sorted(glob.glob(os.path.join(run_dir, 'network-snapshot-*.pkl')))
    out, painting = [], None
    for path in snaps:
        kimg = int(re.search(r'(\d+)\.pkl$', path).group(1))
        row, painting = snapshot_row(path, real, num, keep_painting=path == snaps[-1])
        out.append(dict(kimg=kimg, **row))
        print(f'  {os.path.basename(path)} done', file=sys.stderr)
    print(f'\nPer snapshot ({num} seeds, {num} real images)\n')
    print(markdown(out, ['kimg', 'pixel_collapse', 'pixel_spread', 'image_spread', 'first_key_spread', 'first_written_spread']))
    if painting is not None:
        print(f'\nPer painting step, {os.path.basename(snaps[-1])} ({num} seeds): spread across seeds\n')
        print(markdown(step_rows(painting), ['step', 'key', 'written', 'value', 'learning_rate', 'update', 'partial_image']))

if __name__ == '__main__':
    main()
