"""The network registry and the generator contract.

Registry
--------
`GENERATORS` maps a user-facing name (what `train.py --gen=NAME` and the presets use) to a
kwargs dict whose `class_name` is a dotted class name plus the family options that make the
named variant. Strings keep `training_options.json` self-describing, and importing the
registry imports no network module. Registering a generator = one entry here (which also
puts its class on the network-file allow-list, `network_classes()`) plus a tiny tester
config in `tests/networks/test_contract.py` (a test fails when one is missing).

Generator contract (every registered generator honours it; `check_generator` asserts it)
------------------------------------------------------------------------------------------
- Constructor keywords `z_dim, c_dim, img_resolution, img_channels` plus family kwargs; the
  same four names are attributes, as are `w_dim` and `num_ws`.
- `G(z, c, truncation_psi=1, truncation_cutoff=None, **kwargs) -> img`: float32 NCHW
  [N, img_channels, img_resolution, img_resolution], values in about [-1, 1]. Sampling
  keywords a family does not use (`noise_mode`, `update_emas`, `force_fp32`) are accepted
  and ignored. With `c_dim == 0`, `c` may be None or an [N, 0] tensor.
- `G.mapping(z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False)`
  -> ws [N, num_ws, w_dim], and `G.synthesis(ws, **kwargs) -> img`, with
  `G(z, c) == G.synthesis(G.mapping(z, c))`. `G.mapping.w_avg` [w_dim] is the running mean
  of w used by truncation; it advances only when `update_emas=True`.
- The loss uses style mixing when `num_ws >= 2` (rows of ws are independent codes) and
  path-length regularisation through ws: both are meaningful for every registered family.
- Painting generators (the FPA family) additionally expose `G.paint(z, c, ...)`, the rank-1
  update frames, partial images and the painter's factors of each step, `G.synthesis_paint(ws)`,
  the same from given codes (projected or style-mixed ws), and `G.display_frames(frames,
  final)`, how those frames are shown (see networks/fpa.py); the painting API
  (painting/paintings.py) needs nothing else.
- Buffers of `G.synthesis` whose names end in `noise_const` are constant noise maps, used
  with `noise_mode='const'`; projector.py optimises them when a generator has them.
- Generators with an input transform (StyleGAN3) have `G.synthesis.input.transform`, a [3, 3]
  float32 buffer holding the inverse of a transform of the output image (identity by
  default), upstream's convention; `set_input_transform` writes it (generate.py --translate,
  --rotate) and refuses, in one line, a generator without one.

Discriminator contract: `D(img, c) -> logits [N, 1]` float32; one StyleGAN2 residual
discriminator serves every generator.
"""

import math

from dnnlib import EasyDict

#----------------------------------------------------------------------------

GENERATORS: dict[str, EasyDict] = {
    # Fast Weight Painters (networks/fpa.py, docs/fpa.md). Defaults = the paper's 64x64 FPA.
    'fpa':         EasyDict(class_name='networks.fpa.Generator', rule='delta', input_generator='v2'),
    'fpa-v1':      EasyDict(class_name='networks.fpa.Generator', rule='delta', input_generator='v1'),
    'fpa-oja':     EasyDict(class_name='networks.fpa.Generator', rule='oja', input_generator='v2', latent_to_init=False, painter_impl='sequential'),
    'fpa-hebbian': EasyDict(class_name='networks.fpa.Generator', rule='hebbian', input_generator='v1', key_softmax=False),
    'fpa-unet':    EasyDict(class_name='networks.fpa.Generator', rule='delta', input_generator='v2', unet_kwargs=dict(dim=64)),
    # StyleGAN2 baseline (networks/stylegan2.py, docs/stylegan2.md); the config builder sets channel_base/channel_max per preset.
    'stylegan2':   EasyDict(class_name='networks.stylegan2.Generator', w_dim=512, mapping_kwargs=dict(num_layers=2)),
    # StyleGAN3 alias-free baselines (networks/stylegan3.py, docs/stylegan3.md): T = 3x3 convolutions and separable
    # filters, R = 1x1 convolutions and radial downsampling filters (the config builder doubles R's capacity, as upstream).
    'stylegan3-t': EasyDict(class_name='networks.stylegan3.Generator', w_dim=512, mapping_kwargs=dict(num_layers=2)),
    'stylegan3-r': EasyDict(class_name='networks.stylegan3.Generator', w_dim=512, mapping_kwargs=dict(num_layers=2), conv_kernel=1, use_radial_filters=True),
}

DISCRIMINATORS: dict[str, EasyDict] = {
    'stylegan2':   EasyDict(class_name='networks.stylegan2.Discriminator', architecture='resnet'),
}

# The other modules that network files store, each built by this name.
UNET_CLASS = 'networks.unet.UNet'                       # FPA/U-Net's image refiner (networks/fpa.py).
AUGMENT_PIPE_CLASS = 'training.augment.AugmentPipe'     # ADA's augmentation pipeline (training/config.py).

def network_classes() -> tuple[str, ...]:
    """Every class a network file may name, from the registries above: the allow-list
    `torch_utils.persistence.NETWORK_CLASSES`. A registered generator is loadable by that alone."""
    registered = {kwargs.class_name for kwargs in (*GENERATORS.values(), *DISCRIMINATORS.values())}
    return tuple(sorted(registered | {UNET_CLASS, AUGMENT_PIPE_CLASS}))

#----------------------------------------------------------------------------

def generator_kwargs(name: str) -> EasyDict:
    """A fresh copy of the registered kwargs for `name`, or a ValueError listing the names."""
    if name not in GENERATORS:
        raise ValueError(f'unknown generator "{name}"; registered: {", ".join(sorted(GENERATORS))}')
    return EasyDict(GENERATORS[name])

def __getattr__(name: str):
    """`networks.load_network`, the one door for network files (networks/loader.py), bound on
    first use: the registry itself imports no network module."""
    if name == 'load_network':
        from networks.loader import load_network    # pylint: disable=import-outside-toplevel
        return load_network
    raise AttributeError(f'module "networks" has no attribute "{name}"')

def check_generator(G) -> None:
    """Assert the static part of the generator contract (attributes and submodules)."""
    for attr in ('z_dim', 'c_dim', 'w_dim', 'num_ws', 'img_resolution', 'img_channels', 'mapping', 'synthesis'):
        if not hasattr(G, attr):
            raise TypeError(f'{type(G).__name__} does not honour the generator contract: no attribute "{attr}"')
    if not hasattr(G.mapping, 'w_avg'):
        raise TypeError(f'{type(G).__name__}.mapping has no w_avg buffer (needed for truncation)')

def image_transform(translate: tuple[float, float] = (0, 0), rotate: float = 0) -> list[list[float]]:
    """The [3, 3] matrix that rotates an image by `rotate` degrees (counterclockwise on screen,
    y pointing down) and then translates it by `translate`, in units of the image width and
    height (StyleGAN3's gen_images.py --rotate, --translate)."""
    c, s = math.cos(math.radians(rotate)), math.sin(math.radians(rotate))
    return [[c, s, float(translate[0])], [-s, c, float(translate[1])], [0.0, 0.0, 1.0]]

def set_input_transform(G, translate: tuple[float, float] = (0, 0), rotate: float = 0) -> None:
    """Make G draw its images translated and rotated (image_transform), by writing the inverse
    matrix into `G.synthesis.input.transform`; a ValueError of one line for a generator
    without that input transform (StyleGAN2, the FPA)."""
    import torch # pylint: disable=import-outside-toplevel
    transform = getattr(getattr(getattr(G, 'synthesis', None), 'input', None), 'transform', None)
    if not isinstance(transform, torch.Tensor) or transform.shape != (3, 3):
        raise ValueError(f'the generator ({type(G).__module__}.{type(G).__name__}) has no input transform '
                         '(G.synthesis.input.transform); only StyleGAN3 generators can be translated or rotated')
    with torch.no_grad():
        transform.copy_(torch.linalg.inv(torch.tensor(image_transform(translate, rotate), dtype=torch.float64)))
