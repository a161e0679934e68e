"""Fixtures for the training tests: tiny image folders. (The one-CPU-thread-per-test-process
fixture that every test uses is in tests/conftest.py.)"""

import numpy as np
import PIL.Image
import pytest


def make_image_folder(path, num_images=12, resolution=16, channels=3, seed=0):
    """A folder of random-blob PNGs (smooth enough that D has something to learn)."""
    path.mkdir(parents=True, exist_ok=True)
    rnd = np.random.RandomState(seed)
    for i in range(num_images):
        small = rnd.randint(0, 256, [4, 4, channels], dtype=np.uint8)
        img = PIL.Image.fromarray(small[:, :, 0] if channels == 1 else small).resize([resolution, resolution], PIL.Image.BILINEAR)
        img.save(path / f'img{i:04d}.png')
    return str(path)

@pytest.fixture
def image_folder(tmp_path):
    return make_image_folder(tmp_path / 'data')
