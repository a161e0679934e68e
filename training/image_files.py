"""Decoding one image file into a standard 'L' or 'RGB' picture, and reading dataset.json
labels: the rules shared by training/dataset.py (which applies them silently) and
dataset_tool.py (which reports the conversions). No torch here, so that dataset_tool.py
starts quickly.
"""

import json
import os
import re
from typing import Any

import numpy as np
import PIL.Image
import PIL.ImageOps

#----------------------------------------------------------------------------

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.pnm')
GREY_MODES = ('1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16L', 'I;16B', 'I;16N', 'F')  # Header modes that decode to greyscale.
EXIF_ORIENTATION = 0x0112

def is_image_file(relpath: str) -> bool:
    """Image extension, and not a hidden or macOS resource-fork entry (`.x`, `__MACOSX/`)."""
    parts = relpath.replace('\\', '/').split('/')
    if any(part.startswith('.') or part == '__MACOSX' for part in parts):
        return False
    return os.path.splitext(relpath)[1].lower() in IMAGE_EXTENSIONS

def exif_oriented_size(img: PIL.Image.Image) -> tuple[int, int]:
    """(width, height) after applying the EXIF orientation tag, read from the header only."""
    orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    return (img.height, img.width) if orientation in (5, 6, 7, 8) else (img.width, img.height)

def standardize_image(img: PIL.Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> tuple[PIL.Image.Image, list[str]]:
    """Decode `img` into mode 'L' or 'RGB'. Returns the image and the conversions applied:
    'exif-rotated' (EXIF orientation applied), 'alpha-composited' (RGBA/LA/transparent palette
    composited onto `background`), '16-bit' (scaled to 8 bits with rounding), 'float' (32-bit
    floats: values in [0, 1] scaled by 255, values up to 255 rounded; others refused), 'palette',
    'cmyk' (PIL's conversion, no colour management), 'other-mode'. Raises OSError/ValueError
    for files PIL cannot decode."""
    notes = []
    img.load()
    if img.getexif().get(EXIF_ORIENTATION, 1) != 1:
        img = PIL.ImageOps.exif_transpose(img)
        notes.append('exif-rotated')
    mode = img.mode
    if mode in ('L', 'RGB'):
        return img, notes
    if mode == '1':
        return img.convert('L'), notes
    if mode in ('I', 'I;16', 'I;16L', 'I;16B', 'I;16N'):
        values = np.asarray(img, dtype=np.float64)
        notes.append('16-bit')
        return PIL.Image.fromarray(np.clip(np.rint(values / 257), 0, 255).astype(np.uint8)), notes
    if mode == 'F':     # 32-bit float (e.g. TIFF): values in [0, 1] or [0, 255], by their range.
        values = np.asarray(img, dtype=np.float64)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
            raise ValueError('a floating-point image with values outside [0, 255] (or not finite); expected [0, 1] or [0, 255]')
        notes.append('float')
        scale = 255 if values.max() <= 1 else 1
        return PIL.Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)), notes
    if mode == 'P':
        notes.append('palette')
        img = img.convert('RGBA' if 'transparency' in img.info else 'RGB')
        mode = img.mode
        if mode == 'RGB':
            return img, notes
    if mode == 'CMYK':
        notes.append('cmyk')
        return img.convert('RGB'), notes
    if mode in ('RGBA', 'RGBa', 'LA', 'La', 'PA'):
        notes.append('alpha-composited')
        canvas = PIL.Image.new('RGBA', img.size, tuple(background) + (255,))
        out = PIL.Image.alpha_composite(canvas, img.convert('RGBA')).convert('RGB')
        if mode in ('LA', 'La') and len(set(background)) == 1:
            out = out.convert('L')  # Grey on a grey background stays one channel.
        return out, notes
    notes.append('other-mode')
    return img.convert('RGB'), notes

def image_to_array(img: PIL.Image.Image) -> np.ndarray:
    """'L' or 'RGB' PIL image -> uint8 [C, H, W]."""
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    return np.ascontiguousarray(array.transpose(2, 0, 1))

#----------------------------------------------------------------------------
# Labels from dataset.json.

MAX_CLASSES = 2 ** 16   # Largest class count (label_dim of one-hot labels) a dataset.json may ask for.

def labels_by_path(labels_json: Any, where: str) -> dict:
    """dataset.json's "labels" ([[relpath, label], ...]) as {relpath with '/': label}. ValueError
    naming `where` when it is malformed or gives one image two different labels."""
    if not isinstance(labels_json, list) or not all(isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) for e in labels_json):
        raise ValueError(f'{where}: "labels" must be a list of [relative/path, label] pairs or null')
    table = {}
    for path, label in labels_json:
        path = path.replace('\\', '/')
        if path in table and table[path] != label:
            raise ValueError(f'{where}: two different labels for "{path}" ({json.dumps(table[path])[:40]} and {json.dumps(label)[:40]})')
        table[path] = label
    return table

def unsafe_archive_names(names: list[str]) -> list[str]:
    """The entry names of an archive that are absolute or climb out of it with '..' (a zip's
    names are paths chosen by whoever made it)."""
    def unsafe(name: str) -> bool:
        name = name.replace('\\', '/')
        return name.startswith('/') or bool(re.match(r'[A-Za-z]:', name)) or '..' in name.split('/')
    return [name for name in names if unsafe(name)]

def parse_labels(labels_json: Any, fnames: list[str], where: str) -> np.ndarray | None:
    """`labels_json` is the value of dataset.json's "labels" ([[relpath, label], ...] or None).
    Returns int64 [N] class indices, float32 [N, D] vectors, or None when there are no labels.
    Raises ValueError naming `where` when a file has no label or the labels are malformed."""
    if labels_json is None:
        return None
    table = labels_by_path(labels_json, where)
    missing = [fname for fname in fnames if fname not in table]
    if missing:
        raise ValueError(f'{where}: no label for {len(missing)} image(s), e.g. "{missing[0]}"')
    values = [table[fname] for fname in fnames]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if values and min(values) < 0:
            raise ValueError(f'{where}: class labels must be non-negative integers, found {min(values)}')
        if values and max(values) >= MAX_CLASSES:
            raise ValueError(f'{where}: class label {max(values)} is above the limit of {MAX_CLASSES - 1} '
                             f'(labels are one-hot vectors of max label + 1 entries; at most {MAX_CLASSES} classes)')
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) for v in values):
        lengths = sorted({len(v) for v in values})
        if len(lengths) != 1:
            raise ValueError(f'{where}: label vectors have different lengths {lengths}')
        with np.errstate(over='ignore'):   # Numbers beyond float32 become inf, refused below.
            array = np.array(values, dtype=np.float32).reshape(len(values), lengths[0])
        if not np.isfinite(array).all():
            bad = fnames[int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])]
            raise ValueError(f'{where}: the label of "{bad}" holds NaN or infinite values (or numbers beyond float32)')
        return array
    raise ValueError(f'{where}: each label must be an integer class or a list of numbers (all of one kind)')

#----------------------------------------------------------------------------
