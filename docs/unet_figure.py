"""Draw docs/results.md's U-Net comparison: for each network, one row of its FPA's images (the
painting W, before any U-Net) and, for an FPA/U-Net, one row of the U-Net's refined images, of
the same seeds, so that what the refinement step changes is seen image by image.

    python docs/unet_figure.py --net="a) two-stage=runs/a/network-snapshot-000100.pkl" \\
        --net="b) FPA continued=runs/b/network-snapshot-000100.pkl" --seeds=0-11 --out=docs/results/unet-emoji.png

Rows are labelled on the left with the --net label and "FPA" or "U-Net"; G_ema of each file,
truncation 1, seeds as generate.py (the same z for every network).
"""

import os
import sys

import click
import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from painting import api, latents, pictures        # noqa: E402

def figure_rows(G: torch.nn.Module, seeds: list[int]) -> list[tuple[str, np.ndarray]]:
    """[('FPA', uint8 [n, H, W, C])] plus ('U-Net', ...) for an FPA/U-Net."""
    z = latents.seeds_to_z(seeds, G.z_dim)
    c = latents.make_labels(G, None, len(seeds))
    with torch.no_grad():
        painted = G.paint(z, c)
    rgb = lambda images: np.broadcast_to(images, images.shape[:3] + (3,)) if images.shape[3] == 1 else images
    rows = [('FPA', rgb(pictures.to_uint8(painted.image)))]
    if painted.refined is not None:
        rows.append(('U-Net', rgb(pictures.to_uint8(painted.refined))))
    return rows

def labelled(image: np.ndarray, labels: list[str], row_px: int, label_px: int = 170) -> np.ndarray:
    """The figure with a white strip on the left holding one label per row."""
    canvas = PIL.Image.new('RGB', (image.shape[1] + label_px, image.shape[0]), 'white')
    canvas.paste(PIL.Image.fromarray(image), (label_px, 0))
    draw = PIL.ImageDraw.Draw(canvas)
    for i, text in enumerate(labels):
        draw.text((4, i * row_px + row_px // 2 - 6), text, fill='black')
    return np.asarray(canvas)

@click.command()
@click.option('--net', 'nets', multiple=True, required=True, metavar='LABEL=PATH', help='A labelled network file (repeat)')
@click.option('--seeds', default='0-11', show_default=True, help='Seeds, e.g. 0-11')
@click.option('--scale', default=2, show_default=True, type=click.IntRange(1, 8), help='Pixel scale')
@click.option('--out', required=True, metavar='PNG', help='Output file')
def main(nets, seeds, scale, out):
    """Rows of FPA images and U-Net refinements of the same seeds, one pair per network."""
    seeds = latents.parse_seeds(seeds)
    rows, labels = [], []
    try:
        generators = api.load_labelled_generators(nets)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint='--net') from None
    for label, G in generators:
        if G.img_resolution != generators[0][1].img_resolution:
            raise click.BadParameter(f'"{label}": {G.img_resolution}x{G.img_resolution} images, unlike the first network\'s', param_hint='--net')
        if not hasattr(G, 'paint'):
            raise click.BadParameter(f'"{label}": not a painter (FPA or FPA/U-Net)', param_hint='--net')
        for kind, images in figure_rows(G, seeds):
            rows.append([pictures.upscale(im, scale) for im in images])
            labels.append(f'{label}: {kind}')
    grid = pictures.tile(rows, gap_px=2)
    row_px = (grid.shape[0] + 2) // len(rows)
    pictures.save_image(labelled(grid, labels, row_px), out)
    print(f'Wrote {out} ({len(rows)} rows of {len(seeds)} seeds)')

if __name__ == '__main__':
    main()
