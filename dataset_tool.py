"""Convert a collection of images into a training dataset (a zip or folder of uncompressed
PNGs named NNNNN/imgNNNNNNNN.png plus dataset.json), the format of StyleGAN2-ADA
(Karras et al., NeurIPS 2020) read by training/dataset.py.

Sources: a directory (recursive), a zip, CIFAR-10 (cifar-10-python.tar.gz), MNIST or
Fashion-MNIST idx files (*-images-idx3-ubyte[.gz] with the sibling labels file), and an
LSUN lmdb directory (needs the `lmdb` package). Every odd input has a defined outcome; see
docs/datasets.md. A user's mistake ends in one line starting with "Error:", never a traceback.

Examples:
    python dataset_tool.py --source=~/photos --dest=~/datasets/photos256.zip --resolution=256x256 --transform=center-crop
    python dataset_tool.py --source=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz --dest=fmnist32.zip
"""

import errno
import gzip
import io
import json
import os
import pickle
import re
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from typing import Any, Callable

import click
import numpy as np
import PIL.Image
import PIL.ImageColor

from dnnlib import util
from training.image_files import GREY_MODES, exif_oriented_size, is_image_file, labels_by_path, parse_labels, standardize_image, unsafe_archive_names

DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, PIL.Image.DecompressionBombError)
RESIZE_FILTERS = {'lanczos': PIL.Image.LANCZOS, 'box': PIL.Image.BOX}
TRANSFORMS = ('center-crop', 'center-crop-wide')

#----------------------------------------------------------------------------
# Sources. Each yields SourceItems in a fixed order; `open()` returns a lazily decoded PIL
# image, so scanning headers is cheap.

class SourceItem:
    def __init__(self, name: str, open_fn: Callable[[], PIL.Image.Image], label: Any = None):
        self.name = name        # Shown in warnings: the relative path, or file[index].
        self.open = open_fn     # -> PIL image (header read, pixels decoded on load()).
        self.label = label      # None, an int class or a list of floats.

def _array_opener(array: np.ndarray) -> Callable[[], PIL.Image.Image]:
    return lambda: PIL.Image.fromarray(array)

def _labels_table(json_bytes: bytes | None, where: str) -> dict | None:
    if json_bytes is None:
        return None
    try:
        labels = json.loads(json_bytes).get('labels')
    except (ValueError, AttributeError):
        raise click.ClickException(f'{where}: dataset.json is not a JSON object with a "labels" entry') from None
    if labels is None:
        return None
    try:
        return labels_by_path(labels, where)
    except ValueError as err:
        raise click.ClickException(str(err)) from None

def open_image_folder(path: str) -> util.EasyDict:
    relpaths = sorted(os.path.relpath(os.path.join(root, fname), start=path).replace(os.sep, '/')
                      for root, _dirs, files in os.walk(path) for fname in files)
    json_path = os.path.join(path, 'dataset.json')
    table = _labels_table(open(json_path, 'rb').read() if os.path.isfile(json_path) else None, json_path)
    def open_fn(relpath):
        return lambda: PIL.Image.open(os.path.join(path, relpath))
    items = (SourceItem(relpath, open_fn(relpath), None if table is None else table.get(relpath))
             for relpath in relpaths if is_image_file(relpath))
    return util.EasyDict(images=items, labelled=table is not None, upscale=False)

def open_image_zip(path: str) -> util.EasyDict:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise click.ClickException(f'{path}: cannot read the zip archive ({err})') from None
    names = sorted(info.filename for info in archive.infolist() if not info.is_dir())
    unsafe = unsafe_archive_names(names)
    if unsafe:
        raise click.ClickException(f'{path}: {len(unsafe)} entr{"ies have" if len(unsafe) > 1 else "y has"} an absolute or ".." name '
                                   f'(e.g. "{unsafe[0]}"); such a zip is refused: make it again from a directory of the images')
    table = _labels_table(archive.read('dataset.json') if 'dataset.json' in names else None, f'{path}:dataset.json')
    def open_fn(name):
        return lambda: PIL.Image.open(archive.open(name))
    items = (SourceItem(name, open_fn(name), None if table is None else table.get(name))
             for name in names if is_image_file(name))
    return util.EasyDict(images=items, labelled=table is not None, upscale=False)

IDX_READ_CHUNK_BYTES = 2 ** 24     # The data is read in pieces: memory follows the bytes present, not the header's claim.

def read_idx(path: str, magic: int, max_items: int | None) -> np.ndarray:
    """IDX file (MNIST format): big-endian magic, dimensions, then uint8 data. The header's
    counts are checked against the data actually present before anything of their size exists."""
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            header = f.read(4)
            if len(header) < 4 or int.from_bytes(header, 'big') != magic:
                raise click.ClickException(f'{path}: not an IDX file with magic number {magic}')
            ndim = magic & 0xff
            dims = [int.from_bytes(f.read(4), 'big') for _ in range(ndim)]
            if 0 in dims[1:]:
                raise click.ClickException(f'{path}: the header declares items of {"x".join(map(str, dims[1:]))} values; '
                                           'expected at least 1x1')
            count = dims[0] if max_items is None else min(dims[0], max_items)
            item_size = int(np.prod(dims[1:], dtype=np.int64))
            chunks, num_bytes = [], 0
            while num_bytes < count * item_size:
                chunk = f.read(min(IDX_READ_CHUNK_BYTES, count * item_size - num_bytes))
                if not chunk:
                    break
                chunks.append(chunk)
                num_bytes += len(chunk)
    except (OSError, EOFError) as err:
        raise click.ClickException(f'{path}: cannot read ({err})') from None
    if num_bytes != count * item_size:
        raise click.ClickException(f'{path}: the header declares {dims[0]} items of {"x".join(map(str, dims[1:])) or "1"} bytes, '
                                   f'but the file holds {num_bytes // max(item_size, 1)} ({num_bytes} of the {count * item_size} bytes needed)')
    return np.frombuffer(b''.join(chunks), dtype=np.uint8).reshape([count] + dims[1:])

def open_mnist(path: str, max_images: int | None, pad_to_32: bool) -> util.EasyDict:
    """MNIST / Fashion-MNIST: 28x28 greyscale, padded with zeros to 32x32 as upstream unless a
    --resolution is given (then resized)."""
    images = read_idx(path, 2051, max_images)
    if pad_to_32:
        images = np.pad(images, [[0, 0], [2, 2], [2, 2]], mode='constant')
    labels_path = re.sub(r'images-idx3-ubyte', 'labels-idx1-ubyte', path)
    labels = read_idx(labels_path, 2049, max_images) if os.path.isfile(labels_path) else None
    if labels is not None and len(labels) != len(images):
        raise click.ClickException(f'{labels_path}: {len(labels)} labels for {len(images)} images')
    base = os.path.basename(path)
    items = (SourceItem(f'{base}[{i}]', _array_opener(images[i]), None if labels is None else int(labels[i])) for i in range(len(images)))
    return util.EasyDict(images=items, labelled=labels is not None, upscale=True)

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR-10 batches are pickles; allow only what a numpy array needs, never arbitrary code."""
    ALLOWED = {('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
               ('numpy', 'ndarray'), ('numpy', 'dtype')}
    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f'unexpected object {module}.{name}')
        return super().find_class(module, name)

def open_cifar10(path: str, max_images: int | None) -> util.EasyDict:
    """CIFAR-10 python archive: the 50k training images (data_batch_1..5) with labels 0-9."""
    images, labels = [], []
    try:
        with tarfile.open(path, 'r:gz') as tar:
            for batch in range(1, 6):
                member = tar.extractfile(f'cifar-10-batches-py/data_batch_{batch}')
                data = _NumpyOnlyUnpickler(member, encoding='bytes').load()
                images.append(np.asarray(data[b'data'], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                labels.append(np.asarray(data[b'labels'], dtype=np.int64))
    except (OSError, EOFError, KeyError, tarfile.TarError, pickle.UnpicklingError, ValueError, TypeError) as err:
        raise click.ClickException(f'{path}: not a readable cifar-10-python.tar.gz ({err})') from None
    images = np.concatenate(images)[:max_images]
    labels = np.concatenate(labels)[:max_images]
    base = os.path.basename(path)
    items = (SourceItem(f'{base}[{i}]', _array_opener(images[i]), int(labels[i])) for i in range(len(images)))
    return util.EasyDict(images=items, labelled=True, upscale=True)

def open_lsun(path: str) -> util.EasyDict:
    """LSUN scene category: an lmdb directory whose values are encoded images (no labels)."""
    try:
        import lmdb  # Optional dependency, only needed for LSUN.
    except ImportError:
        raise click.ClickException(f'{path}: reading LSUN lmdb directories needs the lmdb package (pip install lmdb)') from None
    try:
        env = lmdb.open(path, readonly=True, lock=False, max_readers=1, readahead=False, meminit=False)
    except lmdb.Error as err:
        raise click.ClickException(f'{path}: cannot open the lmdb database ({err})') from None
    def open_fn(key):
        def read():
            with env.begin(write=False) as txn:
                return bytes(txn.get(key))
        return lambda: PIL.Image.open(io.BytesIO(read()))
    def generate():
        with env.begin(write=False) as txn:
            for key in txn.cursor().iternext(keys=True, values=False):
                key = bytes(key)
                yield SourceItem(f'{os.path.basename(path)}[{key.decode("ascii", "replace")}]', open_fn(key))
    return util.EasyDict(images=generate(), labelled=False, upscale=False)

def open_source(path: str, max_images: int | None, resolution_given: bool) -> util.EasyDict:
    """Pick the reader from the source's name and kind."""
    base = os.path.basename(os.path.normpath(path))
    if os.path.isdir(path):
        if base.endswith('_lmdb') or os.path.isfile(os.path.join(path, 'data.mdb')):
            return open_lsun(path)
        return open_image_folder(path)
    if not os.path.isfile(path):
        raise click.ClickException(f'--source {path}: no such file or directory')
    if base == 'cifar-10-python.tar.gz':
        return open_cifar10(path, max_images)
    if re.search(r'images-idx3-ubyte(\.gz)?$', base):
        return open_mnist(path, max_images, pad_to_32=not resolution_given)
    if zipfile.is_zipfile(path):
        return open_image_zip(path)
    raise click.ClickException(f'--source {path}: expected a directory, a .zip, cifar-10-python.tar.gz, '
                               f'*-images-idx3-ubyte[.gz] (MNIST) or an LSUN lmdb directory')

#----------------------------------------------------------------------------
# Geometry: what a source image of size (w, h) becomes.

def crop_box(width: int, height: int, aspect: float) -> tuple[int, int, int, int]:
    """Largest centred box of the given width/height aspect inside a width x height image."""
    if width > height * aspect:
        crop_w, crop_h = int(round(height * aspect)), height
    else:
        crop_w, crop_h = width, int(round(width / aspect))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h

def content_size(size: tuple[int, int], resolution: tuple[int, int] | None, transform: str | None) -> tuple[int, int]:
    """Size of the source region that becomes the output image's content."""
    if transform is None or resolution is None:
        return size
    aspect = 1.0 if transform == 'center-crop' else resolution[0] / resolution[1]
    left, top, right, bottom = crop_box(size[0], size[1], aspect)
    return right - left, bottom - top

def transform_image(img: PIL.Image.Image, resolution: tuple[int, int] | None, transform: str | None, resample: int) -> PIL.Image.Image:
    if resolution is None:
        return img
    out_w, out_h = resolution
    if transform is not None:
        aspect = 1.0 if transform == 'center-crop' else out_w / out_h
        img = img.crop(crop_box(img.width, img.height, aspect))
    if img.size != (out_w, out_h):
        img = img.resize((out_w, out_h), resample=resample)
    if transform == 'center-crop-wide' and out_h != out_w:
        canvas = PIL.Image.new(img.mode, (out_w, out_w), 0)   # Black bars above and below.
        canvas.paste(img, (0, (out_w - out_h) // 2))
        img = canvas
    return img

#----------------------------------------------------------------------------
# Output: a zip or a directory, written to a temporary sibling and moved into place at the
# end, so a failed run leaves the destination untouched.

class DatasetWriter:
    """overwrite: an existing destination of the same kind (zip file, directory) is replaced,
    only once the new dataset is complete."""
    def __init__(self, dest: str, overwrite: bool = False):
        self.dest = dest
        self.overwrite = overwrite
        self.is_zip = dest.lower().endswith('.zip')
        if self.is_zip and os.path.exists(dest) and (not overwrite or not os.path.isfile(dest)):
            raise click.ClickException(f'--dest {dest}: already exists; refusing to overwrite it' + ('' if overwrite else ' (give --overwrite to replace it)'))
        if not self.is_zip and os.path.exists(dest) and (not os.path.isdir(dest) or (os.listdir(dest) and not overwrite)):
            hint = ' (give --overwrite to replace it)' if os.path.isdir(dest) else ''
            raise click.ClickException(f'--dest {dest}: exists and is not an empty directory; refusing to write into it{hint}')
        parent = os.path.dirname(os.path.abspath(dest))
        try:
            os.makedirs(parent, exist_ok=True)
            prefix = '.' + os.path.basename(os.path.abspath(dest)) + '.tmp-'
            if self.is_zip:
                fd, self.tmp_path = tempfile.mkstemp(dir=parent, prefix=prefix)
                os.close(fd)
                self.archive = zipfile.ZipFile(self.tmp_path, 'w', compression=zipfile.ZIP_STORED)
            else:
                self.tmp_path = tempfile.mkdtemp(dir=parent, prefix=prefix)
        except OSError as err:
            raise click.ClickException(f'--dest {dest}: cannot create output ({err})') from None

    def write(self, relpath: str, data: bytes) -> None:
        if self.is_zip:
            self.archive.writestr(relpath, data)
        else:
            full = os.path.join(self.tmp_path, relpath)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, 'wb') as f:
                f.write(data)

    def commit(self) -> None:
        if self.is_zip:
            self.archive.close()
            if os.path.exists(self.dest) and not self.overwrite:
                raise click.ClickException(f'--dest {self.dest}: appeared while writing; refusing to overwrite it')
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp_path, 0o666 & ~umask)   # mkstemp made it private.
        elif self.overwrite and os.path.isdir(self.dest) and os.listdir(self.dest):
            old = tempfile.mkdtemp(dir=os.path.dirname(self.tmp_path), prefix=os.path.basename(self.tmp_path) + '-old')
            os.replace(self.dest, old)                 # Moved aside (a directory cannot be replaced by rename),
            os.replace(self.tmp_path, self.dest)       # the new one in its place,
            shutil.rmtree(old)                         # then the old one removed.
            return
        os.replace(self.tmp_path, self.dest)   # A zip file, or an empty destination directory, is replaced atomically.

    def abort(self) -> None:
        """Remove the partial output; closing a zip on a full disk fails again, which changes nothing."""
        if self.is_zip:
            try:
                self.archive.close()
            except OSError:
                pass
            if os.path.exists(self.tmp_path):
                os.remove(self.tmp_path)
        else:
            shutil.rmtree(self.tmp_path, ignore_errors=True)

#----------------------------------------------------------------------------
# Progress on stderr: a redrawn bar on a terminal, one line per 10% otherwise.

class Progress:
    def __init__(self, total: int, label: str):
        self.total, self.label = max(total, 1), label
        self.tty = sys.stderr.isatty()
        self.last_time, self.last_decile = 0.0, -1

    def update(self, done: int) -> None:
        if self.tty:
            now = time.time()
            if now - self.last_time < 0.2 and done < self.total:
                return
            self.last_time = now
            filled = int(30 * done / self.total)
            click.echo(f'\r{self.label} [{"#" * filled}{"." * (30 - filled)}] {done}/{self.total}', err=True, nl=done >= self.total)
        else:
            decile = 10 * done // self.total
            if decile != self.last_decile:
                self.last_decile = decile
                click.echo(f'{self.label}: {done}/{self.total}', err=True)

#----------------------------------------------------------------------------
# Option parsing.

def parse_resolution(ctx, param, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    m = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', value)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise click.BadParameter(f'"{value}": expected WxH, for example 256x256')
    return int(m.group(1)), int(m.group(2))

def parse_background(ctx, param, value: str) -> tuple[int, int, int]:
    text = value.strip()
    if re.fullmatch(r'\d+\s*,\s*\d+\s*,\s*\d+', text):
        rgb = tuple(int(v) for v in text.split(','))
        if all(0 <= v <= 255 for v in rgb):
            return rgb
    else:
        try:
            return PIL.ImageColor.getrgb(text)[:3]
        except ValueError:
            pass
    raise click.BadParameter(f'"{value}": expected a colour name (white), #rrggbb or r,g,b with values 0-255')

def check_resolution(resolution: tuple[int, int], transform: str | None, what: str) -> None:
    width, height = resolution
    if width & (width - 1):
        raise click.ClickException(f'{what} {width}x{height}: the side must be a power of two (e.g. 64, 128, 256)')
    if transform == 'center-crop-wide':
        if height > width:
            raise click.ClickException(f'{what} {width}x{height}: center-crop-wide needs a height no larger than the width')
    elif width != height:
        raise click.ClickException(f'{what} {width}x{height}: the output must be square '
                                   f'(or use --transform=center-crop-wide to letterbox a {width}x{height} crop)')

#----------------------------------------------------------------------------

SKIP_REASONS = {'corrupt': 'cannot be decoded', 'too-small': 'smaller than the output'}

@click.command()
@click.option('--source',        help='Input: directory, .zip, cifar-10-python.tar.gz, *-images-idx3-ubyte.gz or LSUN lmdb dir', metavar='PATH', required=True)
@click.option('--dest',          help='Output: .zip or an empty/new directory', metavar='PATH', required=True)
@click.option('--max-images',    help='Write at most this many images', type=click.IntRange(min=1), metavar='INT')
@click.option('--resolution',    help='Output size WxH (power of two; default: the source size)', metavar='WxH', callback=parse_resolution)
@click.option('--width',         help='Output width: StyleGAN2-ADA\'s form of --resolution, with --height', type=click.IntRange(min=1), metavar='INT')
@click.option('--height',        help='Output height, with --width', type=click.IntRange(min=1), metavar='INT')
@click.option('--transform',     help='Crop before resizing (needs --resolution)', type=click.Choice(TRANSFORMS))
@click.option('--resize-filter', help='Resampling filter', type=click.Choice(list(RESIZE_FILTERS)), default='lanczos', show_default=True)
@click.option('--channels',      help='Force 1 (greyscale) or 3 (RGB) channels [default: 1 if all images are greyscale, else 3]', type=click.Choice(['1', '3']))
@click.option('--background',    help='Colour under transparent pixels (name, #rrggbb or r,g,b)', default='white', show_default=True, callback=parse_background)
@click.option('--strict',        help='Stop with an error instead of skipping a bad image', is_flag=True)
@click.option('--overwrite',     help='Replace an existing --dest (once the new dataset is complete)  [default: refuse]', is_flag=True)
def main(source, dest, max_images, resolution, width, height, transform, resize_filter, channels, background, strict, overwrite):
    """Convert images into a dataset for train.py (zip or folder of PNGs + dataset.json).

    \b
    Examples:
      python dataset_tool.py --source=photos/ --dest=photos256.zip --resolution=256x256 --transform=center-crop
      python dataset_tool.py --source=train-images-idx3-ubyte.gz --dest=mnist32.zip
    """
    if width is not None or height is not None:
        if width is None or height is None:
            raise click.ClickException('--width and --height go together (or give --resolution=WxH)')
        if resolution is not None and resolution != (width, height):
            raise click.ClickException(f'--width={width} --height={height} contradict --resolution={resolution[0]}x{resolution[1]}; give one of them')
        resolution = (width, height)
    if transform is not None and resolution is None:
        raise click.ClickException(f'--transform={transform} needs --resolution=WxH')
    if resolution is not None:
        check_resolution(resolution, transform, '--resolution')
    if os.path.abspath(dest) == os.path.abspath(source):
        raise click.ClickException('--dest must differ from --source')
    writer = DatasetWriter(dest, overwrite=overwrite)
    try:
        summary = convert_dataset(writer, source, max_images, resolution, transform, RESIZE_FILTERS[resize_filter],
                                  None if channels is None else int(channels), background, strict)
        writer.commit()
    except BaseException as err:
        writer.abort()
        if isinstance(err, OSError):
            if err.errno == errno.ENOSPC:
                raise click.ClickException(f'--dest {dest}: no space left on the device; the partial output was removed') from None
            raise click.ClickException(f'{err}') from None
        raise
    click.echo(f'Wrote {summary.written} images ({summary.shape}, labels: {summary.labels}) to {dest}')
    if summary.skipped:
        click.echo(f'Skipped {sum(summary.skipped.values())}: ' + ', '.join(f'{n} {SKIP_REASONS[r]}' for r, n in summary.skipped.items()))
    if summary.converted:
        click.echo('Converted: ' + ', '.join(f'{n} {note}' for note, n in sorted(summary.converted.items())))

def convert_dataset(writer: DatasetWriter, source_path: str, max_images: int | None, resolution: tuple[int, int] | None,
                    transform: str | None, resample: int, channels: int | None, background: tuple[int, int, int], strict: bool) -> util.EasyDict:
    source = open_source(source_path, max_images, resolution_given=resolution is not None)
    skipped, converted = {}, {}

    def skip(item: SourceItem, reason: str, detail: str) -> None:
        message = f'{item.name}: {SKIP_REASONS[reason]} ({detail})'
        if strict:
            raise click.ClickException(message + '; stopped because of --strict')
        click.echo(f'Warning: skipping {message}', err=True)
        skipped[reason] = skipped.get(reason, 0) + 1

    # Pass 1: headers only. Decide the channel count and output size; find unusable files.
    usable, sizes, all_grey, non_square = [], {}, True, []
    tty, last_time, num_scanned = sys.stderr.isatty(), 0.0, 0
    for item in source.images:
        if max_images is not None and len(usable) >= max_images:
            break
        num_scanned += 1
        if tty and time.time() - last_time > 0.2:
            last_time = time.time()
            click.echo(f'\rScanning: {num_scanned} images', err=True, nl=False)
        try:
            with item.open() as img:
                size, mode = exif_oriented_size(img), img.mode
        except DECODE_ERRORS as err:
            skip(item, 'corrupt', str(err) or type(err).__name__)
            continue
        if resolution is not None and not source.upscale:
            need_w, need_h = (resolution[0], resolution[0]) if transform == 'center-crop' else resolution
            got_w, got_h = content_size(size, resolution, transform)
            if got_w < need_w or got_h < need_h:
                skip(item, 'too-small', f'{size[0]}x{size[1]}, need a {need_w}x{need_h} region')
                continue
        if transform is None and size[0] != size[1]:
            non_square.append(f'{item.name} ({size[0]}x{size[1]})')
        sizes.setdefault(size, []).append(item.name)
        all_grey = all_grey and mode in GREY_MODES
        usable.append(item)
    click.echo(f'{chr(13) if tty else ""}Scanned {num_scanned} images: {len(usable)} usable', err=True)
    if non_square:
        raise click.ClickException(f'{len(non_square)} image(s) are not square, e.g. {non_square[0]}; '
                                   f'pass --resolution=WxH --transform=center-crop (or center-crop-wide) to crop them')
    if not usable:
        raise click.ClickException(f'--source {source_path}: no usable images found' + (f' ({sum(skipped.values())} skipped)' if skipped else ''))
    if resolution is None:
        if len(sizes) > 1:
            listing = '; '.join(f'{w}x{h}: {len(names)} (e.g. {names[0]})' for (w, h), names in sorted(sizes.items(), key=lambda kv: -len(kv[1]))[:4])
            raise click.ClickException(f'the images have {len(sizes)} different sizes ({listing}); pass --resolution=WxH to resize them all')
        try:
            check_resolution(next(iter(sizes)), None, 'the source images are')
        except click.ClickException as err:
            raise click.ClickException(err.message + '; pass --resolution=WxH to resize them') from None
    num_channels = channels if channels is not None else (1 if all_grey else 3)
    out_mode = 'L' if num_channels == 1 else 'RGB'

    # Pass 2: decode, convert, write.
    entries = []
    progress = Progress(len(usable), 'Converting')
    for idx, item in enumerate(usable):
        try:
            img, notes = standardize_image(item.open(), background)
        except DECODE_ERRORS as err:
            skip(item, 'corrupt', str(err) or type(err).__name__)
            progress.update(idx + 1)
            continue
        if img.mode != out_mode:
            notes.append('greyscale->RGB' if out_mode == 'RGB' else 'colour->greyscale')
            img = img.convert(out_mode)
        img = transform_image(img, resolution, transform, resample)
        for note in notes:
            converted[note] = converted.get(note, 0) + 1
        relpath = f'{len(entries) // 1000:05d}/img{len(entries):08d}.png'
        png = io.BytesIO()
        img.save(png, format='png', compress_level=0, optimize=False)
        writer.write(relpath, png.getvalue())
        entries.append((relpath, item.label))
        progress.update(idx + 1)
    if not entries:
        raise click.ClickException(f'--source {source_path}: no images could be written ({sum(skipped.values())} skipped)')

    # Labels: kept only when every written image has one.
    labels = None
    if source.labelled:
        if any(label is None for _, label in entries):
            missing = sum(label is None for _, label in entries)
            click.echo(f'Warning: {missing} of {len(entries)} images have no label in dataset.json; writing "labels": null', err=True)
        else:
            labels = [[relpath, label] for relpath, label in entries]
            try:
                parse_labels(labels, [relpath for relpath, _ in entries], where='source dataset.json')
            except ValueError as err:
                raise click.ClickException(str(err)) from None
    writer.write('dataset.json', json.dumps({'labels': labels}).encode('utf-8'))

    side = resolution[0] if resolution is not None else next(iter(sizes))[0]
    return util.EasyDict(written=len(entries), skipped=skipped, converted=converted,
                         shape=f'{side}x{side}, {num_channels} channel{"s" if num_channels > 1 else ""}',
                         labels='yes' if labels is not None else 'none')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
