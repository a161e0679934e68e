"""The painting of painting generators (FPA family, `G.paint`): T rank-1 update frames X_t and
partial images P_t = W_t, shown after the display normalisation of docs/fpa-model.md §5 (the
generator's `G.display_frames`: each frame rescaled to the Frobenius norm of the final W,
then shown as the output is), so the last partial frame is the output image; figures,
per-channel views and animation frames of it."""

import numpy as np
import torch

import dnnlib
import networks
from painting.api import generator_name
from painting.latents import make_labels, seeds_to_z
from painting.pictures import auto_scale, encode_png, tile, tile_bands, to_uint8, upscale
from torch_utils import misc

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
    device = misc.device_of(G)
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
# Painting animations: the image being painted, one frame per step.

def painting_animation_frames(painted: dnnlib.EasyDict, index: int, scale: int | None = None, with_updates: bool = False, gap_px: int = 2) -> list[np.ndarray]:
    """The image being painted, one frame per step (T frames; FPA/U-Net adds the refined image
    as one more frame). with_updates=True puts the step's rank-1 update left of the partial."""
    N = painted.partials.shape[2]
    scale = auto_scale(N) if scale is None else scale
    steps = [([painted.updates[index, t]] if with_updates else []) + [painted.partials[index, t]] for t in range(painted.partials.shape[1])]
    if painted.refined is not None:
        steps.append(([None] if with_updates else []) + [painted.refined[index]])
    return [tile([[None if cell is None else upscale(cell, scale) for cell in step]], gap_px=gap_px) for step in steps]

#----------------------------------------------------------------------------
