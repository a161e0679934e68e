"""Small stand-ins used by the metric tests: an image-folder dataset with the
training.dataset.ImageFolderDataset interface, a tiny generator honouring the generator
contract, and writers for image folders made from Fashion-MNIST or random blobs."""

import gzip
import os

import numpy as np
import PIL.Image
import torch

FASHION_MNIST = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'

#----------------------------------------------------------------------------

def fashion_mnist(num_images: int) -> np.ndarray | None:
    """The first `num_images` test images of Fashion-MNIST as uint8 [N, 28, 28], or None."""
    if not os.path.isfile(FASHION_MNIST):
        return None
    with gzip.open(FASHION_MNIST, 'rb') as f:
        data = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return data.reshape(-1, 28, 28)[:num_images].copy()

def blob_images(num_images: int, resolution: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth random images uint8 [N, H, W, C] (upsampled noise), a stand-in for real data."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=[num_images, channels, 4, 4]).astype(np.float32)
    big = torch.nn.functional.interpolate(torch.as_tensor(small), size=(resolution, resolution), mode='bilinear', align_corners=False)
    return big.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

def write_folder(path: str, images: np.ndarray) -> str:
    """Write uint8 [N, H, W] or [N, H, W, C] images as PNGs named 00000.png, ..."""
    os.makedirs(path, exist_ok=True)
    for idx, img in enumerate(images):
        PIL.Image.fromarray(img.squeeze()).save(os.path.join(path, f'{idx:05d}.png'))
    return path

#----------------------------------------------------------------------------

class FolderDataset(torch.utils.data.Dataset):
    """The PNGs of a folder in sorted order, with the ImageFolderDataset interface."""
    def __init__(self, path, resolution=None, use_labels=False, xflip=False, max_size=None, random_seed=0, label_dim=0):
        if not os.path.isdir(path):
            raise IOError(f'{path}: no such directory')
        self.path = path
        self.fnames = sorted(f for f in os.listdir(path) if f.endswith('.png'))[:max_size]
        self.name = os.path.basename(os.path.normpath(path))
        self._label_dim = label_dim if use_labels else 0
        first = self[0][0]
        self.num_channels, self.resolution = first.shape[0], first.shape[1]
        self.image_shape = list(first.shape)

    def __len__(self):
        return len(self.fnames)

    def __getitem__(self, idx):
        img = np.array(PIL.Image.open(os.path.join(self.path, self.fnames[idx])))
        img = img[:, :, None] if img.ndim == 2 else img
        return img.transpose(2, 0, 1).copy(), self.get_label(idx)

    def get_label(self, idx):
        label = np.zeros([self._label_dim], dtype=np.float32)
        if self._label_dim:
            label[idx % self._label_dim] = 1
        return label

    @property
    def label_dim(self):
        return self._label_dim

    @property
    def has_labels(self):
        return self._label_dim > 0

#----------------------------------------------------------------------------

class TinyMapping(torch.nn.Module):
    """w = [z, c], one w per image."""
    def __init__(self, w_dim):
        super().__init__()
        self.num_ws = 1
        self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        c = torch.zeros([z.shape[0], 0], device=z.device) if c is None else c
        return torch.cat([z, c], dim=1)[:, None, :]

class TinySynthesis(torch.nn.Module):
    """img = tanh(reshape(A w + b)) plus a `noise_const` buffer added as x + 0.1 * noise."""
    def __init__(self, w_dim, img_resolution, img_channels, seed):
        super().__init__()
        self.img_resolution, self.img_channels = img_resolution, img_channels
        gen = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn([img_channels * img_resolution ** 2, w_dim], generator=gen) * 0.5)
        self.bias = torch.nn.Parameter(torch.randn([img_channels * img_resolution ** 2], generator=gen) * 0.3)
        self.register_buffer('noise_const', torch.zeros([img_resolution, img_resolution]))

    def forward(self, ws, noise_mode='const', **_kwargs):
        x = torch.nn.functional.linear(ws[:, 0], self.weight, self.bias)
        x = x.reshape(-1, self.img_channels, self.img_resolution, self.img_resolution) + 0.1 * self.noise_const
        return torch.tanh(x)

class TinyGenerator(torch.nn.Module):
    """A generator honouring the contract (networks/__init__.py), for metric tests."""
    def __init__(self, z_dim=8, c_dim=0, img_resolution=16, img_channels=3, seed=0):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, z_dim + c_dim, 1
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.mapping = TinyMapping(self.w_dim)
        self.synthesis = TinySynthesis(self.w_dim, img_resolution, img_channels, seed)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **kwargs):
        return self.synthesis(self.mapping(z, c), **kwargs)

#----------------------------------------------------------------------------
