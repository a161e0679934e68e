"""Draw docs/augment-ops.png: each ADA operation alone at p = 1 on a few images.

Images: the first Fashion-MNIST training items, tinted so that colour operations show
(when the Debian package dataset-fashion-mnist is installed), otherwise generated shapes.
Each column is a different random draw; the first row is the input.

    python docs/augment_ops.py [--out docs/augment-ops.png] [--num 6] [--seed 0]
"""

import os
import sys

import click
import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset_tool import read_idx                        # noqa: E402
from training.augment import AUGPIPE_SPECS, AugmentPipe  # noqa: E402

FASHION_MNIST = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz'
OPS = [op for spec in ('blit', 'geom', 'color', 'filter', 'noise', 'cutout') for op in AUGPIPE_SPECS[spec]]
TINTS = np.array([[230, 90, 60], [60, 140, 230], [90, 200, 90], [240, 200, 60], [180, 90, 220], [60, 200, 200]], dtype=np.float32) / 255

#----------------------------------------------------------------------------

def load_images(num: int) -> tuple[torch.Tensor, str]:
    """[num, 3, 32, 32] in [-1, 1] and a description of where they came from."""
    if os.path.isfile(FASHION_MNIST):
        grey = read_idx(FASHION_MNIST, 2051, num).astype(np.float32) / 255           # [N, 28, 28]
        grey = np.pad(grey, [[0, 0], [2, 2], [2, 2]])
        tint = TINTS[np.arange(num) % len(TINTS)][:, :, None, None]                 # Garment colour on a light background.
        rgb = grey[:, None] * tint + (1 - grey[:, None]) * 0.92
        return torch.from_numpy(rgb * 2 - 1), 'Fashion-MNIST (tinted)'
    rng = np.random.default_rng(0)
    coords = (np.arange(32) + 0.5) / 32
    images = []
    for i in range(num):   # A coloured disc and a bar on a gradient.
        cx, cy, r = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65), rng.uniform(0.15, 0.25)
        disc = ((coords[None, :] - cx) ** 2 + (coords[:, None] - cy) ** 2 < r ** 2).astype(np.float32)
        bar = ((np.abs(coords[:, None] - 0.2) < 0.06) & (coords[None, :] > 0.3)).astype(np.float32)
        base = np.stack([coords[None, :].repeat(32, 0) * 0.5 + 0.25] * 3)
        img = base * (1 - disc) + TINTS[i % len(TINTS)][:, None, None] * disc
        img = img * (1 - bar) + 0.1 * bar
        images.append(img)
    return torch.from_numpy(np.stack(images).astype(np.float32) * 2 - 1), 'generated shapes'

def to_pil(image: torch.Tensor, zoom: int) -> PIL.Image.Image:
    array = ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return PIL.Image.fromarray(array).resize((array.shape[1] * zoom, array.shape[0] * zoom), PIL.Image.NEAREST)

#----------------------------------------------------------------------------

@click.command()
@click.option('--out',  help='Output PNG', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'augment-ops.png'), show_default=True)
@click.option('--num',  help='Images per row', type=click.IntRange(1, 12), default=6, show_default=True)
@click.option('--seed', help='Random seed', type=int, default=0, show_default=True)
def main(out, num, seed):
    images, source = load_images(num)
    zoom, gap, label_w, title_h = 2, 4, 96, 22
    cell = images.shape[-1] * zoom
    rows = [('input', images)]
    for op in OPS:
        torch.manual_seed(seed)
        pipe = AugmentPipe(**{op: 1})   # p defaults to 1: every image gets the op.
        rows.append((op, pipe(images).detach()))
    canvas = PIL.Image.new('RGB', (label_w + num * (cell + gap), title_h + len(rows) * (cell + gap)), 'white')
    draw = PIL.ImageDraw.Draw(canvas)
    draw.text((4, 4), f'ADA operations at p = 1 on {source}; one random draw per column', fill='black')
    for r, (label, batch) in enumerate(rows):
        y = title_h + r * (cell + gap)
        draw.text((4, y + cell // 2 - 6), label, fill='black')
        for c in range(num):
            canvas.paste(to_pil(batch[c], zoom), (label_w + c * (cell + gap), y))
    canvas.save(out)
    print(f'Wrote {out} ({len(rows) - 1} operations on {source})')

if __name__ == '__main__':
    main()
