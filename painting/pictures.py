"""Pictures as uint8 numpy arrays HWC (C = 1 greyscale or 3 RGB): conversion from generator
output, PNG files, enlargement, tiling into grids, and upstream's snapshot grids."""

import io
import math

import numpy as np
import PIL.Image
import torch

import dnnlib
from torch_utils import misc

#----------------------------------------------------------------------------
# Images.

def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] -> uint8 NHWC, exactly as upstream generate.py converts."""
    assert images.ndim == 4, f'expected NCHW images, got shape {list(images.shape)}'
    return misc.images_to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()

def to_pil(image: np.ndarray) -> PIL.Image.Image:
    """uint8 HWC with 1 channel (mode L) or 3 channels (mode RGB)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f'expected a uint8 HWC image with 1 or 3 channels, got {image.dtype} {list(image.shape)}')
    return PIL.Image.fromarray(image[:, :, 0], 'L') if image.shape[2] == 1 else PIL.Image.fromarray(image, 'RGB')

def save_image(image: np.ndarray, path: str) -> None:
    to_pil(image).save(path)

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
