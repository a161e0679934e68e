"""Seeds, latents and labels (a seed gives the same z whatever the batch), spherical
interpolation of latents, and projector.py's projected codes (projected_w.npz)."""

import zipfile

import numpy as np
import torch

import dnnlib
from torch_utils import misc

#----------------------------------------------------------------------------
# Seeds, latents and labels.

MAX_SEED = 2**32 - 1 # np.random.RandomState accepts seeds in [0, 2**32).
MAX_SEEDS = 10**6    # Seeds in one list (a million images per run; split larger ranges over runs).

def parse_seeds(text: str | list) -> list[int]:
    """'0,3,5-12' -> [0, 3, 5, ..., 12]; ValueError naming the bad part, or the count when it
    is above MAX_SEEDS (checked before the list is built)."""
    seeds = dnnlib.util.parse_int_list(text, max_count=MAX_SEEDS)
    if not seeds:
        raise ValueError('expected at least one seed')
    for seed in seeds:
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f'seed {seed} is out of range (expected 0..{MAX_SEED})')
    return seeds

def seeds_to_z(seeds: list[int], z_dim: int, device: str | torch.device = 'cpu') -> torch.Tensor:
    """[len(seeds), z_dim] float32: row i is np.random.RandomState(seeds[i]).randn(z_dim)."""
    z = np.stack([np.random.RandomState(seed).randn(z_dim) for seed in seeds])
    return torch.from_numpy(z).to(device=device, dtype=torch.float32)

def make_labels(G: torch.nn.Module, class_idx: int | None, num: int, device: str | torch.device = 'cpu') -> torch.Tensor:
    """One-hot labels [num, c_dim] for a conditional G; [num, 0] for an unconditional one."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError(f'class {class_idx} given, but the network is unconditional (c_dim=0); leave --class out')
        return torch.zeros([num, 0], device=device)
    if class_idx is None:
        raise ValueError(f'the network is conditional (c_dim={G.c_dim}): give a class in 0..{G.c_dim - 1}')
    if not 0 <= class_idx < G.c_dim:
        raise ValueError(f'class {class_idx} is out of range (the network has c_dim={G.c_dim}: expected 0..{G.c_dim - 1})')
    c = torch.zeros([num, G.c_dim], device=device)
    c[:, class_idx] = 1
    return c

#----------------------------------------------------------------------------
# Interpolating latents.

def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the great circle between the directions of a and b
    (rows of [..., D]); slerp(a, b, 0) = a, slerp(a, b, 1) = b. Falls back to lerp for
    (anti)parallel rows, where the great circle is undefined or degenerate."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    cos = ((a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)).clamp_min(1e-30)).clamp(-1, 1)
    theta = torch.arccos(cos)
    sin = torch.sin(theta)
    safe = sin > 1e-6
    sin_safe = torch.where(safe, sin, torch.ones_like(sin))
    spherical = torch.sin((1 - t) * theta) / sin_safe * a + torch.sin(t * theta) / sin_safe * b
    return torch.where(safe, spherical, torch.lerp(a, b, t))

#----------------------------------------------------------------------------
# Projected codes: projector.py's projected_w.npz, read by generate.py --projected-w. Key 'w'
# holds ws [N, num_ws, w_dim] float32 as upstream StyleGAN2-ADA; keys 'noise:NAME' hold the
# optimised constant noise maps (buffers G.synthesis.NAME) of generators that have them, so
# that the codes synthesise exactly the projected image (upstream keeps only 'w').

NOISE_KEY_PREFIX = 'noise:'

def noise_buffers(G: torch.nn.Module) -> dict[str, torch.Tensor]:
    """G.synthesis's constant noise maps by buffer name (see networks/__init__.py); {} if none."""
    return {name: buf for name, buf in G.synthesis.named_buffers() if name.endswith('noise_const')}

def save_projected_w(path: str, ws: torch.Tensor, noise: dict[str, torch.Tensor] = {}) -> None:
    arrays = {'w': ws.detach().float().cpu().numpy()}
    arrays.update({NOISE_KEY_PREFIX + name: buf.detach().float().cpu().numpy() for name, buf in noise.items()})
    with open(path, 'wb') as f:
        np.savez(f, **arrays)

def load_projected_w(path: str, G: torch.nn.Module) -> dnnlib.EasyDict:
    """EasyDict(ws [N, num_ws, w_dim] float32 on G's device, noise {buffer name: map}) from a
    projected_w.npz, checked against G; every problem is a one-line ValueError naming the file."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f'"{path}": a single array ({type(loaded).__name__}, e.g. a .npy file); expected projector.py\'s '
                             'projected_w.npz, an .npz archive holding "w"')
        with loaded as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ValueError(f'"{path}": no such file') from None
    except IsADirectoryError:
        raise ValueError(f'"{path}": is a directory, expected projector.py\'s projected_w.npz') from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        if str(err).startswith(f'"{path}"'):
            raise
        # numpy's own message on object arrays advises allow_pickle=True, which would run code from the file.
        reason = 'it holds Python objects, which are never loaded' if 'allow_pickle' in str(err) else ' '.join(str(err).split())[:200]
        raise ValueError(f'"{path}": not a readable .npz file ({reason})') from None
    if 'w' not in arrays:
        raise ValueError(f'"{path}" holds no array "w" (keys: {", ".join(sorted(arrays)) or "none"}); expected projector.py\'s projected_w.npz')
    ws = arrays.pop('w')
    if ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim) or ws.shape[0] < 1 or not np.issubdtype(ws.dtype, np.floating):
        raise ValueError(f'"{path}": w has shape {list(ws.shape)} ({ws.dtype}); this network takes [N, num_ws, w_dim] = '
                         f'[N, {G.num_ws}, {G.w_dim}] floats')
    buffers = noise_buffers(G)
    noise = {}
    for key, value in arrays.items():
        name = key[len(NOISE_KEY_PREFIX):]
        if not key.startswith(NOISE_KEY_PREFIX) or name not in buffers or value.shape != tuple(buffers[name].shape):
            raise ValueError(f'"{path}": array "{key}" {list(value.shape)} matches no noise map of this network')
        noise[name] = torch.from_numpy(value).to(buffers[name])
    device = misc.device_of(G)
    return dnnlib.EasyDict(ws=torch.from_numpy(ws).to(device=device, dtype=torch.float32), noise=noise)

@torch.no_grad()
def set_noise_buffers(G: torch.nn.Module, noise: dict[str, torch.Tensor]) -> None:
    """Copy noise maps {buffer name: map} (from load_projected_w) into G.synthesis's buffers."""
    buffers = noise_buffers(G)
    for name, value in noise.items():
        buffers[name].copy_(value)

#----------------------------------------------------------------------------
