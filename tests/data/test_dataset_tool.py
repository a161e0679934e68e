"""dataset_tool.py through click's CliRunner on small generated sources, one per odd input."""

import gzip
import io
import json
import os
import pickle
import re
import sys
import tarfile
import types
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

from dataset_tool import main
from training.dataset import ImageFolderDataset

FASHION_MNIST = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz'

#----------------------------------------------------------------------------

def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), f'traceback: {result.exception!r}\n{result.output}'
    return result

def ok(*args):
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result

def fails(*args, match):
    result = run(*args)
    assert result.exit_code != 0, result.output
    assert match in result.output, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith('Error')]
    assert len(error_lines) == 1, result.output
    return result

def save(path, img, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, **kwargs)

def noise(size, channels=3, seed=0):
    shape = (size[1], size[0]) if channels == 1 else (size[1], size[0], channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)

def rgb_folder(root, count=4, size=(32, 32)):
    for i in range(count):
        save(f'{root}/img{i}.png', PIL.Image.fromarray(noise(size, seed=i)))
    return root

def load(path, **kwargs):
    ds = ImageFolderDataset(str(path), **kwargs)
    return ds, np.stack([ds[i][0] for i in range(len(ds))])

#----------------------------------------------------------------------------
# Destinations.

def test_folder_to_zip_and_directory(tmp_path):
    src = rgb_folder(tmp_path / 'src')
    result = ok('--source', src, '--dest', tmp_path / 'out.zip')
    assert 'Wrote 4 images (32x32, 3 channels, labels: none)' in result.stdout
    assert 'Converting: 4/4' in result.stderr
    with zipfile.ZipFile(tmp_path / 'out.zip') as z:
        names = sorted(z.namelist())
        assert names == ['00000/img00000000.png', '00000/img00000001.png', '00000/img00000002.png', '00000/img00000003.png', 'dataset.json']
        assert all(info.compress_type == zipfile.ZIP_STORED for info in z.infolist())
        assert json.loads(z.read('dataset.json')) == {'labels': None}
    ds, images = load(tmp_path / 'out.zip')
    for i in range(4):
        np.testing.assert_array_equal(images[i], noise((32, 32), seed=i).transpose(2, 0, 1))
    os.makedirs(tmp_path / 'emptydir')
    ok('--source', src, '--dest', tmp_path / 'emptydir')
    assert os.path.isfile(tmp_path / 'emptydir' / '00000' / 'img00000003.png')
    ok('--source', tmp_path / 'out.zip', '--dest', tmp_path / 'newdir')  # A zip as source.
    np.testing.assert_array_equal(load(tmp_path / 'newdir')[1], images)

def test_existing_destination_is_refused_and_untouched(tmp_path):
    src = rgb_folder(tmp_path / 'src')
    (tmp_path / 'out.zip').write_bytes(b'precious')
    fails('--source', src, '--dest', tmp_path / 'out.zip', match='already exists')
    assert (tmp_path / 'out.zip').read_bytes() == b'precious'
    os.makedirs(tmp_path / 'full')
    (tmp_path / 'full' / 'keep.txt').write_text('precious')
    fails('--source', src, '--dest', tmp_path / 'full', match='not an empty directory')
    assert os.listdir(tmp_path / 'full') == ['keep.txt']

def test_overwrite_replaces_only_a_complete_dataset(tmp_path):
    src = rgb_folder(tmp_path / 'src')
    for dest in (tmp_path / 'out.zip', tmp_path / 'outdir'):
        ok('--source', src, '--dest', dest, '--max-images=2')
        fails('--source', src, '--dest', dest, match='give --overwrite to replace it')
        (src / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
        fails('--source', src, '--dest', dest, '--overwrite', '--strict', match='broken.png')
        assert len(load(dest)[0]) == 2          # A failed run leaves the old dataset as it was.
        (src / 'broken.png').unlink()
        ok('--source', src, '--dest', dest, '--overwrite')
        assert len(load(dest)[0]) == 4
    assert sorted(os.listdir(tmp_path)) == ['out.zip', 'outdir', 'src']   # No temporaries left.

def test_failed_run_leaves_no_output(tmp_path):
    src = rgb_folder(tmp_path / 'src')
    (src / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    fails('--source', src, '--dest', tmp_path / 'out.zip', '--strict', match='broken.png')
    fails('--source', src, '--dest', tmp_path / 'outdir', '--strict', match='broken.png')
    assert sorted(os.listdir(tmp_path)) == ['src']  # No zip, no directory, no temporary files.

#----------------------------------------------------------------------------
# Pixel formats.

def test_rgba_composited_on_background(tmp_path):
    pixels = noise((32, 32), channels=4)
    pixels[:16, :, 3] = 0       # Top half transparent.
    pixels[16:, :, 3] = 255     # Bottom half opaque.
    save(f'{tmp_path}/src/a.png', PIL.Image.fromarray(pixels, 'RGBA'))
    result = ok('--source', tmp_path / 'src', '--dest', tmp_path / 'white.zip')
    assert '1 alpha-composited' in result.stdout
    white = load(tmp_path / 'white.zip')[1][0]
    assert (white[:, :16] == 255).all()
    np.testing.assert_array_equal(white[:, 16:], pixels[16:, :, :3].transpose(2, 0, 1))
    ok('--source', tmp_path / 'src', '--dest', tmp_path / 'red.zip', '--background', '#ff0000')
    red = load(tmp_path / 'red.zip')[1][0]
    assert (red[0, :16] == 255).all() and (red[1:, :16] == 0).all()
    ok('--source', tmp_path / 'src', '--dest', tmp_path / 'grey.zip', '--background', '10,10,10')
    assert (load(tmp_path / 'grey.zip')[1][0][:, :16] == 10).all()
    fails('--source', tmp_path / 'src', '--dest', tmp_path / 'x.zip', '--background', 'notacolour', match='--background')

def test_greyscale_outputs(tmp_path):
    for i in range(2):
        save(f'{tmp_path}/grey/g{i}.png', PIL.Image.fromarray(noise((32, 32), channels=1, seed=i)))
    ok('--source', tmp_path / 'grey', '--dest', tmp_path / 'grey.zip')
    ds, images = load(tmp_path / 'grey.zip')
    assert ds.num_channels == 1
    np.testing.assert_array_equal(images[0, 0], noise((32, 32), channels=1, seed=0))
    # Mixed with colour: 3 channels, grey replicated.
    save(f'{tmp_path}/grey/zcolour.png', PIL.Image.fromarray(noise((32, 32))))
    result = ok('--source', tmp_path / 'grey', '--dest', tmp_path / 'mixed.zip')
    assert '2 greyscale->RGB' in result.stdout
    ds, images = load(tmp_path / 'mixed.zip')
    assert ds.num_channels == 3 and (images[0] == images[0, :1]).all()
    # Forced to one channel: colour converted with PIL's luma.
    result = ok('--source', tmp_path / 'grey', '--dest', tmp_path / 'forced.zip', '--channels', '1')
    assert '1 colour->greyscale' in result.stdout
    ds, images = load(tmp_path / 'forced.zip')
    assert ds.num_channels == 1
    np.testing.assert_array_equal(images[2, 0], np.asarray(PIL.Image.fromarray(noise((32, 32))).convert('L')))

def test_palette_cmyk_16bit(tmp_path):
    palette_img = PIL.Image.fromarray(noise((32, 32))).quantize(colors=8)
    save(f'{tmp_path}/src/a_palette.png', palette_img)
    cmyk = PIL.Image.new('CMYK', (32, 32), (0, 255, 255, 0))   # Pure red in CMYK.
    save(f'{tmp_path}/src/b_cmyk.jpg', cmyk, quality=95)
    values16 = np.random.default_rng(0).integers(0, 65536, (32, 32)).astype(np.uint16)
    save(f'{tmp_path}/src/c_16bit.png', PIL.Image.fromarray(values16))
    result = ok('--source', tmp_path / 'src', '--dest', tmp_path / 'out.zip')
    for note in ('1 palette', '1 cmyk', '1 16-bit', '1 greyscale->RGB'):
        assert note in result.stdout
    images = load(tmp_path / 'out.zip')[1]
    np.testing.assert_array_equal(images[0], np.asarray(palette_img.convert('RGB')).transpose(2, 0, 1))
    red = images[1].reshape(3, -1).mean(axis=1)
    assert red[0] > 240 and red[1] < 15 and red[2] < 15
    expected16 = np.clip(np.rint(values16 / 257), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(images[2][0], expected16)

def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((32, 64, 3), dtype=np.uint8)   # 64 wide, 32 high; top half white.
    stored[:16] = 255
    exif = PIL.Image.Exif()
    exif[0x0112] = 6    # Display rotated 90 degrees clockwise: the top becomes the right side.
    save(f'{tmp_path}/src/a.jpg', PIL.Image.fromarray(stored), exif=exif.tobytes(), quality=95)
    result = ok('--source', tmp_path / 'src', '--dest', tmp_path / 'out.zip', '--resolution', '32x32', '--transform', 'center-crop')
    assert '1 exif-rotated' in result.stdout
    image = load(tmp_path / 'out.zip')[1][0].astype(float)
    assert image[:, :, 20:].mean() > 230 and image[:, :, :12].mean() < 25
    # Its displayed size is 32x64: non-square, so it needs a transform.
    fails('--source', tmp_path / 'src', '--dest', tmp_path / 'out2.zip', match='a.jpg (32x64)')

#----------------------------------------------------------------------------
# Geometry.

def test_non_square_needs_transform(tmp_path):
    save(f'{tmp_path}/src/wide.png', PIL.Image.fromarray(noise((64, 32))))
    fails('--source', tmp_path / 'src', '--dest', tmp_path / 'a.zip', match='--transform=center-crop')
    fails('--source', tmp_path / 'src', '--dest', tmp_path / 'a.zip', '--resolution', '32x32', match='not square')
    ok('--source', tmp_path / 'src', '--dest', tmp_path / 'crop.zip', '--resolution', '32x32', '--transform', 'center-crop')
    np.testing.assert_array_equal(load(tmp_path / 'crop.zip')[1][0], noise((64, 32))[:, 16:48].transpose(2, 0, 1))
    ok('--source', tmp_path / 'src', '--dest', tmp_path / 'wide.zip', '--resolution', '64x32', '--transform', 'center-crop-wide')
    image = load(tmp_path / 'wide.zip')[1][0]
    assert image.shape == (3, 64, 64)
    assert (image[:, :16] == 0).all() and (image[:, 48:] == 0).all()
    np.testing.assert_array_equal(image[:, 16:48], noise((64, 32)).transpose(2, 0, 1))

def test_output_resolution_checks(tmp_path):
    src = rgb_folder(tmp_path / 'src')
    fails('--source', src, '--dest', tmp_path / 'a.zip', '--resolution', '48x48', match='power of two')
    fails('--source', src, '--dest', tmp_path / 'a.zip', '--resolution', '32x16', match='must be square')
    fails('--source', src, '--dest', tmp_path / 'a.zip', '--resolution', 'big', match='expected WxH')
    fails('--source', src, '--dest', tmp_path / 'a.zip', '--transform', 'center-crop', match='needs --resolution')
    save(f'{tmp_path}/odd/a.png', PIL.Image.fromarray(noise((24, 24))))
    fails('--source', tmp_path / 'odd', '--dest', tmp_path / 'a.zip', match='pass --resolution')

def test_mixed_sizes_and_too_small(tmp_path):
    src = rgb_folder(tmp_path / 'src', count=2, size=(64, 64))
    save(f'{src}/small.png', PIL.Image.fromarray(noise((16, 16))))
    fails('--source', src, '--dest', tmp_path / 'a.zip', match='2 different sizes')
    result = ok('--source', src, '--dest', tmp_path / 'b.zip', '--resolution', '32x32')
    assert 'Warning: skipping small.png: smaller than the output (16x16' in result.stderr
    assert 'Wrote 2 images' in result.stdout and 'Skipped 1: 1 smaller than the output' in result.stdout
    fails('--source', src, '--dest', tmp_path / 'c.zip', '--resolution', '32x32', '--strict', match='small.png')

def test_resize_filters(tmp_path):
    src = rgb_folder(tmp_path / 'src', count=1, size=(64, 64))
    ok('--source', src, '--dest', tmp_path / 'box.zip', '--resolution', '32x32', '--resize-filter', 'box')
    ok('--source', src, '--dest', tmp_path / 'lanczos.zip', '--resolution', '32x32')
    box, lanczos = load(tmp_path / 'box.zip')[1][0], load(tmp_path / 'lanczos.zip')[1][0]
    blocks = noise((64, 64)).astype(float).reshape(32, 2, 32, 2, 3).mean(axis=(1, 3)).transpose(2, 0, 1)
    assert np.abs(box - blocks).max() <= 1   # Box filter = 2x2 average (PIL's fixed-point rounding).
    assert np.abs(lanczos - blocks).max() > 5          # Lanczos is a different filter.

#----------------------------------------------------------------------------
# Bad files, empty input, limits, labels.

def test_corrupt_and_truncated_files_are_skipped(tmp_path):
    src = rgb_folder(tmp_path / 'src', count=3)
    (src / 'corrupt.png').write_bytes(b'this is not an image')
    png = io.BytesIO()
    PIL.Image.fromarray(noise((32, 32))).save(png, format='png')
    (src / 'truncated.png').write_bytes(png.getvalue()[:400])
    result = ok('--source', src, '--dest', tmp_path / 'out.zip')
    assert 'skipping corrupt.png' in result.stderr and 'skipping truncated.png' in result.stderr
    assert 'Wrote 3 images' in result.stdout and 'Skipped 2: 2 cannot be decoded' in result.stdout
    assert len(ImageFolderDataset(str(tmp_path / 'out.zip'))) == 3

def test_empty_and_missing_sources(tmp_path):
    os.makedirs(tmp_path / 'empty')
    (tmp_path / 'empty' / 'readme.txt').write_text('no images here')
    fails('--source', tmp_path / 'empty', '--dest', tmp_path / 'a.zip', match='no usable images')
    fails('--source', tmp_path / 'nothere', '--dest', tmp_path / 'a.zip', match='no such file')
    (tmp_path / 'data.bin').write_bytes(b'x')
    fails('--source', tmp_path / 'data.bin', '--dest', tmp_path / 'a.zip', match='expected a directory')
    assert not os.path.exists(tmp_path / 'a.zip')

def test_labels_and_max_images(tmp_path):
    src = rgb_folder(tmp_path / 'src', count=5)
    labels = [[f'img{i}.png', i % 3] for i in range(5)]
    (src / 'dataset.json').write_text(json.dumps({'labels': labels}))
    result = ok('--source', src, '--dest', tmp_path / 'out.zip', '--max-images', '4')
    assert 'Wrote 4 images' in result.stdout and 'labels: yes' in result.stdout
    ds = ImageFolderDataset(str(tmp_path / 'out.zip'), use_labels=True)
    assert len(ds) == 4 and ds.label_dim == 3
    assert [int(np.argmax(ds.get_label(i))) for i in range(4)] == [0, 1, 2, 0]
    (src / 'dataset.json').write_text(json.dumps({'labels': labels[:2]}))
    result = ok('--source', src, '--dest', tmp_path / 'partial.zip')
    assert '3 of 5 images have no label' in result.stderr
    assert not ImageFolderDataset(str(tmp_path / 'partial.zip')).has_labels
    fails('--source', src, '--dest', tmp_path / 'z.zip', '--max-images', '0', match='--max-images')

#----------------------------------------------------------------------------
# Array sources.

def write_idx(path, array, magic):
    with gzip.open(path, 'wb') as f:
        f.write(magic.to_bytes(4, 'big'))
        for dim in array.shape:
            f.write(int(dim).to_bytes(4, 'big'))
        f.write(array.astype(np.uint8).tobytes())

def test_mnist_idx_files(tmp_path):
    images = np.random.default_rng(0).integers(1, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / 'train-images-idx3-ubyte.gz', images, 2051)
    write_idx(tmp_path / 'train-labels-idx1-ubyte.gz', np.array([3, 1, 4, 1, 5]), 2049)
    ok('--source', tmp_path / 'train-images-idx3-ubyte.gz', '--dest', tmp_path / 'padded.zip')
    ds, out = load(tmp_path / 'padded.zip', use_labels=True)
    assert ds.image_shape == [1, 32, 32] and ds.label_dim == 6
    np.testing.assert_array_equal(out[:, 0, 2:30, 2:30], images)
    assert (out[:, :, :2] == 0).all() and (out[:, :, :, 30:] == 0).all()
    assert [int(np.argmax(ds.get_label(i))) for i in range(5)] == [3, 1, 4, 1, 5]
    ok('--source', tmp_path / 'train-images-idx3-ubyte.gz', '--dest', tmp_path / 'big.zip', '--resolution', '64x64', '--max-images', '2')
    ds, out = load(tmp_path / 'big.zip')
    assert len(ds) == 2 and ds.image_shape == [1, 64, 64]  # Resized (upscaled), not padded.
    (tmp_path / 'train-images-idx3-ubyte.gz').write_bytes(gzip.compress(b'\x00\x00\x08\x01' + b'\x00' * 8))
    fails('--source', tmp_path / 'train-images-idx3-ubyte.gz', '--dest', tmp_path / 'c.zip', match='magic number 2051')

def write_idx_header(path, dims, magic=2051, data=b''):
    header = magic.to_bytes(4, 'big') + b''.join(int(d).to_bytes(4, 'big') for d in dims)
    path.write_bytes(gzip.compress(header + data) if str(path).endswith('.gz') else header + data)

@pytest.mark.parametrize('suffix', ['', '.gz'])
def test_idx_header_claims_are_checked_against_the_data(tmp_path, suffix):
    source = tmp_path / f'train-images-idx3-ubyte{suffix}'
    write_idx_header(source, [4294967295, 28, 28], data=bytes(3 * 28 * 28))   # Would be 3.4 TB if believed.
    fails('--source', source, '--dest', tmp_path / 'a.zip',
          match=f'{source}: the header declares 4294967295 items of 28x28 bytes, but the file holds 3 (2352 of the 3367254359280 bytes needed)')
    write_idx_header(source, [5, 0, 0])
    fails('--source', source, '--dest', tmp_path / 'b.zip', match=f'{source}: the header declares items of 0x0 values; expected at least 1x1')
    assert not (tmp_path / 'a.zip').exists() and not (tmp_path / 'b.zip').exists()

def test_class_label_beyond_the_limit(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    for i in range(2):
        PIL.Image.new('RGB', (8, 8), (i, 0, 0)).save(src / f'{i}.png')
    (src / 'dataset.json').write_text(json.dumps({'labels': [['0.png', 0], ['1.png', 10 ** 12]]}))
    fails('--source', src, '--dest', tmp_path / 'out.zip', match='class label 1000000000000 is above the limit of 65535')
    assert not (tmp_path / 'out.zip').exists()

@pytest.mark.skipif(not os.path.isfile(FASHION_MNIST), reason=f'{FASHION_MNIST} not installed (apt-get install dataset-fashion-mnist)')
def test_fashion_mnist(tmp_path):
    result = ok('--source', FASHION_MNIST, '--dest', tmp_path / 'fmnist.zip', '--max-images', '100')
    assert 'Wrote 100 images (32x32, 1 channel, labels: yes)' in result.stdout
    ds, images = load(tmp_path / 'fmnist.zip', use_labels=True)
    assert len(ds) == 100 and ds.label_dim == 10 and images[:, :, :2].max() == 0 and images.mean() > 20

def test_cifar10_archive(tmp_path):
    rng = np.random.default_rng(0)
    batches = {}
    with tarfile.open(tmp_path / 'cifar-10-python.tar.gz', 'w:gz') as tar:
        for b in range(1, 6):
            batches[b] = dict(data=rng.integers(0, 256, (2, 3072), dtype=np.uint8), labels=[b, (b * 3) % 10])
            payload = pickle.dumps({b'data': batches[b]['data'], b'labels': batches[b]['labels']})
            info = tarfile.TarInfo(f'cifar-10-batches-py/data_batch_{b}')
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    ok('--source', tmp_path / 'cifar-10-python.tar.gz', '--dest', tmp_path / 'cifar.zip')
    ds, images = load(tmp_path / 'cifar.zip', use_labels=True)
    assert len(ds) == 10 and ds.image_shape == [3, 32, 32] and ds.label_dim == 10
    np.testing.assert_array_equal(images[2], batches[2]['data'][0].reshape(3, 32, 32))
    assert int(np.argmax(ds.get_label(3))) == 6

def test_cifar10_refuses_code_in_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ('echo owned',))
    payload = pickle.dumps({b'data': Evil(), b'labels': [0]})
    with tarfile.open(tmp_path / 'cifar-10-python.tar.gz', 'w:gz') as tar:
        info = tarfile.TarInfo('cifar-10-batches-py/data_batch_1')
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    fails('--source', tmp_path / 'cifar-10-python.tar.gz', '--dest', tmp_path / 'c.zip', match='unexpected object')

def test_lsun_lmdb(tmp_path, monkeypatch):
    os.makedirs(tmp_path / 'church_lmdb')
    monkeypatch.setitem(sys.modules, 'lmdb', None)  # As if lmdb were not installed.
    fails('--source', tmp_path / 'church_lmdb', '--dest', tmp_path / 'a.zip', match='pip install lmdb')
    # A stand-in with the subset of the lmdb API the tool uses: open/begin/cursor/get.
    store = {}
    for i in range(3):
        jpeg = io.BytesIO()
        PIL.Image.fromarray(noise((48, 32), seed=i)).save(jpeg, format='jpeg')
        store[f'key{i}'.encode()] = jpeg.getvalue()
    class Txn:
        def __enter__(self): return self
        def __exit__(self, *exc): return False
        def get(self, key): return store[key]
        def cursor(self): return types.SimpleNamespace(iternext=lambda keys, values: iter(sorted(store)))
    fake = types.SimpleNamespace(Error=RuntimeError, open=lambda path, **kwargs: types.SimpleNamespace(begin=lambda write: Txn()))
    monkeypatch.setitem(sys.modules, 'lmdb', fake)
    result = ok('--source', tmp_path / 'church_lmdb', '--dest', tmp_path / 'lsun.zip', '--resolution', '32x32', '--transform', 'center-crop')
    assert 'Wrote 3 images (32x32, 3 channels, labels: none)' in result.stdout

#----------------------------------------------------------------------------

def test_lsun_real_lmdb(tmp_path):
    lmdb = pytest.importorskip('lmdb', reason='lmdb not installed (pip install lmdb); the stand-in test above covers the code path')
    env = lmdb.open(str(tmp_path / 'bedroom_train_lmdb'), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i in range(3):
            webp = io.BytesIO()
            PIL.Image.fromarray(noise((40, 32), seed=i)).save(webp, format='webp', quality=90)
            txn.put(f'{i:040x}'.encode(), webp.getvalue())
    env.close()
    result = ok('--source', tmp_path / 'bedroom_train_lmdb', '--dest', tmp_path / 'lsun.zip', '--resolution', '32x32', '--transform', 'center-crop')
    assert 'Wrote 3 images (32x32, 3 channels, labels: none)' in result.stdout
    assert len(ImageFolderDataset(str(tmp_path / 'lsun.zip'))) == 3


#----------------------------------------------------------------------------
# StyleGAN2-ADA's options, and a quick --help.

def test_width_and_height_are_resolution(tmp_path):
    src = rgb_folder(tmp_path / 'src')
    ok('--source', src, '--dest', tmp_path / 'a.zip', '--width=16', '--height=16')
    ok('--source', src, '--dest', tmp_path / 'b.zip', '--resolution=16x16')
    assert np.array_equal(load(tmp_path / 'a.zip')[1], load(tmp_path / 'b.zip')[1])
    assert load(tmp_path / 'a.zip')[0].resolution == 16
    fails('--source', src, '--dest', tmp_path / 'c.zip', '--width=16', match='--width and --height go together')
    fails('--source', src, '--dest', tmp_path / 'c.zip', '--width=16', '--height=16', '--resolution=8x8',
          match='--width=16 --height=16 contradict --resolution=8x8')
    assert not (tmp_path / 'c.zip').exists()

def test_help_does_not_import_torch():
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = "import sys; sys.argv = ['dataset_tool.py', '--help']; import dataset_tool\ntry:\n    dataset_tool.main()\nexcept SystemExit:\n    pass\nprint('torch imported:', 'torch' in sys.modules)"
    proc = subprocess.run([sys.executable, '-c', code], cwd=root, capture_output=True, text=True, timeout=120)
    assert 'Usage:' in proc.stdout and 'torch imported: False' in proc.stdout, proc.stdout + proc.stderr

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Hostile or odd sources, and a full disk.

def test_float_images_by_value_range(tmp_path):
    unit = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    save(f'{tmp_path}/src/a_unit.tif', PIL.Image.fromarray(unit, mode='F'))
    save(f'{tmp_path}/src/b_bytes.tif', PIL.Image.fromarray(unit * 255, mode='F'))
    result = ok('--source', tmp_path / 'src', '--dest', tmp_path / 'out.zip')
    assert '2 float' in result.stdout and 'greyscale->RGB' not in result.stdout, result.stdout
    images = load(tmp_path / 'out.zip')[1]
    assert images.shape[1] == 1, 'float images are greyscale'
    expected = np.rint(unit * 255).astype(np.uint8)
    np.testing.assert_array_equal(images[0][0], expected)
    assert np.abs(images[1][0].astype(int) - expected).max() <= 1
    save(f'{tmp_path}/src/c_negative.tif', PIL.Image.fromarray(unit - 1, mode='F'))
    fails('--source', tmp_path / 'src', '--dest', tmp_path / 'out2.zip', '--strict', match='c_negative.tif')

def test_zip_entries_with_absolute_or_parent_names_are_refused(tmp_path):
    png = io.BytesIO()
    PIL.Image.fromarray(noise((16, 16))).save(png, format='png')
    for bad in ('/abs/y.png', '../x.png', 'a/../../x.png'):
        path = tmp_path / 'bad.zip'
        with zipfile.ZipFile(path, 'w') as z:
            for i in range(2):
                z.writestr(f'img{i}.png', png.getvalue())
            z.writestr(zipfile.ZipInfo(bad), png.getvalue())
        fails('--source', path, '--dest', tmp_path / 'out.zip', match=f'1 entry has an absolute or ".." name (e.g. "{bad}")')
        with pytest.raises(IOError, match=rf'bad.zip: 1 entry has an absolute or "\.\." name \(e.g. "{re.escape(bad)}"\)'):
            ImageFolderDataset(str(path))
        assert not (tmp_path / 'out.zip').exists()

def test_two_labels_for_one_image_are_refused(tmp_path):
    src = rgb_folder(tmp_path / 'src', count=2)
    (src / 'dataset.json').write_text(json.dumps({'labels': [['img0.png', 0], ['img1.png', 1], ['img0.png', 1]]}))
    fails('--source', src, '--dest', tmp_path / 'out.zip', match='two different labels for "img0.png" (0 and 1)')
    with pytest.raises(ValueError, match=r'two different labels for "img0.png" \(0 and 1\)'):
        ImageFolderDataset(str(src), use_labels=True)
    (src / 'dataset.json').write_text(json.dumps({'labels': [['img0.png', [1.0, float('nan')]], ['img1.png', [0.0, 1e39]]]}))
    with pytest.raises(ValueError, match=r'the label of "img0.png" holds NaN or infinite values'):
        ImageFolderDataset(str(src), use_labels=True)

@pytest.mark.parametrize('dest', ['out.zip', 'outdir'])
def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, dest):
    import errno   # pylint: disable=import-outside-toplevel
    import dataset_tool   # pylint: disable=import-outside-toplevel
    src = rgb_folder(tmp_path / 'src')
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')
    if dest.endswith('.zip'):   # The second image fills the disk; closing the zip then fails too, as it does on a full disk.
        real_writestr = zipfile.ZipFile.writestr
        calls = []
        def writestr(self, *args, **kwargs):
            calls.append(1)
            return full() if len(calls) > 1 else real_writestr(self, *args, **kwargs)
        real_close, closes = zipfile.ZipFile.close, []
        def close(self):    # The first close fails as on a full disk; later ones (the garbage collector's) close for real.
            closes.append(1)
            return full() if len(closes) == 1 else real_close(self)
        monkeypatch.setattr(zipfile.ZipFile, 'writestr', writestr)
        monkeypatch.setattr(zipfile.ZipFile, 'close', close)
    else:
        real_open = open
        monkeypatch.setattr(dataset_tool, 'open', lambda path, mode='r', *a, **k: full() if 'w' in mode else real_open(path, mode, *a, **k), raising=False)
    result = fails('--source', src, '--dest', tmp_path / dest, match=f'--dest {tmp_path / dest}: no space left on the device; the partial output was removed')
    assert 'Traceback' not in result.output
    assert sorted(os.listdir(tmp_path)) == ['src'], 'no output and no temporary file left'
