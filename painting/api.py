"""Loading generators and generating images with them, for every registered generator: the
API behind generate.py. Pictures and grids (painting/pictures.py), latents and projected
codes (painting/latents.py), the painting (painting/paintings.py) and animations
(painting/animation.py) are modules of their own.

Conventions: generator outputs are float32 NCHW in [-1, 1]; pictures handed around in
`painting` are uint8 numpy arrays HWC (C = 1 greyscale or 3 RGB), converted as upstream
StyleGAN2-ADA does (x * 127.5 + 128, clamped, truncated to uint8). Every sample is driven by
an integer seed: z = np.random.RandomState(seed).randn(z_dim), so a seed gives the same
latent whatever the batch size or the other seeds requested.
"""

import os
import sys
import tempfile
from collections.abc import Iterable

import numpy as np
import torch

import dnnlib
import networks
from painting.latents import make_labels, seeds_to_z
from painting.pictures import tile, to_uint8, upscale
from torch_utils import misc

#----------------------------------------------------------------------------
# Network files.

def load_generator(network: str, device: str | torch.device = 'auto') -> torch.nn.Module:
    """The G_ema of a network file (networks.load_network: ours, reference FPA checkpoints,
    StyleGAN2-ADA/StyleGAN3 pickles), checked against the generator contract, on `device`,
    eval mode. Every failure is a one-line ValueError naming the file."""
    data = networks.load_network(network)
    G = data.get('G_ema', None)
    if not isinstance(G, torch.nn.Module):
        entries = ', '.join(sorted(data)) or 'none'
        raise ValueError(f'{network}: not a generator network file (no G_ema module; entries: {entries})')
    try:
        networks.check_generator(G)
    except TypeError as err:
        raise ValueError(f'{network}: {err}') from None
    return G.eval().requires_grad_(False).to(misc.resolve_device(device))

def load_labelled_generators(specs: Iterable[str], device: str | torch.device = 'cpu') -> list[tuple[str, torch.nn.Module]]:
    """[(label, G_ema)] for the development scripts' repeated `--net=LABEL=PATH` options, in
    order. A spec without a label or a path, or a file load_generator refuses, is a one-line
    ValueError naming it."""
    generators = []
    for spec in specs:
        label, sep, path = spec.partition('=')
        if not sep or not label or not path:
            raise ValueError(f'"{spec}": expected LABEL=PATH')
        generators.append((label, load_generator(path, device=device)))
    return generators

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

def check_class(G: torch.nn.Module, class_idx: int | None) -> int | None:
    """The class to generate with: as upstream, a --class given for an unconditional network is
    ignored with a warning (None); for a conditional one, a ValueError unless it is a valid label."""
    if class_idx is not None and G.c_dim == 0:
        print(f'warning: --class={class_idx} ignored: the network is unconditional (c_dim=0)', file=sys.stderr)
        return None
    make_labels(G, class_idx, 1)
    return class_idx

def open_generator_for_script(network: str, device: str, outdir: str, print_fn=print) -> torch.nn.Module:
    """What generate.py and projector.py do first: check --outdir, resolve --device, load the
    G_ema of --network onto it. ValueError '--option: reason' for the first problem found."""
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise ValueError(f'--outdir: "{outdir}" exists and is not a directory')
    try:
        device = misc.resolve_device(device)
    except ValueError as err:
        raise ValueError(f'--device: {err}') from None
    print_fn(f'Loading network from "{network}" ...')
    try:
        return load_generator(network, device=device)
    except ValueError as err:
        raise ValueError(f'--network: {err}') from None

def generator_name(G: torch.nn.Module) -> str:
    return getattr(G, 'class_name', f'{type(G).__module__}.{type(G).__qualname__}')

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
    device = misc.device_of(G)
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
def synthesize(G: torch.nn.Module, ws: torch.Tensor, noise_mode: str, batch_size: int) -> torch.Tensor:
    """G.synthesis over ws [M, num_ws, w_dim] in batches -> float32 [M, C, N, N] on the CPU."""
    return torch.cat([G.synthesis(ws[i : i + batch_size], noise_mode=noise_mode).float().cpu() for i in range(0, len(ws), batch_size)])

@torch.no_grad()
def map_latents(G: torch.nn.Module, z: torch.Tensor, c: torch.Tensor, truncation_psi: float, truncation_cutoff: int | None, batch_size: int) -> torch.Tensor:
    return torch.cat([G.mapping(z[i : i + batch_size], c[i : i + batch_size], truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
                      for i in range(0, len(z), batch_size)])

#----------------------------------------------------------------------------
# Style mixing across the rows of ws: for the FPA the painting steps (row t drives step t),
# for StyleGAN2 the synthesis layers.

def check_style_mixing(G: torch.nn.Module, col_styles: list[int]) -> None:
    """col_styles: the rows of ws a mixed image takes from its column seed (upstream's
    style_mixing.py --styles; for the FPA, painting steps). ValueError naming the bad row."""
    if G.num_ws < 2:
        raise ValueError(f'{generator_name(G)} has num_ws={G.num_ws}: style mixing needs at least 2 rows of ws')
    for row in col_styles:
        if not 0 <= row < G.num_ws:
            raise ValueError(f'row {row} of ws is out of range: expected 0..{G.num_ws - 1} (the network has num_ws={G.num_ws})')

def styles_after(G: torch.nn.Module, num_row_ws: int) -> list[int]:
    """The rows [k, num_ws) of ws: the column seed's share when the row seed gives the first k
    (generate.py --mix-steps=k). ValueError unless 0 <= k <= num_ws."""
    if not 0 <= num_row_ws <= G.num_ws:
        raise ValueError(f'{num_row_ws} rows of ws from the row seed: expected 0..{G.num_ws} (the network has num_ws={G.num_ws})')
    return list(range(num_row_ws, G.num_ws))

@torch.no_grad()
def style_mixing_images(
    G:                  torch.nn.Module,    # Any generator with num_ws >= 2.
    row_seeds:          list[int],          # Rows of the grid: give every row of ws except col_styles.
    col_seeds:          list[int],          # Columns: give the rows col_styles of ws.
    col_styles:         list[int],          # Rows of ws from the column seed (StyleGAN2: layers; FPA: painting steps).
    class_idx:          int | None = None,  # Class for a conditional G.
    truncation_psi:     float = 1,          # Truncation: 1 = none.
    truncation_cutoff:  int | None = None,  # Truncate only the first N rows of ws; None = all.
    noise_mode:         str = 'const',      # StyleGAN2 noise.
    batch_size:         int = 16,           # Samples per forward pass.
) -> dnnlib.EasyDict:
    """EasyDict(rows [R, C, N, N], cols [K, C, N, N], mixed [R, K, C, N, N]) float32 on the CPU:
    mixed[i, j] is row seed i's ws with the rows col_styles from column seed j, as upstream's
    style_mixing.py."""
    check_style_mixing(G, col_styles)
    device = misc.device_of(G)
    ws_rows = map_latents(G, seeds_to_z(row_seeds, G.z_dim, device), make_labels(G, class_idx, len(row_seeds), device), truncation_psi, truncation_cutoff, batch_size)
    ws_cols = map_latents(G, seeds_to_z(col_seeds, G.z_dim, device), make_labels(G, class_idx, len(col_seeds), device), truncation_psi, truncation_cutoff, batch_size)
    mixed = ws_rows.unsqueeze(1).repeat(1, len(col_seeds), 1, 1)                  # [R, K, num_ws, w_dim]
    mixed[:, :, col_styles] = ws_cols[None, :, col_styles]
    images = synthesize(G, mixed.flatten(0, 1), noise_mode, batch_size)
    return dnnlib.EasyDict(
        rows  = synthesize(G, ws_rows, noise_mode, batch_size),
        cols  = synthesize(G, ws_cols, noise_mode, batch_size),
        mixed = images.reshape(len(row_seeds), len(col_seeds), *images.shape[1:]),
    )

def style_mixing_grid(mixing: dnnlib.EasyDict, scale: int = 1, gap_px: int = 2, background: int = 255) -> np.ndarray:
    """Top row: the column seeds' images; left column: the row seeds' images; cell (i, j): the mix."""
    rows, cols, mixed = to_uint8(mixing.rows), to_uint8(mixing.cols), mixing.mixed
    grid = [[None] + [upscale(image, scale) for image in cols]]
    for i in range(len(rows)):
        grid.append([upscale(rows[i], scale)] + [upscale(image, scale) for image in to_uint8(mixed[i])])
    return tile(grid, gap_px=gap_px, background=background)

#----------------------------------------------------------------------------
