"""Style-mixing grids with StyleGAN2-ADA's style_mixing.py options and output names.

    python style_mixing.py --network=net.pkl --rows=85,100,75 --cols=55,821,1789 --outdir=out

Each cell takes the ws of its row seed, with the rows of ws listed by --styles taken from its
column seed: synthesis layers for StyleGAN2, painting steps for the FPA (row t of ws drives
step t). Writes <row>-<col>.png for every cell, <seed>-<seed>.png for every row and column
seed, and grid.png (column seeds along the top, row seeds down the left), as upstream. The
work is done by painting.api (docs/generate.md, "style_mixing.py").
"""

import os
import re

import click

import dnnlib
from generate import _fail, _fail_outdir, _finite, _seeds
from painting import api, paintings, pictures

#----------------------------------------------------------------------------

MAX_STYLE_ROW = 65536   # Bound on the numbers of --styles before a range is expanded.

def _styles(_ctx, _param, value: str) -> list[int]:
    """'0-6' or '0,3,5-12' -> rows of ws (checked against the network once it is loaded)."""
    numbers = [int(n) for n in re.findall(r'\d+', value)]
    if numbers and max(numbers) > MAX_STYLE_ROW:
        raise click.BadParameter(f'"{value}": {max(numbers)} is beyond any network\'s rows of ws')
    try:
        styles = dnnlib.util.parse_int_list(value)
    except ValueError as err:
        raise click.BadParameter(f'"{value}": {err}') from None
    if not styles:
        raise click.BadParameter(f'"{value}": expected at least one row of ws')
    return styles

@click.command()
@click.option('--network', 'network_pkl',   help='Network file (path or URL)', metavar='PATH|URL', required=True)
@click.option('--rows', 'row_seeds',        help='Random seeds to use for image rows, e.g. 85,100,75 or 0-4', metavar='LIST', callback=_seeds, required=True)
@click.option('--cols', 'col_seeds',        help='Random seeds to use for image columns', metavar='LIST', callback=_seeds, required=True)
@click.option('--styles', 'col_styles',     help='Rows of ws taken from the column seed: StyleGAN2 layers, FPA painting steps', metavar='LIST', callback=_styles, default='0-6', show_default=True)
@click.option('--trunc', 'truncation_psi',  help='Truncation psi', type=float, callback=_finite, default=1, show_default=True)
@click.option('--noise-mode',               help='StyleGAN2 noise mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--outdir',                   help='Where to save the outputs', metavar='DIR', required=True)
@click.option('--class', 'class_idx',       help='Class label (conditional networks; ignored with a warning otherwise)', type=int, metavar='INT')
@click.option('--device',                   help='auto, cpu, cuda or cuda:N', default='auto', show_default=True)
@click.option('--overwrite',                help='Replace files of the same names in --outdir', is_flag=True)
def main(network_pkl, row_seeds, col_seeds, col_styles, truncation_psi, noise_mode, outdir, class_idx, device, overwrite):
    """Generate a style-mixing grid: row seeds x column seeds, the --styles rows of ws from the
    column seed.

    \b
    python style_mixing.py --network=net.pkl --rows=85,100,75,458,1500 --cols=55,821,1789,293 --outdir=out
    python style_mixing.py --network=fpa.pkl --rows=0-3 --cols=10-13 --styles=32-63 --outdir=out   # FPA: the last 32 steps
    """
    try:
        G = api.open_generator_for_script(network_pkl, device, outdir)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    try:
        api.check_style_mixing(G, col_styles)
    except ValueError as err:
        _fail('--styles', err)
    try:
        class_idx = api.check_class(G, class_idx)
    except ValueError as err:
        _fail('--class', err)

    names = [f'{a}-{b}.png' for a in row_seeds for b in col_seeds] + [f'{seed}-{seed}.png' for seed in row_seeds + col_seeds] + ['grid.png']
    try:
        api.check_outputs_free(outdir, names, overwrite)
    except ValueError as err:
        raise click.ClickException(str(err)) from None

    print('Generating style-mixed images...')
    mixing = api.style_mixing_images(G, row_seeds, col_seeds, col_styles=col_styles, class_idx=class_idx,
                                     truncation_psi=truncation_psi, noise_mode=noise_mode)
    try:
        for part in (mixing.rows, mixing.cols, mixing.mixed):
            api.check_finite_images(part)
    except ValueError as err:
        _fail('--network', f'{network_pkl}: {err}')
    images = {(seed, seed): image for seeds, part in [(row_seeds, mixing.rows), (col_seeds, mixing.cols)]
              for seed, image in zip(seeds, pictures.to_uint8(part))}
    for i, row_seed in enumerate(row_seeds):
        for j, col_seed in enumerate(col_seeds):
            images[(row_seed, col_seed)] = pictures.to_uint8(mixing.mixed[i, j:j + 1])[0]
    try:
        os.makedirs(outdir, exist_ok=True)
        for (row_seed, col_seed), image in images.items():
            pictures.save_image(image, os.path.join(outdir, f'{row_seed}-{col_seed}.png'))
        pictures.save_image(api.style_mixing_grid(mixing, gap_px=0, background=0), os.path.join(outdir, 'grid.png'))
    except OSError as err:
        _fail_outdir(outdir, err)
    what = 'painting steps' if paintings.paints(G) else 'rows of ws'
    print(f'Wrote {len(images)} images and grid.png to "{outdir}" ({what} {",".join(map(str, col_styles))} of {G.num_ws} from the column seeds)')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
