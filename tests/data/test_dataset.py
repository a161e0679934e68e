"""ImageFolderDataset (directory and zip, labels, x-flip, subsets, worker safety) and InfiniteSampler."""

import json
import os
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

from training.dataset import ImageFolderDataset, InfiniteSampler

#----------------------------------------------------------------------------

def write_images(root, num_images=6, size=16, mode='RGB', labels=None, seed=0):
    """PNG files img{i}.png (some in a subfolder) with random pixels; returns the arrays [C,H,W]."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, 'sub'), exist_ok=True)
    arrays, entries = [], []
    for i in range(num_images):
        relpath = f'img{i}.png' if i % 2 == 0 else f'sub/img{i}.png'
        shape = (size, size) if mode == 'L' else (size, size, 3)
        array = rng.integers(0, 256, shape, dtype=np.uint8)
        PIL.Image.fromarray(array).save(os.path.join(root, relpath))
        arrays.append((relpath, array[np.newaxis] if mode == 'L' else array.transpose(2, 0, 1)))
        if labels is not None:
            entries.append([relpath, labels[i]])
    if labels is not None:
        with open(os.path.join(root, 'dataset.json'), 'w') as f:
            json.dump({'labels': entries}, f)
    return [array for _relpath, array in sorted(arrays)]  # The dataset sorts by relative path.

def zip_folder(root, zip_path):
    with zipfile.ZipFile(zip_path, 'w') as z:
        for dirpath, _dirs, files in os.walk(root):
            for fname in files:
                full = os.path.join(dirpath, fname)
                z.write(full, os.path.relpath(full, root))
    return zip_path

@pytest.fixture
def labelled(tmp_path):
    root = tmp_path / 'faces'
    arrays = write_images(str(root), labels=[0, 2, 1, 2, 0, 1])
    return str(root), arrays

#----------------------------------------------------------------------------

def test_directory_and_zip_agree(labelled, tmp_path):
    root, arrays = labelled
    zip_path = zip_folder(root, str(tmp_path / 'faces.zip'))
    for path in (root, zip_path):
        ds = ImageFolderDataset(path)
        assert ds.name == 'faces'
        assert len(ds) == 6 and ds.image_shape == [3, 16, 16] and ds.resolution == 16 and ds.num_channels == 3
        assert not ds.has_labels and ds.label_dim == 0
        for i in range(6):
            image, label = ds[i]
            assert image.dtype == np.uint8 and label.shape == (0,) and label.dtype == np.float32
            np.testing.assert_array_equal(image, arrays[i])

def test_int_labels_one_hot(labelled):
    root, _ = labelled
    ds = ImageFolderDataset(root, use_labels=True)
    assert ds.has_labels and ds.label_shape == [3]
    classes = [int(np.argmax(ds.get_label(i))) for i in range(6)]
    # Sorted paths: img0, img2, img4, sub/img1, sub/img3, sub/img5 -> labels 0, 1, 0, 2, 2, 1.
    assert classes == [0, 1, 0, 2, 2, 1]
    for i in range(6):
        label = ds[i][1]
        assert label.dtype == np.float32 and label.sum() == 1 and set(label.tolist()) <= {0.0, 1.0}

def test_float_vector_labels(tmp_path):
    vectors = [[0.5 * i, -1.0, float(i)] for i in range(4)]
    write_images(str(tmp_path / 'd'), num_images=4, labels=vectors)
    ds = ImageFolderDataset(str(tmp_path / 'd'), use_labels=True)
    assert ds.label_shape == [3]
    np.testing.assert_array_equal(ds.get_label(0), np.array([0, -1, 0], dtype=np.float32))  # img0
    np.testing.assert_array_equal(ds.get_label(2), np.array([0.5, -1, 1], dtype=np.float32))  # sub/img1

def test_label_errors(tmp_path):
    write_images(str(tmp_path / 'nolabels'), num_images=2)
    with pytest.raises(ValueError, match='no labels'):
        ImageFolderDataset(str(tmp_path / 'nolabels'), use_labels=True)
    write_images(str(tmp_path / 'partial'), num_images=3, labels=[0, 1, 2])
    with open(tmp_path / 'partial' / 'dataset.json', 'w') as f:
        json.dump({'labels': [['img0.png', 1]]}, f)
    with pytest.raises(ValueError, match='no label for 2 image'):
        ImageFolderDataset(str(tmp_path / 'partial'), use_labels=True)
    with open(tmp_path / 'partial' / 'dataset.json', 'w') as f:
        json.dump({'labels': [['img0.png', 1], ['img2.png', [1.0]], ['sub/img1.png', 0]]}, f)
    with pytest.raises(ValueError, match='integer class or a list'):
        ImageFolderDataset(str(tmp_path / 'partial'), use_labels=True)
    # Without use_labels, labels are not even parsed.
    assert ImageFolderDataset(str(tmp_path / 'partial')).label_dim == 0

def test_xflip_doubles(labelled):
    root, arrays = labelled
    ds = ImageFolderDataset(root, xflip=True, use_labels=True)
    assert len(ds) == 12
    for i in range(6):
        np.testing.assert_array_equal(ds[i][0], arrays[i])
        np.testing.assert_array_equal(ds[i + 6][0], arrays[i][:, :, ::-1])
        np.testing.assert_array_equal(ds[i + 6][1], ds[i][1])
        assert ds.get_details(i + 6).xflip and not ds.get_details(i).xflip

def test_max_size_subset_deterministic(tmp_path):
    arrays = write_images(str(tmp_path / 'd'), num_images=10)
    def subset(seed):
        ds = ImageFolderDataset(str(tmp_path / 'd'), max_size=4, random_seed=seed)
        assert len(ds) == 4
        return [ds.get_details(i).raw_idx for i in range(4)]
    assert subset(0) == subset(0)
    assert subset(0) == sorted(subset(0)) and len(set(subset(0))) == 4
    assert any(subset(s) != subset(0) for s in (1, 2, 3))
    ds = ImageFolderDataset(str(tmp_path / 'd'), max_size=4, random_seed=0, xflip=True)
    assert len(ds) == 8
    for i in range(4):
        np.testing.assert_array_equal(ds[i][0], arrays[ds.get_details(i).raw_idx])
    assert len(ImageFolderDataset(str(tmp_path / 'd'), max_size=50)) == 10

def test_shape_checks_and_errors(tmp_path):
    write_images(str(tmp_path / 'd'), num_images=2, size=16)
    with pytest.raises(ValueError, match='resolution=32'):
        ImageFolderDataset(str(tmp_path / 'd'), resolution=32)
    assert ImageFolderDataset(str(tmp_path / 'd'), resolution=16).resolution == 16
    os.makedirs(tmp_path / 'wide')
    PIL.Image.new('RGB', (32, 16)).save(tmp_path / 'wide' / 'a.png')
    with pytest.raises(ValueError, match='square'):
        ImageFolderDataset(str(tmp_path / 'wide'))
    os.makedirs(tmp_path / 'empty')
    (tmp_path / 'empty' / 'notes.txt').write_text('hello')
    with pytest.raises(IOError, match='no image files'):
        ImageFolderDataset(str(tmp_path / 'empty'))
    with pytest.raises(IOError, match='not found'):
        ImageFolderDataset(str(tmp_path / 'missing.zip'))
    (tmp_path / 'fake.zip').write_bytes(b'not a zip')
    with pytest.raises(IOError, match='not a directory or a zip'):
        ImageFolderDataset(str(tmp_path / 'fake.zip'))
    # Mixed sizes: found when the odd image is read, naming it.
    PIL.Image.new('RGB', (8, 8)).save(tmp_path / 'd' / 'zz.png')
    ds = ImageFolderDataset(str(tmp_path / 'd'))
    with pytest.raises(IOError, match='zz.png'):
        ds[len(ds) - 1]

def test_greyscale_jpeg_and_hidden_files(tmp_path):
    root = tmp_path / 'g'
    arrays = write_images(str(root), num_images=2, mode='L')
    assert ImageFolderDataset(str(root)).image_shape == [1, 16, 16]
    np.testing.assert_array_equal(ImageFolderDataset(str(root))[0][0], arrays[0])
    os.makedirs(tmp_path / 'j' / '__MACOSX')
    rgb = np.full((16, 16, 3), [200, 40, 90], dtype=np.uint8)
    PIL.Image.fromarray(rgb).save(tmp_path / 'j' / 'a.jpg', quality=95)
    (tmp_path / 'j' / '._a.jpg').write_bytes(b'resource fork')
    (tmp_path / 'j' / '__MACOSX' / 'a.jpg').write_bytes(b'resource fork')
    ds = ImageFolderDataset(str(tmp_path / 'j'))
    assert len(ds) == 1
    assert np.abs(ds.load_raw_image(0).astype(int) - rgb.transpose(2, 0, 1)).max() <= 3  # JPEG at quality 95.

def test_zip_with_dataloader_workers(labelled, tmp_path):
    root, arrays = labelled
    ds = ImageFolderDataset(zip_folder(root, str(tmp_path / 'faces.zip')), use_labels=True)
    ds[0]  # Open the zip in this process first: forked workers must not share the handle.
    assert ds._zipfile is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._zipfile is None
    np.testing.assert_array_equal(clone[3][0], arrays[3])
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    images = torch.cat([images for images, _labels in loader])
    assert images.dtype == torch.uint8
    np.testing.assert_array_equal(images.numpy(), np.stack(arrays))

#----------------------------------------------------------------------------

def take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]

def test_sampler_is_seeded_shuffled_and_covers_the_data():
    data = list(range(50))
    stream = take(InfiniteSampler(data, seed=3), 200)
    for p in range(4):   # Every pass is a permutation, each with its own order.
        assert sorted(stream[50 * p : 50 * p + 50]) == data
    assert stream[:50] != data and stream[:50] != stream[50:100]
    assert take(InfiniteSampler(data, seed=3), 200) == stream
    assert take(InfiniteSampler(data, seed=4), 50) != stream[:50]
    assert take(InfiniteSampler(data, shuffle=False), 120) == [i % 50 for i in range(120)]

def test_sampler_sharding_interleaves_the_global_stream():
    data = list(range(37))
    stream = take(InfiniteSampler(data, seed=1), 3 * 100)
    shards = [take(InfiniteSampler(data, rank=r, num_replicas=3, seed=1), 100) for r in range(3)]
    for r in range(3):
        assert shards[r] == stream[r::3]

@pytest.mark.parametrize('num_replicas,rank', [(1, 0), (2, 1), (3, 0)])
def test_sampler_restart_continues_the_stream(num_replicas, rank):
    data = list(range(23))
    full = take(InfiniteSampler(data, rank=rank, num_replicas=num_replicas, seed=7), 9000)
    for start_idx in (1, 22, 23, 4095, 5000):  # Within a pass and at a pass boundary.
        resumed = take(InfiniteSampler(data, rank=rank, num_replicas=num_replicas, seed=7, start_idx=start_idx), 500)
        assert resumed == full[start_idx:start_idx + 500]

def test_sampler_position_restores_in_constant_time():
    data = list(range(23))
    start_idx = 10 ** 15     # A resume checkpoint's batch index can be anything: no replay up to it.
    sampler = InfiniteSampler(data, rank=1, num_replicas=2, seed=7, start_idx=start_idx)
    global_idx = start_idx * 2 + 1
    first = take(sampler, 3)
    orders = {p: sampler.pass_order(p) for p in range(global_idx // 23, (global_idx + 4) // 23 + 1)}
    assert first == [orders[(global_idx + 2 * k) // 23][(global_idx + 2 * k) % 23] for k in range(3)]

def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match='rank'):
        InfiniteSampler(list(range(3)), rank=2, num_replicas=2)
    with pytest.raises(ValueError, match='empty'):
        InfiniteSampler([])

#----------------------------------------------------------------------------

def test_items_are_writable_arrays(tmp_path):
    # torch.as_tensor warns on read-only arrays (DataLoader collation): items must be writable.
    folder = tmp_path / 'imgs'
    folder.mkdir()
    for i in range(2):
        PIL.Image.fromarray(np.full([8, 8, 3], 40 * i, dtype=np.uint8)).save(folder / f'{i}.png')
    ds = ImageFolderDataset(str(folder), xflip=True)
    for idx in range(len(ds)):
        image, _ = ds[idx]
        assert image.flags.writeable and image.flags.c_contiguous
