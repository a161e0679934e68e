"""Animations: GIF and WebP through Pillow, MP4 through imageio-ffmpeg when it is installed,
and interpolation videos (a grid of latents moving from keyframe to keyframe, looping)."""

import os
from collections.abc import Iterable

import numpy as np
import torch

from painting.api import map_latents, synthesize
from painting.latents import make_labels, seeds_to_z, slerp
from painting.pictures import image_grid, to_pil, to_uint8, upscale
from torch_utils import misc

#----------------------------------------------------------------------------
# Animations: GIF and WebP through Pillow, MP4 through imageio-ffmpeg when it is installed.

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
# Interpolation videos: a grid of latents moving from keyframe to keyframe, looping.

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
    device = misc.device_of(G)
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
            ws = map_latents(G, zs, c.repeat(frames_per_transition, 1), truncation_psi, truncation_cutoff, batch_size)
        else:
            wa = map_latents(G, a, c, truncation_psi, truncation_cutoff, batch_size)       # [cells, num_ws, w_dim]
            wb = map_latents(G, b, c, truncation_psi, truncation_cutoff, batch_size)
            ws = torch.lerp(wa.unsqueeze(0), wb.unsqueeze(0), t.unsqueeze(-1)).flatten(0, 1)
        images = to_uint8(synthesize(G, ws, noise_mode, batch_size))
        for f in range(frames_per_transition):
            frames.append(upscale(image_grid(images[f * num_cells : (f + 1) * num_cells], grid_w), scale))
    return frames

#----------------------------------------------------------------------------
