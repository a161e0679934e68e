"""Project an image into a generator: find the codes ws whose image matches a given target.

    python projector.py --network=network-snapshot-000100.pkl --target=photo.png --outdir=out

The method is StyleGAN2's projector (Karras et al., "Analyzing and Improving the Image Quality
of StyleGAN", CVPR 2020, section 5, as StyleGAN2-ADA's projector.py runs it): start from the
mean code of 10,000 mapped latents, minimise the distance between the synthesised image and
the target with Adam under a learning-rate ramp (up over the first 5% of the steps, cosine
down over the last 25%), add Gaussian noise to the codes that decays to zero over the first
75% (initial scale 0.05 x the spread of w), and optimise the constant noise maps of the
synthesis network too, when it has them, with a penalty (weight 1e5) on their
autocorrelation at every scale down to 8x8, renormalised after every step.

It works for every registered generator through the contract alone (networks/__init__.py):
G.mapping and G.synthesis, num_ws and w_dim. The codes are one w shared by all num_ws rows
(upstream, `--tied=1`) or one code per row (`--tied=0`); for a painting generator the rows
are the painting steps, so by default each step gets its own code, and the painting of the
projected image (G.synthesis_paint) is drawn as generate.py --paint draws it.

The distance: upstream's LPIPS-style VGG16 features (the StyleGAN2-ADA metrics file vgg16.pt,
loaded as calc_metrics.py loads it) when given, otherwise a multi-scale pixel distance that
needs no download (docs/projector.md).
"""

import copy
import math
import os
import time

import click
import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

import dnnlib
from metrics import metric_utils
from painting import animation, api, latents, paintings, pictures
from training.dataset import standardize_image

#----------------------------------------------------------------------------
# The target image.

def load_target(path: str, img_resolution: int, img_channels: int) -> np.ndarray:
    """uint8 [N, N, C]: the image centre-cropped to a square and resized (Lanczos) to the
    network's resolution, as upstream. A colour network takes any image (greyscale repeated);
    a greyscale network takes a greyscale image (or an RGB one whose channels are equal).
    Every problem is a one-line ValueError naming the file."""
    if img_channels not in (1, 3):
        raise ValueError(f'the network makes {img_channels}-channel images; a target image file can be matched only by a '
                         f'greyscale (1) or RGB (3) network')
    try:
        with PIL.Image.open(path) as im:
            img, _ = standardize_image(im)
            img = img.copy() # Independent of the file, which closes here.
    except FileNotFoundError:
        raise ValueError(f'"{path}": no such file') from None
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError) as err:  # PIL raises all of these for bad files.
        raise ValueError(f'"{path}": not a readable image ({err})') from None
    if img_channels == 1 and img.mode == 'RGB':
        rgb = np.asarray(img)
        if (rgb != rgb[:, :, :1]).any():
            raise ValueError(f'"{path}" is a colour image (RGB, 3 channels) but the network makes greyscale images '
                             f'(1 channel): give a greyscale image')
        img = PIL.Image.fromarray(rgb[:, :, 0], 'L')
    img = img.convert('RGB' if img_channels == 3 else 'L')
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    img = img.resize((img_resolution, img_resolution), PIL.Image.LANCZOS)
    return np.asarray(img).reshape(img_resolution, img_resolution, img_channels)

#----------------------------------------------------------------------------
# Distances: features(images) for float32 NCHW images in [-1, 1]; the distance between two
# images is the squared L2 norm of the difference of their features.

class VGG16Distance:
    """Upstream's distance: LPIPS features of the StyleGAN2-ADA VGG16 (vgg16.pt), on pixels in
    [0, 255], greyscale repeated to RGB, images larger than 256x256 area-downsampled to 256x256."""
    def __init__(self, vgg16: torch.nn.Module, source: str):
        self.vgg16 = vgg16
        self.description = f'LPIPS-style VGG16 features ({source})'

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = (images + 1) * (255 / 2)
        x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
        if x.shape[2] > 256:
            x = F.interpolate(x, size=(256, 256), mode='area')
        return self.vgg16(x, resize_images=False, return_lpips=True)

class PyramidDistance:
    """The fallback that needs no download: the sum over an image pyramid (the image, then 2x2
    box-filtered halvings down to 8 pixels or less) of the mean squared pixel difference, pixels
    in [-1, 1]. The coarse levels weight the shape of the image above its finest detail."""
    MIN_SIDE = 8
    description = 'multi-scale pixel distance (no --vgg16 given; see docs/projector.md)'

    def features(self, images: torch.Tensor) -> torch.Tensor:
        levels = []
        x = images
        while True:
            levels.append(x.flatten(1) / math.sqrt(x[0].numel()))
            if x.shape[2] <= self.MIN_SIDE:
                break
            x = F.avg_pool2d(x, kernel_size=2)
        return torch.cat(levels, dim=1)

def target_tensor(target_uint8: np.ndarray, device: torch.device | str = 'cpu') -> torch.Tensor:
    """A uint8 [N, N, C] target (load_target) as project() takes it: float32 [C, N, N] in [-1, 1]."""
    return torch.from_numpy(target_uint8.copy()).to(device).permute(2, 0, 1).float() / 127.5 - 1

def make_distance(vgg16: str | None, device: torch.device):
    """VGG16Distance from --vgg16 or $FPAGAN_VGG16 (as calc_metrics.py), else PyramidDistance.
    A VGG16 file that cannot be loaded is a ValueError, not a silent fallback."""
    overrides = {'vgg16': vgg16} if vgg16 else {}
    try:
        source = metric_utils.detector_source('vgg16', overrides)
    except ValueError:
        return PyramidDistance()
    return VGG16Distance(metric_utils.get_feature_detector('vgg16', device, overrides), source)

#----------------------------------------------------------------------------
# The optimisation.

def project(
    G:                          torch.nn.Module,        # Generator honouring the contract; left unchanged (a copy is optimised).
    target:                     torch.Tensor,           # float32 [C, N, N] in [-1, 1] on G's device.
    distance,                                           # PyramidDistance, VGG16Distance or anything with .features(images).
    c:                          torch.Tensor = None,    # Label [1, c_dim] for a conditional G; None for an unconditional one.
    num_steps:                  int = 1000,             # Optimisation steps.
    tied:                       bool = True,            # One code shared by all num_ws rows (upstream), else one per row.
    seed:                       int = 303,              # Seeds the latents of the w statistics, the initial noise maps and the w noise.
    w_avg_samples:              int = 10000,            # Mapped latents for the mean and spread of w.
    initial_learning_rate:      float = 0.1,            # Adam's peak learning rate.
    initial_noise_factor:       float = 0.05,           # Initial w noise, times the spread of w.
    lr_rampdown_length:         float = 0.25,           # Cosine ramp-down over this last fraction of the steps.
    lr_rampup_length:           float = 0.05,           # Linear ramp-up over this first fraction.
    noise_ramp_length:          float = 0.75,           # The w noise decays (quadratically) to zero over this fraction.
    regularize_noise_weight:    float = 1e5,            # Weight of the noise-map autocorrelation penalty.
    report                      = None,                 # Called as report(step, num_steps, dist, loss) after each step (step from 1).
) -> dnnlib.EasyDict:
    """Returns EasyDict of
        ws:    float32 [num_steps, num_ws, w_dim] on the CPU, the codes after each step (last = result),
        noise: {buffer name: map} the optimised constant noise maps of G.synthesis ({} if none),
        dists: [num_steps] the distance at each step (before its update)."""
    device = target.device
    C, N = G.img_channels, G.img_resolution
    assert target.shape == (C, N, N), f'target must be [{C}, {N}, {N}], got {list(target.shape)}'
    c = torch.zeros([1, 0], device=device) if c is None else c
    G = copy.deepcopy(G).eval().requires_grad_(False)
    gen = torch.Generator(device=device).manual_seed(seed)

    # Mean and spread of w over mapped latents (rows of ws: the mean per row, the spread of row 0 as upstream).
    z_samples = torch.from_numpy(np.random.RandomState(seed).randn(w_avg_samples, G.z_dim)).float()
    w_sum = torch.zeros([G.num_ws, G.w_dim], dtype=torch.float64, device=device)
    w0_sq_sum = torch.zeros([G.w_dim], dtype=torch.float64, device=device)
    with torch.no_grad():
        for z in z_samples.split(1000):
            ws = G.mapping(z.to(device), c.repeat(len(z), 1)).double()
            w_sum += ws.sum(dim=0)
            w0_sq_sum += ws[:, 0].square().sum(dim=0)
    w_avg = (w_sum / w_avg_samples).float()                                          # [num_ws, w_dim]
    w_std = float((w0_sq_sum / w_avg_samples - (w_sum[0] / w_avg_samples).square()).sum().clamp_min(0).sqrt())

    # Constant noise maps, when the generator has them, start random and are optimised with w.
    noise_bufs = latents.noise_buffers(G)
    with torch.no_grad():
        for buf in noise_bufs.values():
            buf.copy_(torch.randn(buf.shape, generator=gen, device=device))
            buf.requires_grad_(True)

    target_features = distance.features(target.unsqueeze(0).float())
    w_opt = (w_avg[:1] if tied else w_avg).unsqueeze(0).clone().requires_grad_(True)  # [1, 1 or num_ws, w_dim]
    optimizer = torch.optim.Adam([w_opt] + list(noise_bufs.values()), betas=(0.9, 0.999), lr=initial_learning_rate)
    ws_out = torch.zeros([num_steps, G.num_ws, G.w_dim])
    dists = []
    for step in range(num_steps):
        # Schedules.
        t = step / num_steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        lr_ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
        lr_ramp = (0.5 - 0.5 * math.cos(lr_ramp * math.pi)) * min(1.0, t / lr_rampup_length)
        for param_group in optimizer.param_groups:
            param_group['lr'] = initial_learning_rate * lr_ramp

        # Distance of the image of the (noisy) codes to the target.
        w_noise = torch.randn(w_opt.shape, generator=gen, device=device) * w_noise_scale
        ws = (w_opt + w_noise).expand(1, G.num_ws, G.w_dim)
        synth = G.synthesis(ws, noise_mode='const')
        if not synth.requires_grad:
            raise ValueError('the synthesis network passes no gradient to ws (a frozen part?); it cannot be projected into')
        dist = (distance.features(synth.float()) - target_features).square().sum()

        # Noise-map regularisation: squared autocorrelation at one-pixel shifts, at every scale down to 8x8.
        reg_loss = 0.0
        for buf in noise_bufs.values():
            noise = buf[None, None, :, :]
            while True:
                reg_loss += (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
                reg_loss += (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
                if noise.shape[2] <= 8:
                    break
                noise = F.avg_pool2d(noise, kernel_size=2)
        loss = dist + reg_loss * regularize_noise_weight

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            ws_out[step] = w_opt.detach().expand(1, G.num_ws, G.w_dim)[0].cpu()
            for buf in noise_bufs.values():
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
        dists.append(float(dist.detach()))
        if report is not None:
            report(step + 1, num_steps, dists[-1], float(loss.detach()))
    return dnnlib.EasyDict(ws=ws_out, noise={name: buf.detach().clone() for name, buf in noise_bufs.items()}, dists=dists)

@torch.no_grad()
def synthesize(G: torch.nn.Module, ws: torch.Tensor, batch_size: int = 16) -> np.ndarray:
    """uint8 NHWC images of codes ws [M, num_ws, w_dim] (constant noise maps)."""
    return np.concatenate([pictures.to_uint8(G.synthesis(ws[i : i + batch_size], noise_mode='const')) for i in range(0, len(ws), batch_size)])

#----------------------------------------------------------------------------
# Progress lines.

def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 60}m {seconds % 60:02d}s' if seconds >= 60 else f'{seconds}s'

class ProgressPrinter:
    """A line at step 1, every num_steps / 20 steps and at the last one: distance, loss, elapsed
    time and ETA (from the time per step since step 1, so the set-up does not count; none at step 1)."""
    def __init__(self, num_lines: int = 20):
        self.num_lines = num_lines
        self.start_time = time.time()
        self.step1_time = None

    def __call__(self, step: int, num_steps: int, dist: float, loss: float) -> None:
        now = time.time()
        self.step1_time = now if step == 1 else self.step1_time
        interval = max(1, num_steps // self.num_lines)
        if step == 1 or step % interval == 0 or step == num_steps:
            elapsed = now - self.start_time
            eta = format_seconds((now - self.step1_time) / (step - 1) * (num_steps - step)) if step > 1 else '-'
            print(f'step {step:>{len(str(num_steps))}d}/{num_steps}  dist {dist:<10.5g} loss {loss:<10.5g} '
                  f'elapsed {format_seconds(elapsed):>7s}  ETA {eta:>7s}', flush=True)

#----------------------------------------------------------------------------

def _fail(option: str, err: Exception):
    raise click.ClickException(f'{option}: {err}')

def output_names(paints: bool, save_video: bool) -> list[str]:
    """The names of the files a run writes under --outdir (for the check against replacing files)."""
    names = ['target.png', 'proj.png', 'projected_w.npz'] + (['proj.mp4', 'proj.gif'] if save_video else [])
    return names + (['proj-paint.png'] + (['proj-paint.gif', 'proj-paint.webp', 'proj-paint.mp4'] if save_video else []) if paints else [])

MAX_GIF_FRAMES = 100 # The GIF of the optimisation shows at most this many steps, evenly spaced; the MP4 shows every step.

@click.command()
@click.option('--network', 'network_pkl',   help='Network file (path or URL)', metavar='PATH|URL', required=True)
@click.option('--target', 'target_fname',   help='Target image file (any size: centre-cropped and resized)', metavar='FILE', required=True)
@click.option('--outdir',                   help='Where to save the outputs', metavar='DIR', required=True)
@click.option('--num-steps',                help='Optimisation steps', type=click.IntRange(min=1), default=1000, show_default=True)
@click.option('--seed',                     help='Random seed', type=click.IntRange(min=0, max=latents.MAX_SEED), default=303, show_default=True)
@click.option('--save-video',               help='Animation of the optimisation (and of the painting)', type=bool, metavar='BOOL', default=True, show_default=True)
@click.option('--tied',                     help='One code for all rows of ws (1) or one code per row (0)  [default: 0 for painting generators, else 1]', type=bool, metavar='BOOL')
@click.option('--vgg16',                    help='VGG16 weights (vgg16.pt, path or URL) for upstream\'s distance  [default: $FPAGAN_VGG16, else a multi-scale pixel distance]', metavar='PATH|URL')
@click.option('--class', 'class_idx',       help='Class label (conditional networks only)', type=int, metavar='INT')
@click.option('--device',                   help='auto, cpu, cuda or cuda:N', default='auto', show_default=True)
@click.option('--overwrite',                help='Replace files of the same names in --outdir', is_flag=True)
def main(network_pkl, target_fname, outdir, num_steps, seed, save_video, tied, vgg16, class_idx, device, overwrite):
    """Project a target image into a network: target.png, proj.png, projected_w.npz (for
    generate.py --projected-w), proj.mp4 or proj.gif of the optimisation, and for a painting
    generator the painting of the projection (proj-paint.png, .gif, .webp, .mp4).

    \b
    python projector.py --network=net.pkl --target=photo.png --outdir=out
    python projector.py --network=net.pkl --target=photo.png --outdir=out --num-steps=200 --tied=1
    python generate.py --network=net.pkl --projected-w=out/projected_w.npz --outdir=out
    """
    try:
        G = api.open_generator_for_script(network_pkl, device, outdir)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    device = next(G.parameters()).device
    try:
        c = latents.make_labels(G, class_idx, 1, device)
    except ValueError as err:
        _fail('--class', err)
    try:
        target_uint8 = load_target(target_fname, G.img_resolution, G.img_channels)
    except ValueError as err:
        _fail('--target', err)
    try:
        distance = make_distance(vgg16, device)
    except ValueError as err:
        _fail('--vgg16', err)
    paints = callable(getattr(G, 'synthesis_paint', None))
    tied = not paints if tied is None else tied
    try:   # Before the optimisation: files it would replace, and a place it cannot write to.
        api.check_outputs_free(outdir, output_names(paints, save_video), overwrite)
        api.check_writable_dir(outdir)
    except ValueError as err:
        raise click.ClickException(str(err)) from None

    # Optimise.
    print(f'Distance: {distance.description}')
    print(f'Codes: {"one w for all" if tied else "one code for each of the"} {G.num_ws} rows of ws'
          f'{" (painting steps)" if paints else ""}; {len(latents.noise_buffers(G))} noise maps')
    target = target_tensor(target_uint8, device)
    start_time = time.time()
    result = project(G, target, distance, c=c, num_steps=num_steps, tied=tied, seed=seed, report=ProgressPrinter())
    print(f'Projected in {format_seconds(time.time() - start_time)}: distance {result.dists[-1]:.5g} at the last step')

    # The result, as upstream: target.png, proj.png, projected_w.npz.
    latents.set_noise_buffers(G, result.noise)
    ws = result.ws[-1:].to(device)
    try:
        if not (np.isfinite(result.dists).all() and bool(torch.isfinite(ws).all())):
            raise ValueError('the optimisation diverged: NaN or infinite distances or codes; nothing written')
        projection = pictures.to_uint8(api.check_finite_images(G.synthesis(ws, noise_mode='const'), 'the projection'))[0]
    except ValueError as err:
        _fail('--network', f'{network_pkl}: {err}')
    pictures.save_image(target_uint8, os.path.join(outdir, 'target.png'))
    pictures.save_image(projection, os.path.join(outdir, 'proj.png'))
    latents.save_projected_w(os.path.join(outdir, 'projected_w.npz'), ws, result.noise)
    print(f'Wrote target.png, proj.png and projected_w.npz (w [1, {G.num_ws}, {G.w_dim}]) to "{outdir}"')

    # The optimisation: target and projection side by side after each step.
    scale = pictures.auto_scale(G.img_resolution)
    if save_video:
        mp4 = animation.mp4_available()
        num_frames = num_steps if mp4 else min(num_steps, MAX_GIF_FRAMES)
        steps = torch.from_numpy(np.unique(np.rint(np.linspace(0, num_steps - 1, num_frames)).astype(np.int64)))
        frames = (pictures.upscale(pictures.tile([[target_uint8, image]], gap_px=1), scale)   # Made as they are written.
                  for batch in steps.split(16) for image in synthesize(G, result.ws[batch].to(device)))
        path = os.path.join(outdir, 'proj.mp4' if mp4 else 'proj.gif')
        if mp4:
            animation.save_mp4(frames, path, frame_ms=100, hold_ms=1500)
        else:
            print(animation.MP4_MISSING)
            animation.save_animation(list(frames), path, frame_ms=100, hold_ms=1500)
        print(f'Wrote the optimisation ({len(steps)} frames) to "{path}"')

    # The painting of the projection (generators with G.synthesis_paint).
    if paints:
        painted = paintings.paint_ws(G, ws)
        pictures.save_image(paintings.painting_figure(painted, 0, scale=scale), os.path.join(outdir, 'proj-paint.png'))
        if save_video:
            anim = paintings.painting_animation_frames(painted, 0, scale=scale)
            for suffix in ('.gif', '.webp'):
                animation.save_animation(anim, os.path.join(outdir, 'proj-paint' + suffix))
            if animation.mp4_available():
                animation.save_mp4(anim, os.path.join(outdir, 'proj-paint.mp4'))
        print(f'Wrote the painting of the projection ({G.num_ws} steps) to "{os.path.join(outdir, "proj-paint.png")}"')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
