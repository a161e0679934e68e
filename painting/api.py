"""Generation and painting tools for every registered generator (the API behind generate.py).

Conventions: generator outputs are float32 NCHW in [-1, 1]; pictures handed around here are
uint8 numpy arrays HWC (C = 1 greyscale or 3 RGB), converted as upstream StyleGAN2-ADA does
(x * 127.5 + 128, clamped, truncated to uint8). Every sample is driven by an integer seed:
z = np.random.RandomState(seed).randn(z_dim), so a seed gives the same latent whatever the
batch size or the other seeds requested.

The painting (FPA family, `G.paint`): T rank-1 update frames X_t and partial images
P_t = W_t, shown after the display normalisation of docs/fpa-model.md §5
(the generator's `G.display_frames`: each frame rescaled to the Frobenius norm of the final
W, then shown as the output is), so the last partial frame is the output image.
"""

import io
import math
import os
import tempfile
import zipfile
from collections.abc import Iterable

import numpy as np
import PIL.Image
import torch

import dnnlib
import networks
from torch_utils import misc

#----------------------------------------------------------------------------
# Devices and network files.

def resolve_device(name: str | torch.device = 'auto') -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else must name a usable torch device."""
    if isinstance(name, torch.device):
        return name
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f'"{name}" is not a device (expected auto, cpu, cuda or cuda:N)') from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'"{name}": CUDA is not available on this machine (use cpu or auto)')
    return device

def load_network(network: str) -> dnnlib.EasyDict:
    """Read a network file from a path or URL (networks.load_network: ours, reference FPA
    checkpoints, StyleGAN2-ADA/StyleGAN3 pickles). Every failure is a one-line ValueError naming it."""
    try:
        return networks.load_network(network)
    except (OSError, ValueError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(message if network in message else f'{network}: {message}') from None
    except Exception as err: # A loader may fail in ways of its own; the user still gets one line.
        raise ValueError(f'{network}: cannot load the network ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""})') from None

def load_generator(network: str, device: str | torch.device = 'auto') -> torch.nn.Module:
    """The G_ema of a network file, checked against the generator contract, on `device`, eval mode."""
    data = load_network(network)
    G = data.get('G_ema', None)
    if not isinstance(G, torch.nn.Module):
        entries = ', '.join(sorted(data)) or 'none'
        raise ValueError(f'{network}: not a generator network file (no G_ema module; entries: {entries})')
    try:
        networks.check_generator(G)
    except TypeError as err:
        raise ValueError(f'{network}: {err}') from None
    return G.eval().requires_grad_(False).to(resolve_device(device))

def check_outputs_free(outdir: str, names: Iterable[str], overwrite: bool, print_fn=print) -> None:
    """Refuse (ValueError '--outdir: ...') to replace files that `outdir` already holds under the
    names a run will write, unless `overwrite`; with it, say once how many will be replaced."""
    if not os.path.isdir(outdir):
        return
    existing = set(os.listdir(outdir))
    clash = [name for name in names if name in existing]
    if not clash:
        return
    listed = f'{clash[0]}' + (f' and {len(clash) - 1} more file{"s" if len(clash) > 2 else ""}' if len(clash) > 1 else '')
    if not overwrite:
        raise ValueError(f'--outdir: "{outdir}" already holds {listed} of the same name as this run\'s outputs; '
                         'give --overwrite to replace them, or another --outdir')
    print_fn(f'Note: --overwrite: replacing {listed} in "{outdir}"')

def check_writable_dir(outdir: str) -> None:
    """Create `outdir` and write (then remove) a file in it, so that a read-only or full place
    is a ValueError '--outdir: ...' before any work, not after."""
    try:
        os.makedirs(outdir, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=outdir, prefix='.tmp-write-test-')
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ValueError(f'--outdir: cannot write to "{outdir}" ({err.strerror or err})') from None

def open_generator_for_script(network: str, device: str, outdir: str, print_fn=print) -> torch.nn.Module:
    """What generate.py and projector.py do first: check --outdir, resolve --device, load the
    G_ema of --network onto it. ValueError '--option: reason' for the first problem found."""
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise ValueError(f'--outdir: "{outdir}" exists and is not a directory')
    try:
        device = resolve_device(device)
    except ValueError as err:
        raise ValueError(f'--device: {err}') from None
    print_fn(f'Loading network from "{network}" ...')
    try:
        return load_generator(network, device=device)
    except ValueError as err:
        raise ValueError(f'--network: {err}') from None

def generator_name(G: torch.nn.Module) -> str:
    return getattr(G, 'class_name', f'{type(G).__module__}.{type(G).__qualname__}')

def _device_of(G: torch.nn.Module) -> torch.device:
    for tensor in list(G.parameters()) + list(G.buffers()):
        return tensor.device
    return torch.device('cpu')

#----------------------------------------------------------------------------
# Seeds, latents and labels.

MAX_SEED = 2**32 - 1 # np.random.RandomState accepts seeds in [0, 2**32).
MAX_SEEDS = 10**6    # Seeds in one list (a million images per run; split larger ranges over runs).

def parse_seeds(text: str | list) -> list[int]:
    """'0,3,5-12' -> [0, 3, 5, ..., 12]; ValueError naming the bad part, or the count when it
    is above MAX_SEEDS (checked before the list is built)."""
    seeds = dnnlib.util.parse_int_list(text, max_count=MAX_SEEDS)
    if not seeds:
        raise ValueError('expected at least one seed')
    for seed in seeds:
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f'seed {seed} is out of range (expected 0..{MAX_SEED})')
    return seeds

def seeds_to_z(seeds: list[int], z_dim: int, device: str | torch.device = 'cpu') -> torch.Tensor:
    """[len(seeds), z_dim] float32: row i is np.random.RandomState(seeds[i]).randn(z_dim)."""
    z = np.stack([np.random.RandomState(seed).randn(z_dim) for seed in seeds])
    return torch.from_numpy(z).to(device=device, dtype=torch.float32)

def make_labels(G: torch.nn.Module, class_idx: int | None, num: int, device: str | torch.device = 'cpu') -> torch.Tensor:
    """One-hot labels [num, c_dim] for a conditional G; [num, 0] for an unconditional one."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError(f'class {class_idx} given, but the network is unconditional (c_dim=0); leave --class out')
        return torch.zeros([num, 0], device=device)
    if class_idx is None:
        raise ValueError(f'the network is conditional (c_dim={G.c_dim}): give a class in 0..{G.c_dim - 1}')
    if not 0 <= class_idx < G.c_dim:
        raise ValueError(f'class {class_idx} is out of range (the network has c_dim={G.c_dim}: expected 0..{G.c_dim - 1})')
    c = torch.zeros([num, G.c_dim], device=device)
    c[:, class_idx] = 1
    return c

#----------------------------------------------------------------------------
# Images.

def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] -> uint8 NHWC, exactly as upstream generate.py converts."""
    assert images.ndim == 4, f'expected NCHW images, got shape {list(images.shape)}'
    return (images.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()

def to_pil(image: np.ndarray) -> PIL.Image.Image:
    """uint8 HWC with 1 channel (mode L) or 3 channels (mode RGB)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f'expected a uint8 HWC image with 1 or 3 channels, got {image.dtype} {list(image.shape)}')
    return PIL.Image.fromarray(image[:, :, 0], 'L') if image.shape[2] == 1 else PIL.Image.fromarray(image, 'RGB')

def save_image(image: np.ndarray, path: str) -> None:
    to_pil(image).save(path)

def check_finite_images(images: torch.Tensor, what: str = 'the generated images') -> torch.Tensor:
    """images, or a ValueError when they hold NaN or infinity (they would be written as black
    pictures without a word)."""
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f'{what}: NaN or infinite values (the network\'s output is not finite); nothing written for them')
    return images

MAX_BATCH_ELEMENTS = 2 ** 28   # Output values of one forward pass (1 GiB of float32): the batch is made smaller beyond it.

def bounded_batch(G: torch.nn.Module, batch_size: int, frames: int = 1) -> int:
    """batch_size, lowered (to at least 1) so that a batch of `frames` images per sample (the
    painting: num_ws) holds at most MAX_BATCH_ELEMENTS values; the images are the same."""
    per_sample = G.img_channels * G.img_resolution ** 2 * frames
    return max(1, min(batch_size, MAX_BATCH_ELEMENTS // per_sample))

MAX_SCALED_SIDE = 4096  # Pixels of one image after --scale in figures, animations and videos.

def check_scale(resolution: int, scale: int) -> None:
    """ValueError when `scale` would make images of `resolution` pixels wider than MAX_SCALED_SIDE."""
    if resolution * scale > MAX_SCALED_SIDE:
        raise ValueError(f'{scale} would show the {resolution}-pixel images {resolution * scale:,} pixels wide; '
                         f'the limit is {MAX_SCALED_SIDE} (a scale of at most {max(1, MAX_SCALED_SIDE // resolution)})')

def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of an HWC image by an integer factor."""
    assert scale >= 1
    return image if scale == 1 else image.repeat(scale, axis=0).repeat(scale, axis=1)

def auto_scale(resolution: int, min_size: int = 64) -> int:
    """The smallest integer scale that shows a resolution x resolution image at >= min_size pixels."""
    return max(1, math.ceil(min_size / resolution))

def tile(rows: list[list[np.ndarray | None]], gap_px: int = 0, background: int = 255) -> np.ndarray:
    """Lay out equally sized HWC cells in a grid; None leaves a cell blank (background)."""
    cells = [cell for row in rows for cell in row if cell is not None]
    assert cells, 'tile needs at least one image'
    h, w, c = cells[0].shape
    assert all(cell.shape == (h, w, c) for cell in cells), 'all cells must have the same shape'
    num_rows, num_cols = len(rows), max(len(row) for row in rows)
    grid = np.full([num_rows * h + (num_rows - 1) * gap_px, num_cols * w + (num_cols - 1) * gap_px, c], background, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            if cell is not None:
                grid[i * (h + gap_px) : i * (h + gap_px) + h, j * (w + gap_px) : j * (w + gap_px) + w] = cell
    return grid

def tile_bands(rows: list[list[np.ndarray | None]], wrap: int | None = None, gap_px: int = 2, background: int = 255) -> np.ndarray:
    """Like tile, but the columns are cut into bands of `wrap` (None = one band) stacked top to
    bottom, 4 * gap_px apart; every band holds all the rows."""
    num_cols = max(len(row) for row in rows)
    if wrap is not None and wrap < 1:
        raise ValueError(f'wrap={wrap}: expected a positive number of columns per band')
    wrap = num_cols if wrap is None else min(wrap, num_cols)
    padded = [row + [None] * (-(-num_cols // wrap) * wrap - len(row)) for row in rows]
    bands = [tile([row[i : i + wrap] for row in padded], gap_px=gap_px, background=background) for i in range(0, num_cols, wrap)]
    return tile([[band] for band in bands], gap_px=4 * gap_px, background=background)

def image_grid(images: np.ndarray, num_cols: int, gap_px: int = 0, background: int = 255) -> np.ndarray:
    """uint8 NHWC -> one grid image, row-major, num_cols per row."""
    rows = [list(images[i : i + num_cols]) for i in range(0, len(images), num_cols)]
    return tile(rows, gap_px=gap_px, background=background)

def encode_png(image: np.ndarray) -> bytes:
    """uint8 HWC (1 or 3 channels) -> PNG bytes."""
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format='png')
    return buffer.getvalue()

def save_image_grid(images: torch.Tensor | np.ndarray, path: str, drange: tuple[float, float], grid_size: tuple[int, int]) -> None:
    """A training run's reals.png / fakesKKKKKK.png: images [gw*gh, C, H, W] with values in
    `drange` as a gh x gw grid (row-major), rounded to the nearest level as upstream's grids,
    written atomically."""
    gw, gh = grid_size
    img = np.asarray(images.detach().cpu().float() if isinstance(images, torch.Tensor) else images, dtype=np.float32)
    lo, hi = drange
    img = np.rint((img - lo) * (255 / (hi - lo))).clip(0, 255).astype(np.uint8)
    _N, C, H, W = img.shape
    img = img.reshape(gh, gw, C, H, W).transpose(0, 3, 1, 4, 2).reshape(gh * H, gw * W, C)
    dnnlib.util.atomic_write(path, encode_png(img))

#----------------------------------------------------------------------------
# Generating images.

@torch.no_grad()
def generate_images(
    G:                  torch.nn.Module,    # Generator honouring the contract in networks/__init__.py.
    seeds:              list[int],          # One image per seed.
    class_idx:          int | None = None,  # Class for a conditional G; None for an unconditional one.
    truncation_psi:     float = 1,          # Truncation: 1 = none, 0 = w_avg.
    truncation_cutoff:  int | None = None,  # Truncate only the first N rows of ws; None = all.
    noise_mode:         str = 'const',      # 'const', 'random' (seeded per sample) or 'none'.
    batch_size:         int = 16,           # Samples per forward pass; does not change the result.
) -> torch.Tensor:
    """float32 [len(seeds), C, N, N] on the CPU. With noise_mode='random' each sample draws its
    noise from torch's generator seeded with its own seed, so that stays reproducible too."""
    assert batch_size >= 1
    device = _device_of(G)
    z = seeds_to_z(seeds, G.z_dim, device)
    c = make_labels(G, class_idx, len(seeds), device)
    kwargs = dict(truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)
    images = []
    if noise_mode == 'random':
        for i, seed in enumerate(seeds):
            with torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):
                torch.manual_seed(seed)
                images.append(G(z[i : i + 1], c[i : i + 1], **kwargs).float().cpu())
    else:
        for i in range(0, len(seeds), batch_size):
            images.append(G(z[i : i + batch_size], c[i : i + batch_size], **kwargs).float().cpu())
    return torch.cat(images)

@torch.no_grad()
def _synthesize(G: torch.nn.Module, ws: torch.Tensor, noise_mode: str, batch_size: int) -> torch.Tensor:
    """G.synthesis over ws [M, num_ws, w_dim] in batches -> float32 [M, C, N, N] on the CPU."""
    return torch.cat([G.synthesis(ws[i : i + batch_size], noise_mode=noise_mode).float().cpu() for i in range(0, len(ws), batch_size)])

@torch.no_grad()
def _map(G: torch.nn.Module, z: torch.Tensor, c: torch.Tensor, truncation_psi: float, truncation_cutoff: int | None, batch_size: int) -> torch.Tensor:
    return torch.cat([G.mapping(z[i : i + batch_size], c[i : i + batch_size], truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
                      for i in range(0, len(z), batch_size)])

#----------------------------------------------------------------------------
# The painting (generators with G.paint: the FPA family).

def painting_generators() -> list[str]:
    """Registered generator names whose class paints (has G.paint)."""
    return sorted(name for name, kwargs in networks.GENERATORS.items()
                  if callable(getattr(dnnlib.util.get_obj_by_name(kwargs.class_name), 'paint', None)))

def paints(G: torch.nn.Module) -> bool:
    """The painting capability of the generator contract: G.paint and G.display_frames."""
    return callable(getattr(G, 'paint', None)) and callable(getattr(G, 'display_frames', None))

def check_paints(G: torch.nn.Module) -> None:
    if not paints(G):
        raise ValueError(f'{generator_name(G)} does not paint (it has no G.paint); painting needs one of the '
                         f'generators {", ".join(painting_generators())}')

@torch.no_grad()
def paint_seeds(
    G:                  torch.nn.Module,    # A painting generator (has G.paint).
    seeds:              list[int],          # One painting per seed.
    class_idx:          int | None = None,  # Class for a conditional G.
    truncation_psi:     float = 1,          # Truncation: 1 = none.
    truncation_cutoff:  int | None = None,  # Truncate only the first N painting steps; None = all.
    batch_size:         int = 16,           # Samples per G.paint call; does not change the result.
) -> dnnlib.EasyDict:
    """Run G.paint for every seed (latents as generate.py --seeds); see paint_latents."""
    check_paints(G)
    device = _device_of(G)
    return paint_latents(G, seeds_to_z(seeds, G.z_dim, device), make_labels(G, class_idx, len(seeds), device),
                         truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, batch_size=batch_size)

@torch.no_grad()
def paint_latents(
    G:                  torch.nn.Module,    # A painting generator (has G.paint).
    z:                  torch.Tensor,       # Latents [B, z_dim] on G's device.
    c:                  torch.Tensor,       # Labels [B, c_dim] on G's device.
    truncation_psi:     float = 1,          # Truncation: 1 = none.
    truncation_cutoff:  int | None = None,  # Truncate only the first N painting steps; None = all.
    batch_size:         int = 16,           # Samples per G.paint call; does not change the result.
) -> dnnlib.EasyDict:
    """Run G.paint for every latent. Returns EasyDict of
        raw:      G.paint's tensors concatenated over the latents, on the CPU,
        updates:  uint8 [B, T, N, N, C] display frames of the rank-1 updates,
        partials: uint8 [B, T, N, N, C] display frames of the partial images (last = image),
        image:    uint8 [B, N, N, C] the painter's own output,
        refined:  uint8 [B, N, N, C] the U-Net's output (FPA/U-Net) or None."""
    check_paints(G)
    misc.assert_shape(z, [None, G.z_dim], name='z')
    misc.assert_shape(c, [len(z), G.c_dim], name='c')
    chunks = [G.paint(z[i : i + batch_size], c[i : i + batch_size], truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
              for i in range(0, len(z), batch_size)]
    return _painted(G, chunks)

def check_paints_ws(G: torch.nn.Module) -> None:
    """Painting given codes needs G.synthesis_paint(ws), the second half of G.paint (and the rest
    of the painting capability, check_paints)."""
    if not callable(getattr(G, 'synthesis_paint', None)):
        raise ValueError(f'{generator_name(G)} cannot paint given codes (it has no G.synthesis_paint); painting needs one of the '
                         f'generators {", ".join(painting_generators())}')
    check_paints(G)

@torch.no_grad()
def paint_ws(
    G:                  torch.nn.Module,    # A painting generator with G.synthesis_paint.
    ws:                 torch.Tensor,       # Per-step codes [B, num_ws, w_dim] on G's device (e.g. projected).
    batch_size:         int = 16,           # Samples per G.synthesis_paint call; does not change the result.
) -> dnnlib.EasyDict:
    """The painting of given codes ws instead of latents (projected or style-mixed codes);
    returns what paint_latents returns."""
    check_paints_ws(G)
    misc.assert_shape(ws, [None, G.num_ws, G.w_dim], name='ws')
    return _painted(G, [G.synthesis_paint(ws[i : i + batch_size]) for i in range(0, len(ws), batch_size)])

def _painted(G: torch.nn.Module, chunks: list[dict]) -> dnnlib.EasyDict:
    """G.paint's (or G.synthesis_paint's) outputs per batch -> the display frames of paint_latents."""
    num = sum(len(chunk['image']) for chunk in chunks)
    raw = dnnlib.EasyDict()
    for key, value in chunks[0].items():
        raw[key] = torch.cat([chunk[key].float().cpu() for chunk in chunks]) if torch.is_tensor(value) else None
    B, T, C, N, _ = raw.updates.shape
    misc.assert_shape(raw.updates, [num, G.num_ws, G.img_channels, G.img_resolution, G.img_resolution], name='G.paint updates')
    misc.assert_shape(raw.partials, [B, T, C, N, N], name='G.paint partials')
    misc.assert_shape(raw.image, [B, C, N, N], name='G.paint image')

    final = raw.partials[:, -1]
    flat = lambda frames: to_uint8(frames.flatten(0, 1)).reshape(B, T, N, N, C)
    return dnnlib.EasyDict(
        raw      = raw,
        updates  = flat(G.display_frames(raw.updates, final).cpu()),
        partials = flat(G.display_frames(raw.partials, final).cpu()),
        image    = to_uint8(raw.image),
        refined  = None if raw.get('refined') is None else to_uint8(raw.refined),
    )

MAX_PAINT_COLUMNS = 16 # Painting grids written during training show at most this many steps.

def paint_columns(num_steps: int, max_columns: int = MAX_PAINT_COLUMNS) -> list[int]:
    """Step indices shown in a compact painting figure: all of them, or `max_columns` evenly
    spaced ones that include the first and the last."""
    if num_steps <= max_columns:
        return list(range(num_steps))
    return sorted(set(np.rint(np.linspace(0, num_steps - 1, max_columns)).astype(int).tolist()))

def painting_figure(painted: dnnlib.EasyDict, index: int, scale: int | None = None, gap_px: int = 2, wrap: int | None = None,
                    steps: list[int] | None = None) -> np.ndarray:
    """One seed's painting: a column per step (`steps`, default all T), top row the rank-1
    updates, bottom row the partial images (the last is the output); FPA/U-Net adds a column
    with the refined image (bottom row). wrap=K lays the columns out in bands of K (each an
    update row over a partial row), the bands stacked with a gap of 4 * gap_px; None = one band."""
    N = painted.updates.shape[2]
    scale = auto_scale(N) if scale is None else scale
    steps = range(painted.updates.shape[1]) if steps is None else steps
    top = [upscale(painted.updates[index, t], scale) for t in steps]
    bottom = [upscale(painted.partials[index, t], scale) for t in steps]
    if painted.refined is not None:
        top.append(None)
        bottom.append(upscale(painted.refined[index], scale))
    return tile_bands([top, bottom], wrap=wrap, gap_px=gap_px)

def save_paint_grid(G: torch.nn.Module, z: torch.Tensor, c: torch.Tensor, path: str) -> None:
    """A training run's paintKKKKKK.png: the painting of each latent, one under the other, as
    generate.py --paint draws it, at most MAX_PAINT_COLUMNS steps wide; written atomically."""
    painted = paint_latents(G, z, c)
    steps = paint_columns(painted.updates.shape[1])
    figures = [painting_figure(painted, i, scale=1, gap_px=0, steps=steps) for i in range(len(z))]
    dnnlib.util.atomic_write(path, encode_png(np.concatenate(figures, axis=0)))

#----------------------------------------------------------------------------
# Per-channel view: each step's update as the outer product of a value (left strip) and a key
# (top strip), one row per colour channel, signed values on a blue-white-red scale.

CHANNEL_BACKGROUND = 176 # Light grey: sets the cells apart from the white of zero.

def diverging_colors(x: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] -> uint8 RGB: -1 blue, 0 white, +1 red."""
    x = np.clip(x, -1, 1)[..., None]
    pos = np.array([1.0, 0.0, 0.0])
    neg = np.array([0.0, 0.0, 1.0])
    rgb = 1 - np.abs(x) * (1 - np.where(x >= 0, pos, neg))
    return np.round(rgb * 255).astype(np.uint8)

def _normalise_abs(x: np.ndarray) -> np.ndarray:
    peak = np.abs(x).max(axis=-1, keepdims=True)
    return x / np.where(peak > 0, peak, 1)

def channel_figure(painted: dnnlib.EasyDict, index: int, scale: int | None = None, gap_px: int = 6, wrap: int | None = None) -> np.ndarray:
    """One seed's painting per colour channel: rows = channels, columns = steps. Each cell shows
    the step's rank-1 update of that channel (centre) = the vector written (left strip, along the
    image rows; the delta rule's u_t) times the key it was written with (top strip, along the
    columns), both as G.paint returns them, each scaled to its own peak |x|. wrap as in
    painting_figure."""
    raw = painted.raw
    updates = raw.updates[index].double()                                   # [T, C, N, N]
    T, C, N, _ = updates.shape
    written, keys = raw.written[index].double(), raw.key_vectors[index].double()  # [T, C, N] each
    strip = max(1, N // 8)
    updates, written, keys = _normalise_abs(updates.flatten(2).numpy()).reshape(T, C, N, N), _normalise_abs(written.numpy()), _normalise_abs(keys.numpy())
    scale = auto_scale(N) if scale is None else scale
    rows = []
    for ch in range(C):
        row = []
        for t in range(T):
            cell = np.full([strip + 1 + N, strip + 1 + N, 3], CHANNEL_BACKGROUND, dtype=np.uint8)
            cell[strip + 1 :, strip + 1 :] = diverging_colors(updates[t, ch])
            cell[:strip, strip + 1 :] = diverging_colors(keys[t, ch])[None, :]
            cell[strip + 1 :, :strip] = diverging_colors(written[t, ch])[:, None]
            row.append(upscale(cell, scale))
        rows.append(row)
    return tile_bands(rows, wrap=wrap, gap_px=gap_px, background=CHANNEL_BACKGROUND)

#----------------------------------------------------------------------------
# Animations: GIF and WebP through Pillow, MP4 through imageio-ffmpeg when it is installed.

def painting_animation_frames(painted: dnnlib.EasyDict, index: int, scale: int | None = None, with_updates: bool = False, gap_px: int = 2) -> list[np.ndarray]:
    """The image being painted, one frame per step (T frames; FPA/U-Net adds the refined image
    as one more frame). with_updates=True puts the step's rank-1 update left of the partial."""
    N = painted.partials.shape[2]
    scale = auto_scale(N) if scale is None else scale
    steps = [([painted.updates[index, t]] if with_updates else []) + [painted.partials[index, t]] for t in range(painted.partials.shape[1])]
    if painted.refined is not None:
        steps.append(([None] if with_updates else []) + [painted.refined[index]])
    return [tile([[None if cell is None else upscale(cell, scale) for cell in step]], gap_px=gap_px) for step in steps]

def save_animation(frames: list[np.ndarray], path: str, frame_ms: int = 100, hold_ms: int = 1500) -> None:
    """Animated GIF or WebP (by the path's suffix), looping. Every frame is shown frame_ms; the
    last one frame_ms + hold_ms (the hold is a longer duration on the last frame, not repeats).
    GIF stores durations in 10 ms units, and Pillow merges identical consecutive GIF frames."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in ('.gif', '.webp'):
        raise ValueError(f'{path}: animations are written as .gif or .webp')
    if frame_ms < 1 or hold_ms < 0:
        raise ValueError(f'frame duration {frame_ms} ms / hold {hold_ms} ms: expected >= 1 and >= 0')
    images = [to_pil(frame) for frame in frames]
    durations = [frame_ms] * (len(images) - 1) + [frame_ms + hold_ms]
    options = dict(lossless=True, method=4) if suffix == '.webp' else dict(optimize=False, disposal=1)
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0, **options)

def mp4_available() -> bool:
    try:
        import imageio_ffmpeg # noqa: F401
    except ImportError:
        return False
    return True

MP4_MISSING = 'MP4 not written: it needs imageio-ffmpeg (pip install imageio-ffmpeg); GIF and WebP need nothing extra'

def save_mp4(frames: Iterable[np.ndarray], path: str, frame_ms: int = 100, hold_ms: int = 1500) -> None:
    """H.264 MP4 at 1000 / frame_ms fps; the hold repeats the last frame round(hold_ms / frame_ms)
    times. Frames are padded (edge pixels) to even sizes, as yuv420p requires. `frames` may be
    a generator: frames are streamed to ffmpeg, so a long video is never held in memory."""
    if not mp4_available():
        raise RuntimeError(MP4_MISSING)
    import imageio_ffmpeg
    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[:2]
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    writer = imageio_ffmpeg.write_frames(path, (w + w % 2, h + h % 2), fps=1000 / frame_ms, codec='libx264', quality=9,
                                         pix_fmt_in='rgb24', pix_fmt_out='yuv420p', macro_block_size=2, ffmpeg_log_level='error')
    writer.send(None) # Starts ffmpeg.
    send = lambda frame: writer.send(np.ascontiguousarray(np.pad(frame.repeat(3, axis=2) if frame.shape[2] == 1 else frame, pad, mode='edge')))
    try:
        last = first
        send(first)
        for last in frames:
            send(last)
        for _ in range(round(hold_ms / frame_ms)):
            send(last)
    finally:
        writer.close()

#----------------------------------------------------------------------------
# Projected codes: projector.py's projected_w.npz, read by generate.py --projected-w. Key 'w'
# holds ws [N, num_ws, w_dim] float32 as upstream StyleGAN2-ADA; keys 'noise:NAME' hold the
# optimised constant noise maps (buffers G.synthesis.NAME) of generators that have them, so
# that the codes synthesise exactly the projected image (upstream keeps only 'w').

NOISE_KEY_PREFIX = 'noise:'

def noise_buffers(G: torch.nn.Module) -> dict[str, torch.Tensor]:
    """G.synthesis's constant noise maps by buffer name (see networks/__init__.py); {} if none."""
    return {name: buf for name, buf in G.synthesis.named_buffers() if name.endswith('noise_const')}

def save_projected_w(path: str, ws: torch.Tensor, noise: dict[str, torch.Tensor] = {}) -> None:
    arrays = {'w': ws.detach().float().cpu().numpy()}
    arrays.update({NOISE_KEY_PREFIX + name: buf.detach().float().cpu().numpy() for name, buf in noise.items()})
    with open(path, 'wb') as f:
        np.savez(f, **arrays)

def load_projected_w(path: str, G: torch.nn.Module) -> dnnlib.EasyDict:
    """EasyDict(ws [N, num_ws, w_dim] float32 on G's device, noise {buffer name: map}) from a
    projected_w.npz, checked against G; every problem is a one-line ValueError naming the file."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f'"{path}": a single array ({type(loaded).__name__}, e.g. a .npy file); expected projector.py\'s '
                             'projected_w.npz, an .npz archive holding "w"')
        with loaded as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ValueError(f'"{path}": no such file') from None
    except IsADirectoryError:
        raise ValueError(f'"{path}": is a directory, expected projector.py\'s projected_w.npz') from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        if str(err).startswith(f'"{path}"'):
            raise
        # numpy's own message on object arrays advises allow_pickle=True, which would run code from the file.
        reason = 'it holds Python objects, which are never loaded' if 'allow_pickle' in str(err) else ' '.join(str(err).split())[:200]
        raise ValueError(f'"{path}": not a readable .npz file ({reason})') from None
    if 'w' not in arrays:
        raise ValueError(f'"{path}" holds no array "w" (keys: {", ".join(sorted(arrays)) or "none"}); expected projector.py\'s projected_w.npz')
    ws = arrays.pop('w')
    if ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim) or ws.shape[0] < 1 or not np.issubdtype(ws.dtype, np.floating):
        raise ValueError(f'"{path}": w has shape {list(ws.shape)} ({ws.dtype}); this network takes [N, num_ws, w_dim] = '
                         f'[N, {G.num_ws}, {G.w_dim}] floats')
    buffers = noise_buffers(G)
    noise = {}
    for key, value in arrays.items():
        name = key[len(NOISE_KEY_PREFIX):]
        if not key.startswith(NOISE_KEY_PREFIX) or name not in buffers or value.shape != tuple(buffers[name].shape):
            raise ValueError(f'"{path}": array "{key}" {list(value.shape)} matches no noise map of this network')
        noise[name] = torch.from_numpy(value).to(buffers[name])
    device = _device_of(G)
    return dnnlib.EasyDict(ws=torch.from_numpy(ws).to(device=device, dtype=torch.float32), noise=noise)

@torch.no_grad()
def set_noise_buffers(G: torch.nn.Module, noise: dict[str, torch.Tensor]) -> None:
    """Copy noise maps {buffer name: map} (from load_projected_w) into G.synthesis's buffers."""
    buffers = noise_buffers(G)
    for name, value in noise.items():
        buffers[name].copy_(value)

#----------------------------------------------------------------------------
# Interpolation videos: a grid of latents moving from keyframe to keyframe, looping.

def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the great circle between the directions of a and b
    (rows of [..., D]); slerp(a, b, 0) = a, slerp(a, b, 1) = b. Falls back to lerp for
    (anti)parallel rows, where the great circle is undefined or degenerate."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    cos = ((a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)).clamp_min(1e-30)).clamp(-1, 1)
    theta = torch.arccos(cos)
    sin = torch.sin(theta)
    safe = sin > 1e-6
    sin_safe = torch.where(safe, sin, torch.ones_like(sin))
    spherical = torch.sin((1 - t) * theta) / sin_safe * a + torch.sin(t * theta) / sin_safe * b
    return torch.where(safe, spherical, torch.lerp(a, b, t))

def check_interpolation(num_seeds: int, grid_w: int, grid_h: int) -> None:
    num_cells = grid_w * grid_h
    if grid_w < 1 or grid_h < 1:
        raise ValueError(f'grid {grid_w}x{grid_h}: expected positive sizes')
    if num_seeds % num_cells != 0 or num_seeds // num_cells < 2:
        raise ValueError(f'{num_seeds} seeds for a {grid_w}x{grid_h} grid: expected a multiple of {num_cells} '
                         f'with at least 2 keyframes ({2 * num_cells} seeds or more)')

@torch.no_grad()
def interpolation_frames(
    G:                      torch.nn.Module,    # Any generator honouring the contract.
    seeds:                  list[int],          # Keyframes: seeds fill the grid row-major, keyframe after keyframe.
    grid_w:                 int = 1,            # Grid columns.
    grid_h:                 int = 1,            # Grid rows.
    frames_per_transition:  int = 24,           # Frames from one keyframe to the next.
    space:                  str = 'z',          # 'z': slerp in z; 'w': lerp in w (rows of G.mapping's ws).
    class_idx:              int | None = None,  # Class for a conditional G.
    truncation_psi:         float = 1,          # Truncation: 1 = none.
    truncation_cutoff:      int | None = None,  # Truncate only the first N rows of ws; None = all.
    noise_mode:             str = 'const',      # StyleGAN2 noise; 'const' keeps frames coherent.
    batch_size:             int = 16,           # Samples per forward pass.
    scale:                  int = 1,            # Nearest-neighbour enlargement of every frame.
) -> list[np.ndarray]:
    """K = len(seeds) / (grid_w * grid_h) keyframes (at least 2), K * frames_per_transition
    frames looping back to the first keyframe. Frame 0 is keyframe 0 exactly."""
    check_interpolation(len(seeds), grid_w, grid_h)
    num_cells = grid_w * grid_h
    if space not in ('z', 'w'):
        raise ValueError(f'interpolation space "{space}": expected z or w')
    if frames_per_transition < 1:
        raise ValueError(f'{frames_per_transition} frames per transition: expected >= 1')
    device = _device_of(G)
    K = len(seeds) // num_cells
    z = seeds_to_z(seeds, G.z_dim, device).reshape(K, num_cells, G.z_dim)
    c = make_labels(G, class_idx, num_cells, device)
    t = torch.arange(frames_per_transition, dtype=torch.float64, device=device) / frames_per_transition
    t = t.reshape(-1, 1, 1).float()                                                 # [F, 1, 1]
    frames = []
    for k in range(K):
        a, b = z[k], z[(k + 1) % K]                                                 # [cells, z_dim]
        if space == 'z':
            zs = slerp(a.unsqueeze(0), b.unsqueeze(0), t).flatten(0, 1)             # [F * cells, z_dim]
            ws = _map(G, zs, c.repeat(frames_per_transition, 1), truncation_psi, truncation_cutoff, batch_size)
        else:
            wa = _map(G, a, c, truncation_psi, truncation_cutoff, batch_size)       # [cells, num_ws, w_dim]
            wb = _map(G, b, c, truncation_psi, truncation_cutoff, batch_size)
            ws = torch.lerp(wa.unsqueeze(0), wb.unsqueeze(0), t.unsqueeze(-1)).flatten(0, 1)
        images = to_uint8(_synthesize(G, ws, noise_mode, batch_size))
        for f in range(frames_per_transition):
            frames.append(upscale(image_grid(images[f * num_cells : (f + 1) * num_cells], grid_w), scale))
    return frames

#----------------------------------------------------------------------------
# Style mixing across the rows of ws: for the FPA the painting steps (row t drives step t),
# for StyleGAN2 the synthesis layers.

def check_style_mixing(G: torch.nn.Module, num_row_ws: int) -> None:
    if G.num_ws < 2:
        raise ValueError(f'{generator_name(G)} has num_ws={G.num_ws}: style mixing needs at least 2 rows of ws')
    if not 0 <= num_row_ws <= G.num_ws:
        raise ValueError(f'{num_row_ws} rows of ws from the row seed: expected 0..{G.num_ws} (the network has num_ws={G.num_ws})')

@torch.no_grad()
def style_mixing_images(
    G:                  torch.nn.Module,    # Any generator with num_ws >= 2.
    row_seeds:          list[int],          # Rows of the grid: give the first num_row_ws rows of ws.
    col_seeds:          list[int],          # Columns: give the remaining rows of ws.
    num_row_ws:         int,                # k: ws rows [0, k) from the row seed, [k, num_ws) from the column seed.
    class_idx:          int | None = None,  # Class for a conditional G.
    truncation_psi:     float = 1,          # Truncation: 1 = none.
    truncation_cutoff:  int | None = None,  # Truncate only the first N rows of ws; None = all.
    noise_mode:         str = 'const',      # StyleGAN2 noise.
    batch_size:         int = 16,           # Samples per forward pass.
) -> dnnlib.EasyDict:
    """EasyDict(rows [R, C, N, N], cols [K, C, N, N], mixed [R, K, C, N, N]) float32 on the CPU."""
    check_style_mixing(G, num_row_ws)
    device = _device_of(G)
    ws_rows = _map(G, seeds_to_z(row_seeds, G.z_dim, device), make_labels(G, class_idx, len(row_seeds), device), truncation_psi, truncation_cutoff, batch_size)
    ws_cols = _map(G, seeds_to_z(col_seeds, G.z_dim, device), make_labels(G, class_idx, len(col_seeds), device), truncation_psi, truncation_cutoff, batch_size)
    mixed = ws_cols.unsqueeze(0).repeat(len(row_seeds), 1, 1, 1)                  # [R, K, num_ws, w_dim]
    mixed[:, :, :num_row_ws] = ws_rows[:, None, :num_row_ws]
    images = _synthesize(G, mixed.flatten(0, 1), noise_mode, batch_size)
    return dnnlib.EasyDict(
        rows  = _synthesize(G, ws_rows, noise_mode, batch_size),
        cols  = _synthesize(G, ws_cols, noise_mode, batch_size),
        mixed = images.reshape(len(row_seeds), len(col_seeds), *images.shape[1:]),
    )

def style_mixing_grid(mixing: dnnlib.EasyDict, scale: int = 1, gap_px: int = 2) -> np.ndarray:
    """Top row: the column seeds' images; left column: the row seeds' images; cell (i, j): the mix."""
    rows, cols, mixed = to_uint8(mixing.rows), to_uint8(mixing.cols), mixing.mixed
    grid = [[None] + [upscale(image, scale) for image in cols]]
    for i in range(len(rows)):
        grid.append([upscale(rows[i], scale)] + [upscale(image, scale) for image in to_uint8(mixed[i])])
    return tile(grid, gap_px=gap_px)

#----------------------------------------------------------------------------
