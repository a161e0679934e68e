"""Generate images with a trained network, and watch the Fast Weight Painter paint them.

Upstream StyleGAN2-ADA usage works unchanged:
    python generate.py --network=network-snapshot-000100.pkl --seeds=0-7 --outdir=out
Each option below adds its own outputs for the same seeds (see docs/generate.md). The work
is done by painting.api; this file only parses options and names the output files.
"""

import math
import os
import re

import click

import dnnlib
import networks
from painting import animation, api, latents, paintings, pictures

#----------------------------------------------------------------------------

def _seeds(ctx, param, value):
    if value is None:
        return None
    try:
        return latents.parse_seeds(value)
    except ValueError as err:
        message = str(err)
        raise click.BadParameter(message if message.startswith(f'"{value}"') else f'"{value}": {message}') from None

def _grid(ctx, param, value):
    m = re.fullmatch(r'(\d+)x(\d+)', value)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise click.BadParameter(f'"{value}": expected WxH with positive sizes, e.g. 4x2')
    return int(m.group(1)), int(m.group(2))

def _finite(_ctx, _param, value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter(f'{value}: expected a finite number (1 = no truncation, 0 = the average image)')
    return value

def _translation(_ctx, _param, value):
    if value is None:
        return None
    parts = value.split(',')
    try:
        x, y = (float(part) for part in parts)
    except ValueError:
        x = y = math.nan
    if len(parts) != 2 or not (math.isfinite(x) and math.isfinite(y)):
        raise click.BadParameter(f'"{value}": expected two numbers X,Y (fractions of the image size), e.g. 0.25,-0.1')
    return x, y

def _angle(_ctx, _param, value):
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f'{value}: expected a finite angle in degrees')
    return value

def _fail(option: str, err: Exception):
    raise click.ClickException(f'{option}: {err}')

def _fail_outdir(outdir: str, err: OSError):
    raise click.ClickException(f'--outdir={outdir}: cannot write {err.filename or "there"} ({err.strerror or err})') from None

def write_projected(G, projected_w: str, outdir: str, noise_mode: str, overwrite: bool) -> None:
    """projNN.png for each row of the codes in projected_w, as upstream; the noise maps the
    projector optimised (stored beside w) replace the network's own constant noise."""
    try:
        projected = latents.load_projected_w(projected_w, G)
    except ValueError as err:
        _fail('--projected-w', err)
    try:
        api.check_outputs_free(outdir, [f'proj{idx:02d}.png' for idx in range(len(projected.ws))], overwrite)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    latents.set_noise_buffers(G, projected.noise)
    os.makedirs(outdir, exist_ok=True)
    for idx, ws in enumerate(projected.ws):
        try:
            image = pictures.to_uint8(api.check_finite_images(G.synthesis(ws.unsqueeze(0), noise_mode=noise_mode), f'the image of code {idx}'))[0]
        except ValueError as err:
            _fail('--projected-w', err)
        pictures.save_image(image, os.path.join(outdir, f'proj{idx:02d}.png'))
    print(f'Wrote {len(projected.ws)} images of projected codes to "{outdir}" (proj00.png ...)')

def write_images(G, seeds: list[int], outdir: str, network_pkl: str, noise_mode: str, common: dict, image_batch: int) -> None:
    """seedNNNN.png for every seed, as upstream, written batch by batch (nothing held for all seeds)."""
    if len(seeds) > image_batch:
        print(f'Writing {len(seeds)} images to "{outdir}" (seed{seeds[0]:04d}.png ...)')
    for start in range(0, len(seeds), image_batch):
        batch = seeds[start : start + image_batch]
        try:
            images = api.check_finite_images(api.generate_images(G, batch, noise_mode=noise_mode, **dict(common, batch_size=image_batch)),
                                              f'the images of seeds {batch[0]}..{batch[-1]}' if len(batch) > 1 else f'the image of seed {batch[0]}')
        except ValueError as err:
            _fail('--network', f'{network_pkl}: {err}')
        for seed, image in zip(batch, pictures.to_uint8(images)):
            pictures.save_image(image, os.path.join(outdir, f'seed{seed:04d}.png'))
    print(f'Wrote {len(seeds)} images to "{outdir}" (seed{seeds[0]:04d}.png ...)')

def write_paintings(G, seeds: list[int], outdir: str, common: dict, paint: bool, paint_channels: bool, paint_animation: bool,
                    anim_updates: bool, scale: int, paint_wrap: int | None, frame_ms: int, hold_ms: int) -> None:
    """paint-seedNNNN.png (rank-1 updates over partial images), -channels.png and the animations."""
    painted = paintings.paint_seeds(G, seeds, **common)
    if paint_animation and not animation.mp4_available():
        print(animation.MP4_MISSING)
    for i, seed in enumerate(seeds):
        stem = os.path.join(outdir, f'paint-seed{seed:04d}')
        if paint:
            pictures.save_image(paintings.painting_figure(painted, i, scale=scale, wrap=paint_wrap), stem + '.png')
        if paint_channels:
            pictures.save_image(paintings.channel_figure(painted, i, scale=scale, wrap=paint_wrap), stem + '-channels.png')
        if paint_animation:
            anim = paintings.painting_animation_frames(painted, i, scale=scale, with_updates=anim_updates)
            for suffix in ('.gif', '.webp'):
                animation.save_animation(anim, stem + suffix, frame_ms=frame_ms, hold_ms=hold_ms)
            if animation.mp4_available():
                animation.save_mp4(anim, stem + '.mp4', frame_ms=frame_ms, hold_ms=hold_ms)
    print(f'Wrote the painting of {len(seeds)} seeds ({painted.updates.shape[1]} steps) to "{outdir}" (paint-seed{seeds[0]:04d}.*)')

def output_names(seeds: list[int], paint: bool, paint_channels: bool, paint_animation: bool, interp: str | None,
                 mix_steps: list[int] | None) -> list[str]:
    """The names of the files a run writes under --outdir (for the check against replacing files)."""
    names = [f'seed{seed:04d}.png' for seed in seeds]
    suffixes = (['.png'] if paint else []) + (['-channels.png'] if paint_channels else []) + (['.gif', '.webp', '.mp4'] if paint_animation else [])
    names += [f'paint-seed{seed:04d}{suffix}' for seed in seeds for suffix in suffixes]
    names += [f'interp-{interp}{suffix}' for suffix in ('.gif', '.mp4')] if interp is not None else []
    names += [f'stylemix-k{k:02d}.png' for k in mix_steps or []]
    return names

#----------------------------------------------------------------------------

@click.command()
@click.option('--network', 'network_pkl',   help='Network file (path or URL)', metavar='PATH|URL', required=True)
@click.option('--seeds',                    help='Seeds, e.g. 0,3,5-12 (or --projected-w)', metavar='LIST', callback=_seeds)
@click.option('--projected-w',              help='Codes from projector.py (projected_w.npz): writes projNN.png instead of seeds', metavar='FILE')
@click.option('--trunc', 'truncation_psi',  help='Truncation psi', type=float, callback=_finite, default=1, show_default=True)
@click.option('--class', 'class_idx',       help='Class label (conditional networks; ignored with a warning otherwise)', type=int, metavar='INT')
@click.option('--translate',                help='Translate the images by X,Y (fractions of the image size; StyleGAN3 only)', metavar='X,Y', callback=_translation)
@click.option('--rotate',                   help='Rotate the images by this angle in degrees (StyleGAN3 only)', type=float, metavar='DEG', callback=_angle)
@click.option('--noise-mode',               help='StyleGAN2 noise mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--outdir',                   help='Where to save the outputs', metavar='DIR', required=True)
@click.option('--batch', 'batch_size',      help='Samples per forward pass (does not change the images)', type=click.IntRange(min=1), default=16, show_default=True)
@click.option('--device',                   help='auto, cpu, cuda or cuda:N', default='auto', show_default=True)
@click.option('--paint',                    help='Painting figure per seed: rank-1 updates over partial images', is_flag=True)
@click.option('--paint-wrap',               help='Painting figures: steps per band  [default: all in one band]', type=click.IntRange(min=1), metavar='INT')
@click.option('--paint-channels',           help='Per-channel figure per seed: written vectors, keys and updates', is_flag=True)
@click.option('--paint-animation',          help='Animation per seed of the image being painted (GIF, WebP, MP4)', is_flag=True)
@click.option('--anim-updates',             help='Show the rank-1 update beside the partial image in animations', is_flag=True)
@click.option('--frame-ms',                 help='Animation frame duration in ms', type=click.IntRange(min=20), default=100, show_default=True)
@click.option('--hold-ms',                  help='Extra time on the last animation frame in ms', type=click.IntRange(min=0), default=1500, show_default=True)
@click.option('--scale',                    help='Pixel scale of figures, animations and videos [default: at least 64 px per image]', type=click.IntRange(min=1))
@click.option('--interp',                   help='Interpolation video: slerp in z or lerp in w', type=click.Choice(['z', 'w']))
@click.option('--grid',                     help='Interpolation grid; the seeds fill it keyframe after keyframe', metavar='WxH', callback=_grid, default='1x1', show_default=True)
@click.option('--frames',                   help='Interpolation frames per keyframe transition', type=click.IntRange(min=1), default=24, show_default=True)
@click.option('--style-mix', 'mix_cols',    help='Style-mixing grid: these column seeds against the --seeds rows', metavar='LIST', callback=_seeds)
@click.option('--mix-steps',                help='Rows of ws (painting steps) taken from the row seed, e.g. 4,8 [default: num_ws/2]', metavar='LIST')
@click.option('--overwrite',                help='Replace files of the same names in --outdir', is_flag=True)
def main(network_pkl, seeds, projected_w, truncation_psi, class_idx, translate, rotate, noise_mode, outdir, batch_size, device,
         paint, paint_wrap, paint_channels, paint_animation, anim_updates, frame_ms, hold_ms, scale,
         interp, grid, frames, mix_cols, mix_steps, overwrite):
    """Generate images (seedNNNN.png), painting figures and animations, interpolation videos
    and style-mixing grids.

    \b
    python generate.py --network=net.pkl --seeds=0-7 --outdir=out
    python generate.py --network=net.pkl --seeds=0-3 --outdir=out --paint --paint-animation
    python generate.py --network=net.pkl --seeds=0-11 --outdir=out --interp=z --grid=3x2
    python generate.py --network=net.pkl --seeds=0-3 --outdir=out --style-mix=10-15 --mix-steps=4,8
    python generate.py --network=net.pkl --projected-w=proj/projected_w.npz --outdir=out
    python generate.py --network=sg3.pkl --seeds=0-3 --outdir=out --translate=0.25,0 --rotate=30
    """
    if (seeds is None) == (projected_w is None):
        raise click.UsageError('give either --seeds or --projected-w (codes from projector.py)')
    if projected_w is not None and (paint or paint_channels or paint_animation or interp or mix_cols):
        raise click.UsageError('--projected-w writes projNN.png only; the painting, interpolation and style-mixing options take --seeds '
                               '(projector.py draws the painting of a projection)')
    try:
        G = api.open_generator_for_script(network_pkl, device, outdir)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    if translate is not None or rotate is not None:    # As StyleGAN3's gen_images.py (also for --projected-w).
        try:
            networks.set_input_transform(G, translate or (0, 0), rotate or 0)
        except ValueError as err:
            _fail('--translate' if translate is not None else '--rotate', err)
    if projected_w is not None:
        try:
            write_projected(G, projected_w, outdir, noise_mode, overwrite)
        except OSError as err:
            _fail_outdir(outdir, err)
        return
    try:
        class_idx = api.check_class(G, class_idx)
    except ValueError as err:
        _fail('--class', err)
    painting_flags = [flag for flag, given in [('--paint', paint), ('--paint-channels', paint_channels), ('--paint-animation', paint_animation)] if given]
    if painting_flags:
        try:
            paintings.check_paints(G)
        except ValueError as err:
            _fail(painting_flags[0], err)
    try:
        mix_steps = [G.num_ws // 2] if mix_steps is None else dnnlib.util.parse_int_list(mix_steps)
        for k in mix_steps if mix_cols is not None else []:
            api.check_style_mixing(G, api.styles_after(G, k))
    except ValueError as err:
        _fail('--mix-steps', err)
    if interp is not None:
        try:
            animation.check_interpolation(len(seeds), *grid)
        except ValueError as err:
            _fail('--interp', err)
    if scale is not None:
        try:
            pictures.check_scale(G.img_resolution, scale)
        except ValueError as err:
            _fail('--scale', err)
    scale = scale or pictures.auto_scale(G.img_resolution)
    try:
        api.check_outputs_free(outdir, output_names(seeds, paint, paint_channels, paint_animation, interp,
                                                    mix_steps if mix_cols is not None else None), overwrite)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    try:   # Every file goes under --outdir: one line when it cannot be written (e.g. /proc/x, a full disk).
        os.makedirs(outdir, exist_ok=True)
        # Forward passes hold at most api.MAX_BATCH_ELEMENTS output values: a painting keeps num_ws frames per sample.
        common = dict(class_idx=class_idx, truncation_psi=truncation_psi, batch_size=api.bounded_batch(G, batch_size, frames=G.num_ws))

        write_images(G, seeds, outdir, network_pkl, noise_mode, common, api.bounded_batch(G, batch_size))
        if painting_flags:
            write_paintings(G, seeds, outdir, common, paint, paint_channels, paint_animation, anim_updates, scale, paint_wrap, frame_ms, hold_ms)

        # Interpolation video.
        if interp is not None:
            video = animation.interpolation_frames(G, seeds, grid_w=grid[0], grid_h=grid[1], frames_per_transition=frames, space=interp,
                                             noise_mode=noise_mode, scale=scale, **common)
            stem = os.path.join(outdir, f'interp-{interp}')
            animation.save_animation(video, stem + '.gif', frame_ms=frame_ms, hold_ms=0)
            if animation.mp4_available():
                animation.save_mp4(video, stem + '.mp4', frame_ms=frame_ms, hold_ms=0)
            else:
                print(animation.MP4_MISSING)
            print(f'Wrote {len(video)} interpolation frames to "{stem}.gif"')

        # Style mixing across the rows of ws.
        if mix_cols is not None:
            for k in mix_steps:
                mixing = api.style_mixing_images(G, seeds, mix_cols, col_styles=api.styles_after(G, k), noise_mode=noise_mode, **common)
                path = os.path.join(outdir, f'stylemix-k{k:02d}.png')
                pictures.save_image(api.style_mixing_grid(mixing, scale=scale), path)
                print(f'Wrote "{path}" (first {k} of {G.num_ws} rows of ws from the row seeds)')
    except OSError as err:
        _fail_outdir(outdir, err)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
