"""One door for network files: `networks.load_network(path_or_url)`, defined here.

Every script, the training loop (`--resume=NETWORK`), legacy.load_network_pkl and the
painting API call this function directly. It takes
  - a network file of this codebase (torch_utils/persistence.py: class names, constructor
    arguments and tensors, read with torch.load(weights_only=True));
  - a checkpoint of the FPA authors' reference implementation (networks/reference.py,
    converted into networks.fpa.Generator on the fly);
  - a StyleGAN2-ADA or StyleGAN3 network pickle (networks/upstream.py, read as data by
    torch_utils/safe_pickle.py and rebuilt from our StyleGAN2 / StyleGAN3 classes);
from a path, a file:// or http(s):// URL (downloads are cached by dnnlib.util.open_url), one of
upstream's named transfer-learning sources (UPSTREAM_NETWORKS), or a binary file object. No
code from the file is ever executed, and no name in it is resolved to anything callable
except through the allow-lists of those modules. Every failure is a ValueError of one line
naming the file.
"""

import os
from typing import Any

import torch

import dnnlib
from networks import reference, upstream
from torch_utils import persistence, safe_pickle

# StyleGAN2-ADA's named transfer-learning sources (its train.py --resume), same URLs.
_UPSTREAM_CDN = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets'
UPSTREAM_NETWORKS = {
    'ffhq256':     f'{_UPSTREAM_CDN}/ffhq-res256-mirror-paper256-noaug.pkl',
    'ffhq512':     f'{_UPSTREAM_CDN}/ffhq-res512-mirror-stylegan2-noaug.pkl',
    'ffhq1024':    f'{_UPSTREAM_CDN}/ffhq-res1024-mirror-stylegan2-noaug.pkl',
    'celebahq256': f'{_UPSTREAM_CDN}/celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl',
    'lsundog256':  f'{_UPSTREAM_CDN}/lsundog-res256-paper256-kimg100000-noaug.pkl',
}
# StyleGAN3's pretrained networks, by their file names (its README and gen_images.py), same URLs.
_STYLEGAN3_CDN = 'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files'
UPSTREAM_NETWORKS.update({name: f'{_STYLEGAN3_CDN}/{name}' for name in (
    f'stylegan3-{cfg}-{data}.pkl' for cfg in ('t', 'r') for data in (
        'ffhq-1024x1024', 'ffhqu-1024x1024', 'ffhqu-256x256', 'metfaces-1024x1024', 'metfacesu-1024x1024', 'afhqv2-512x512'))})

# The first object of a torch file in the pre-1.6 (non-zip) format.
_LEGACY_TORCH_MAGIC = 0x1950a86a20f9469cfc6c

#----------------------------------------------------------------------------

def _is_named(source: str) -> bool:
    """One of upstream's names, and no local file of that name (which wins: StyleGAN3's names
    are file names a user may hold)."""
    return source in UPSTREAM_NETWORKS and not os.path.isfile(source)

def is_remote_source(source: str) -> bool:
    """A URL or one of upstream's named networks (not a local path)."""
    return _is_named(source) or dnnlib.util.is_url(source, allow_file_urls=True)

def resolve_source(source: str) -> str:
    """A named upstream source -> its URL; anything else unchanged."""
    return UPSTREAM_NETWORKS[source] if _is_named(source) else source

def read_source(source: Any) -> tuple[bytes, str]:
    """(bytes, name for messages) of a path, URL, named source or binary file object."""
    if isinstance(source, (str, os.PathLike)):
        source = resolve_source(os.fspath(source))
        try:
            with dnnlib.util.open_url(source, verbose=False) as f:
                return f.read(), source
        except (OSError, IOError) as err:
            message = ' '.join(str(err).split()) or type(err).__name__
            raise ValueError(message if source in message else f'{source}: {message}') from None
    if not hasattr(source, 'read'):
        raise ValueError(f'load_network: expected a path, URL or binary file object, got {type(source).__name__}')
    data = source.read()
    where = getattr(source, 'name', 'network file')
    if not isinstance(data, bytes):
        raise ValueError(f'{where}: expected a binary file object (opened with "rb")')
    return data, where

def _describe(obj: Any) -> str:
    if isinstance(obj, dict):
        keys = ', '.join(map(str, list(obj)[:6]))
        return f'a dict with keys {keys}' if keys else 'an empty dict'
    return f'a {type(obj).__name__}'

def check_finite_modules(modules: dict, where: str) -> None:
    """Refuse modules whose floating-point parameters or buffers hold NaN or infinity (they
    would draw black images without a word), naming the first such tensor."""
    for entry, module in modules.items():
        if isinstance(module, torch.nn.Module):
            for name, tensor in module.state_dict().items():
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise ValueError(f'{where}: {entry}.{name} holds NaN or infinite values')

# Keyword options of reference.convert_reference_checkpoint that load_network passes on.
CONVERT_OPTIONS = ('model_type', 'num_steps', 'img_resolution', 'img_channels', 'key_softmax', 'out_tanh', 'input_tanh',
                   'value_tanh', 'raw_lr', 'unet_input_tanh')

def load_network(source: Any, **convert_options) -> dnnlib.EasyDict:
    """Load any supported network file (see the module docstring). Returns an EasyDict with
    G_ema and, where the file has them, G, D, augment_pipe, training_set_kwargs, and
    `legacy_source` / `upstream_source` describing a converted file. `convert_options` apply
    to reference FPA checkpoints only (networks.reference.convert_reference_checkpoint).
    Every failure is a ValueError of one line naming the file; modules with non-finite tensors
    are refused (check_finite_modules)."""
    unknown = sorted(set(convert_options) - set(CONVERT_OPTIONS))
    if unknown:
        raise ValueError(f'load_network: unknown option {unknown[0]!r} (options: {", ".join(CONVERT_OPTIONS)})')
    data, where = read_source(source)
    try:
        result = _convert(data, where, **convert_options)
        check_finite_modules(result, where)
        return result
    except ValueError as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(message if where in message else f'{where}: {message}') from None
    except Exception as err: # A converter may fail in ways of its own; the user still gets one line.
        raise ValueError(f'{where}: cannot load the network ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""})') from None

def _convert(data: bytes, where: str, **convert_options) -> dnnlib.EasyDict:
    if not data:
        raise ValueError(f'{where}: empty file')
    if safe_pickle.is_zip(data):
        obj = safe_pickle.safe_torch_load(data, where)
    else:
        obj = safe_pickle.safe_pickle_load(data, where)
        if isinstance(obj, int) and obj == _LEGACY_TORCH_MAGIC:
            obj = safe_pickle.safe_torch_load(data, where)

    if persistence.is_network_data(obj) or upstream.is_upstream_network(obj):
        if convert_options:
            raise ValueError(f'{where}: conversion options apply only to reference FPA checkpoints')
        result = persistence.network_from_data(obj, where) if persistence.is_network_data(obj) else upstream.convert_upstream_network(obj, where)
        if result.get('G_ema') is None:
            raise ValueError(f'{where}: network file has no G_ema')
        return result
    if isinstance(obj, dict) and 'GAN' in obj:
        return reference.convert_reference_checkpoint(obj, where=where, **convert_options)

    if isinstance(obj, dict) and obj.get('format') == 'fpa-gan-resume':
        raise ValueError(f'{where}: a resume checkpoint of train.py, not a network file (train.py --resume takes it under its '
                         'own name, resume-KKKKKK.pt; the network of the same moment is the network-snapshot-KKKKKK.pkl beside it)')
    unknown = safe_pickle.unknown_names(obj)
    if any(name.startswith('dnnlib.tflib') for name in unknown):
        raise ValueError(f'{where}: a TensorFlow-era StyleGAN pickle ({", ".join(sorted(unknown)[:2])}) is not supported; '
                         'convert it to a PyTorch pickle with stylegan2-ada-pytorch\'s legacy.py first')
    found = f'classes {", ".join(sorted(unknown)[:3])}' if unknown else _describe(obj)
    raise ValueError(f'{where}: not a network file (neither of this codebase, a reference FPA checkpoint, '
                     f'nor a StyleGAN2-ADA/StyleGAN3 network pickle; found {found})')

#----------------------------------------------------------------------------
