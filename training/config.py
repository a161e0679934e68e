"""The pure config builder: command-line options + dataset facts -> training_loop kwargs.

`build_training_config(opts, dataset_info)` has no side effects (it opens no file and
touches no device; `device='auto'` only asks torch whether CUDA is available), so every preset, override and validation rule is unit-tested without
launching anything. train.py gathers the options, reads the dataset's facts, calls it,
writes the result to `training_options.json` and hands it to `training_loop(**c)`.

Presets (`--cfg`): the StyleGAN2-ADA tables (Karras et al., "Training Generative Adversarial
Networks with Limited Data", NeurIPS 2020, appendix D / train.py cfg_specs), StyleGAN3's
configurations (Karras et al., "Alias-Free Generative Adversarial Networks", NeurIPS 2021;
its train.py and docs/configs.md) and presets for
the Fast Weight Painter (Irie & Schmidhuber, "Images as Weight Matrices", ICLR 2023) trained
with the same machinery; see PRESETS below and docs/training.md for the reasons behind the
FPA hyperparameters. `--gen=NAME` swaps in any registered generator: family-specific
generator options of a preset are keyed by class name, so they reach only that family.
"""

import math
import os

import torch

import dnnlib
import networks
from torch_utils import misc
from training import checkpoint

#----------------------------------------------------------------------------
# Presets. Columns as upstream: ref_gpus = GPUs the values were tuned for (batch_gpu =
# mb / ref_gpus, None = --gpus), kimg = training length, mb = total batch, mbstd =
# minibatch-std group, fmaps = capacity (channel_base = fmaps * 32768), lrate = Adam lr of G
# and D, gamma = R1 weight, ema = G_ema half-life in kimg, ramp = EMA ramp-up, map =
# StyleGAN2 mapping layers. Values that depend on the resolution or the GPU count are
# functions of (res, gpus).

def _auto_mb(res, gpus):
    return max(min(gpus * min(4096 // res, 32), 64), gpus)

def _per_res_gamma(res, gpus, mb):
    return 0.0002 * res ** 2 / mb                   # StyleGAN2-ADA's rule: gamma ~ resolution^2 / batch.

FPA_BATCH_GPU = 32     # The FPA presets' batch per GPU.
FPA_CPU_BATCH_GPU = 16  # fpa-cpu's (its EMA stays that of FPA_BATCH_GPU: what was measured).
FPA_CPU_GAMMA_32 = 0.5  # fpa-cpu's R1 gamma at 32x32 on one process.

STYLEGAN2_FAMILY = dict(gen='stylegan2', pl_weight=2, style_mixing=0.9, D_architecture='resnet', min_res=8, max_res=1024)

# StyleGAN3's train.py: --batch=32 in every configuration it recommends (docs/configs.md),
# split evenly over the GPUs; --gamma required (it depends on the dataset: about 2 at 256x256,
# times 4 per doubling of the resolution); 2 mapping layers; capacity 32768/512 (R doubles G's
# only); G lr 0.0025, D lr 0.002; EMA half-life batch * 10/32 kimg with ramp-up 0.05; no
# style mixing, no path length; the G options and R's blur that depend on the batch are set
# by the builder (stylegan3_batch_options).
STYLEGAN3_FAMILY = dict(ref_gpus=None, kimg=25000, mb=32, mbstd=4, fmaps=1, lrate=0.0025, dlrate=0.002, gamma=None,
                        ema=None, ramp=0.05, map=2, pl_weight=0, style_mixing=0, D_architecture='resnet', min_res=16, max_res=1024)

PRESETS = {
    'auto': lambda res, gpus: dict(STYLEGAN2_FAMILY, ref_gpus=gpus, kimg=25000, mb=_auto_mb(res, gpus),
        mbstd=min(_auto_mb(res, gpus) // gpus, 4), fmaps=1 if res >= 512 else 0.5, lrate=0.002 if res >= 1024 else 0.0025,
        gamma=_per_res_gamma(res, gpus, _auto_mb(res, gpus)), ema=_auto_mb(res, gpus) * 10 / 32, ramp=0.05, map=2),
    'stylegan2': dict(STYLEGAN2_FAMILY, ref_gpus=8, kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=10,   ema=10,  ramp=None, map=8),
    'paper256':  dict(STYLEGAN2_FAMILY, ref_gpus=8, kimg=25000,  mb=64, mbstd=8,  fmaps=0.5, lrate=0.0025, gamma=1,    ema=20,  ramp=None, map=8),
    'paper512':  dict(STYLEGAN2_FAMILY, ref_gpus=8, kimg=25000,  mb=64, mbstd=8,  fmaps=1,   lrate=0.0025, gamma=0.5,  ema=20,  ramp=None, map=8),
    'paper1024': dict(STYLEGAN2_FAMILY, ref_gpus=8, kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=2,    ema=10,  ramp=None, map=8),
    'cifar':     dict(STYLEGAN2_FAMILY, ref_gpus=2, kimg=100000, mb=64, mbstd=32, fmaps=1,   lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2,
                      pl_weight=0, style_mixing=0, D_architecture='orig'),
    # The FPA with the StyleGAN2-ADA machinery (StyleGAN2 residual D, logistic loss, lazy R1, ADA).
    # Our choices, with reasons (docs/training.md has the long form):
    # - batch 32 per GPU (the paper used 20 on one): a multiple of the mbstd group 4, as
    #   StyleGAN2 at 64x64; like 'auto', the per-GPU batch is fixed and the total grows with
    #   --gpus (ref_gpus=None), and gamma and the EMA follow the total batch by auto's rules;
    # - Adam lr 0.0025 and betas (0, 0.99) for G and D: the values StyleGAN2-ADA tuned for this
    #   discriminator and loss at <= 256 px (the paper's 2e-4 / (0.5, 0.9) went with a hinge loss
    #   and a LightweightGAN discriminator, which this codebase does not use);
    # - gamma = 0.0002 res^2 / batch, EMA half-life batch * 10/32
    #   kimg with ramp-up 0.05, D capacity 0.5: the 'auto' rules, which are tuned for small datasets;
    # - pl_weight 0: path lengths need a double backward through the LSTM, which cuDNN does not
    #   provide on CUDA and which slows every G step on a CPU; the paper trained without;
    # - style_mixing 0: the paper trained without; mixing painting steps stays available
    #   (the loss supports it for num_ws >= 2) but is not the default until measured;
    # - resolutions 8..256: at N > 2T the image's rank (at most T = 64 strokes) limits detail.
    'fpa': lambda res, gpus: dict(gen='fpa', ref_gpus=None, kimg=10000, mb=FPA_BATCH_GPU * gpus, mbstd=4, fmaps=0.5, lrate=0.0025,
        gamma=_per_res_gamma(res, gpus, FPA_BATCH_GPU * gpus), ema=FPA_BATCH_GPU * gpus * 10 / 32, ramp=0.05, map=2,
        pl_weight=0, style_mixing=0, D_architecture='resnet', min_res=8, max_res=256),
    # FPA/U-Net trained jointly from scratch; with --resume=FPA.pkl --freeze-fpa the two-stage recipe of the paper.
    'fpa-unet': lambda res, gpus: dict(PRESETS['fpa'](res, gpus), gen='fpa-unet'),
    # The FPA scaled down for a CPU (the demo): T = 32 steps (full rank at 32x32), LSTM 256,
    # d_in 64, and a narrow D (channel_base 1024, channel_max 128); the paper's configuration
    # costs an order of magnitude more per image. Batch 16 per GPU, with gamma and the EMA kept
    # at the values of 32 per GPU: at equal wall-clock on a CPU it beat 32 on the colour emoji
    # and on Fashion-MNIST, more optimiser steps per minute (docs/results.md, "Presets").
    # T = 64 was worse on the emoji, a vector learning rate no better.
    # R1 gamma 0.5 at 32x32 on one process (auto's rule, res^2 / batch, times 78.125): with
    # auto's 0.0064 the FPA collapsed to a handful of repeated images while StyleGAN2's
    # generator under the same D far less; the stronger penalty made the samples more varied and
    # lowered FID at each of three seeds (docs/results.md, "The FPA's mode collapse").
    'fpa-cpu': lambda res, gpus: dict(PRESETS['fpa'](res, gpus), mb=FPA_CPU_BATCH_GPU * gpus, fmaps=1024 / 32768, cmax=128, max_res=64,
        gamma=FPA_CPU_GAMMA_32 * (res / 32) ** 2 / gpus, fpa_kwargs=dict(num_steps=32, hidden_dim=256, step_input_dim=64)),
    # fpa-cpu plus a U-Net narrowed for a CPU (base width 16, 2 heads of 16 features: 0.5M
    # parameters against 8M, several times faster per step), for the two-stage recipe.
    'fpa-unet-cpu': lambda res, gpus: _merge(PRESETS['fpa-cpu'](res, gpus),
        dict(gen='fpa-unet', fpa_kwargs=dict(unet_kwargs=dict(dim=16, attn_heads=2, attn_head_dim=16)))),
    'stylegan3-t': dict(STYLEGAN3_FAMILY, gen='stylegan3-t'),
    'stylegan3-r': dict(STYLEGAN3_FAMILY, gen='stylegan3-r', G_cbase_mult=2, G_cmax_mult=2, blur_init_sigma=10),
    # StyleGAN3-T scaled down for a CPU, so that a user sees it train here: batch 16 per
    # process, a narrow G (6 layers + ToRGB, channel_base 2048, at most 64 channels, a margin of
    # 4 pixels instead of 10: a third of the pixels at 32x32) and D (channel_base 1024, at most
    # 128), up to 64 px; gamma by StyleGAN3's rule of thumb, 2 * (res / 256)^2.
    'stylegan3-t-cpu': lambda res, gpus: dict(STYLEGAN3_FAMILY, gen='stylegan3-t', mb=16 * gpus, fmaps=1024 / 32768,
        cmax=128, G_cbase_mult=2, G_cmax_mult=0.5, gamma=2 * (res / 256) ** 2, max_res=64, stylegan3_kwargs=dict(num_layers=6, margin_size=4)),
}

# One line per preset for train.py --help.
PRESET_HELP = {
    'auto':      'StyleGAN2, batch and gamma from resolution and --gpus (StyleGAN2-ADA\'s default)',
    'stylegan2': 'StyleGAN2 config F: batch 32, gamma 10, 8 mapping layers (tuned on 8 GPUs)',
    'paper256':  'StyleGAN2-ADA paper, 256x256: batch 64, gamma 1, capacity 0.5 (tuned on 8 GPUs)',
    'paper512':  'StyleGAN2-ADA paper, 512x512: batch 64, gamma 0.5 (tuned on 8 GPUs)',
    'paper1024': 'StyleGAN2-ADA paper, 1024x1024: batch 32, gamma 2 (tuned on 8 GPUs)',
    'cifar':     'StyleGAN2-ADA CIFAR-10: batch 64, gamma 0.01, mbstd group 32, orig D (tuned on 2 GPUs)',
    'fpa':       'Fast Weight Painter, 8-256 px: 32 per GPU, gamma and EMA from the total batch as auto',
    'fpa-unet':  'fpa plus the U-Net refiner (two-stage with --resume=FPA.pkl --freeze-fpa=1)',
    'fpa-cpu':   'fpa scaled down for a CPU (T = 32, LSTM 256, narrow D, batch 16), up to 64 px: the demo\'s',
    'fpa-unet-cpu': 'fpa-cpu plus a narrow U-Net refiner (width 16), for the two-stage recipe on a CPU',
    'stylegan3-t': 'StyleGAN3-T (alias-free, translation): batch 32, --gamma required, as StyleGAN3\'s train.py',
    'stylegan3-r': 'StyleGAN3-R (rotation too): stylegan3-t with 1x1 convs, radial filters, 2x G capacity, blur',
    'stylegan3-t-cpu': 'stylegan3-t scaled down for a CPU (6 layers, narrow G and D, batch 16), up to 64 px',
}

AUG_MODES = ('noaug', 'ada', 'fixed')
FIXED_AUG_P = 0.2      # --aug=fixed without --p (StyleGAN3's default).
AUGPIPES = ('blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc', 'bgcf', 'bgcfn', 'bgcfnc')
PRECISIONS = ('auto', 'fp32', 'bf16', 'fp16')     # 'auto': see default_precision.

# Options of build_training_config and their defaults (None = from the preset): the one home
# of the defaults. train.py's click options map one to one onto these names and take their
# defaults from here (tests/training/test_train_cli.py holds them equal).
DEFAULT_OPTS = dnnlib.EasyDict(
    data=None, cfg='auto', gen=None, gpus=1, batch=None, batch_gpu=None, kimg=None, snap=50, tick=4, metrics=['fid50k_full'],
    seed=0, mirror=False, cond=False, subset=None, gamma=None, aug='ada', p=None, target=None, augpipe='bgc',
    resume=None, freeze_fpa=False, freezed=0, fp32=False, precision='auto', cbase=None, cmax=None, workers=None, device='auto',
    glr=None, dlr=None, map_depth=None, fpa_steps=None, fpa_vector_lr=None, mbstd_group=None, mode_seeking=None, nobench=False, allow_tf32=False, nhwc=False, inception=None, vgg16=None,
)

#----------------------------------------------------------------------------

class ConfigError(ValueError):
    """An invalid combination of options; the message names the option and what is expected."""

def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)

def preset_spec(cfg: str, res: int, gpus: int) -> dnnlib.EasyDict:
    """The preset's values for this resolution and GPU count."""
    _check(cfg in PRESETS, f'--cfg={cfg}: expected one of {", ".join(PRESETS)}')
    spec = PRESETS[cfg]
    return dnnlib.EasyDict(spec(res, gpus) if callable(spec) else spec)

def stylegan3_batch_options(batch: int, blur_init_sigma: float) -> tuple[dict, dict]:
    """StyleGAN3's options that follow the total batch: (G kwargs, loss kwargs). The magnitude
    EMA's half-life is 20k images (beta = 0.5^(batch / 20000)); R's blur of D's inputs fades
    over 200 kimg at batch 32 (batch * 200 / 32)."""
    G = dict(magnitude_ema_beta=0.5 ** (batch / 20000))
    loss = dict(blur_init_sigma=blur_init_sigma, blur_fade_kimg=batch * 200 / 32) if blur_init_sigma else {}
    return G, loss

def family_G_overrides(spec: dnnlib.EasyDict, channel_base: int, channel_max: int, fp16_layers: bool, map_depth: int,
                       nhwc: bool, batch: int) -> dict[str, dict]:
    """Generator options a preset sets per family, keyed by class name: only a generator of
    that class receives them (a swapped-in FPA never sees StyleGAN2's channel_base)."""
    return {
        'networks.stylegan2.Generator': dict(channel_base=channel_base, channel_max=channel_max,
            mapping_kwargs=dict(num_layers=map_depth), num_fp16_res=4 if fp16_layers else 0, conv_clamp=256 if fp16_layers else None,
            **(dict(fp16_channels_last=True) if nhwc else {})),
        'networks.fpa.Generator': dict(spec.get('fpa_kwargs', {})),
        'networks.stylegan3.Generator': dict(channel_base=int(channel_base * spec.get('G_cbase_mult', 1)),
            channel_max=int(channel_max * spec.get('G_cmax_mult', 1)),
            mapping_kwargs=dict(num_layers=map_depth), num_fp16_res=4 if fp16_layers else 0, conv_clamp=256 if fp16_layers else None,
            **stylegan3_batch_options(batch, 0)[0], **spec.get('stylegan3_kwargs', {})),
    }

def _merge(base: dict, overrides: dict) -> dict:
    """Recursive dict update (nested kwargs keep the entries the override does not name)."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out

#----------------------------------------------------------------------------

def default_workers(device: str, gpus: int, cpu_count: int | None) -> int:
    """DataLoader worker processes per training process when --workers is not given.
    On the CPU none: the training process computes on every core, and a worker decoding beside
    it only takes cores from it (bench/bench_data.py on 2 cores: 0 workers load faster than 2;
    bench/results.md). On CUDA upstream's 3, fewer where the cores do not leave one per
    GPU process beside its workers: min(3, cores // gpus - 1), at least 0."""
    if device != 'cuda':
        return 0
    return max(min(3, (cpu_count or 1) // gpus - 1), 0)

def cpu_has_native_bf16() -> bool:
    """Does this CPU compute bfloat16 in hardware (AVX512-BF16 or AMX)? oneDNN's own test."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):     # (A private torch function: absent = no.)
        return False

def default_precision(device: str, fp32: bool) -> str:
    """--precision=auto. On CUDA 'fp32', i.e. upstream's default (fp16 layers in the top four
    resolutions unless --fp32). On a CPU with native bfloat16 'bf16' autocast of the G and D
    passes, the CPU's counterpart of upstream's mixed precision: the whole training step is
    faster than in float32 for fpa-cpu and fpa (bench/bench_training.py, bench/results.md);
    elsewhere, or with --fp32, 'fp32'."""
    return 'bf16' if device == 'cpu' and not fp32 and cpu_has_native_bf16() else 'fp32'

def _batch_sizes(opts: dnnlib.EasyDict, spec: dnnlib.EasyDict) -> tuple[int, int, int]:
    """(total batch, batch per pass and process, minibatch-std group) of the options and preset."""
    batch = opts.batch if opts.batch is not None else spec.mb
    _check(batch >= 1, f'--batch={batch}: expected at least 1')
    _check(batch % opts.gpus == 0, f'--batch={batch} is not divisible by --gpus={opts.gpus}')
    batch_per_gpu = batch // opts.gpus
    if opts.batch_gpu is not None:
        batch_gpu = opts.batch_gpu
    elif opts.batch is None and spec.ref_gpus is not None:
        batch_gpu = min(max(spec.mb // spec.ref_gpus, 1), batch_per_gpu)
    else:
        batch_gpu = batch_per_gpu
    _check(batch_gpu >= 1 and batch_per_gpu % batch_gpu == 0,
           f'--batch-gpu={batch_gpu}: must divide the per-process batch --batch/--gpus = {batch_per_gpu}')
    mbstd = opts.mbstd_group if opts.mbstd_group is not None else spec.mbstd
    _check(mbstd >= 1, f'--mbstd-group={mbstd}: expected at least 1')
    _check(batch_gpu >= mbstd,       # (StyleGAN3's check: a smaller group makes the mbstd feature a constant.)
           f'--batch-gpu={batch_gpu} is smaller than the minibatch-std group {mbstd} (--mbstd-group); '
           f'give --batch-gpu >= {mbstd} or --mbstd-group <= {batch_gpu}')
    _check(batch_gpu % mbstd == 0,
           f'--batch-gpu={batch_gpu} is not a multiple of the minibatch-std group {mbstd} (--mbstd-group)')
    return batch, batch_gpu, mbstd

def _network_kwargs(opts: dnnlib.EasyDict, spec: dnnlib.EasyDict, batch: int, mbstd: int) -> tuple[dnnlib.EasyDict, dnnlib.EasyDict]:
    """(G_kwargs, D_kwargs): the registered generator with the preset's family options and the
    overrides, and the StyleGAN2 residual discriminator."""
    channel_base = opts.cbase if opts.cbase is not None else int(spec.fmaps * 32768)
    channel_max = opts.cmax if opts.cmax is not None else spec.get('cmax', 512)
    _check(channel_base >= 1 and channel_max >= 1, f'--cbase={channel_base}, --cmax={channel_max}: expected positive integers')
    fp16_layers = opts.device == 'cuda' and opts.precision == 'fp32' and not opts.fp32
    gen = opts.gen if opts.gen is not None else spec.gen
    try:
        G_kwargs = networks.generator_kwargs(gen)
    except ValueError as err:
        raise ConfigError(f'--gen={gen}: {err}') from None
    G_kwargs = dnnlib.EasyDict(_merge(dict(z_dim=512), G_kwargs))
    map_depth = opts.map_depth if opts.map_depth is not None else spec.map
    overrides = family_G_overrides(spec, channel_base, channel_max, fp16_layers, map_depth, opts.nhwc, batch).get(G_kwargs.class_name, {})
    _check(opts.map_depth is None or 'mapping_kwargs' in overrides,
           f'--map-depth={opts.map_depth}: generator "{gen}" ({G_kwargs.class_name}) has no mapping layers to set')
    _check(map_depth is None or map_depth >= 1, f'--map-depth={map_depth}: expected at least 1')
    G_kwargs = dnnlib.EasyDict(_merge(G_kwargs, overrides))
    fpa_options = {name: value for name, value in [('num_steps', opts.fpa_steps), ('vector_lr', opts.fpa_vector_lr)] if value is not None}
    if fpa_options:
        _check(G_kwargs.class_name == 'networks.fpa.Generator',
               f'--fpa-steps/--fpa-vector-lr: generator "{gen}" ({G_kwargs.class_name}) is not an FPA')
        _check(opts.fpa_steps is None or opts.fpa_steps >= 1, f'--fpa-steps={opts.fpa_steps}: expected at least 1')
        G_kwargs.update(fpa_options)
    if opts.freeze_fpa:
        _check(opts.resume is not None, '--freeze-fpa needs --resume=FPA_NETWORK.pkl (the FPA to keep fixed)')
        G_class = dnnlib.util.get_obj_by_name(G_kwargs.class_name)
        _check(getattr(G_class, 'supports_freeze_fpa', False),
               f'--freeze-fpa: generator "{gen}" ({G_kwargs.class_name}) has no FPA to freeze; use --cfg=fpa-unet')
        G_kwargs.train_fpa = False
    _check(opts.freezed >= 0, f'--freezed={opts.freezed}: expected at least 0')
    D_kwargs = dnnlib.EasyDict(networks.DISCRIMINATORS['stylegan2'], architecture=spec.D_architecture,
        channel_base=channel_base, channel_max=channel_max, num_fp16_res=4 if fp16_layers else 0,
        conv_clamp=256 if fp16_layers else None, mbstd_group_size=mbstd, freeze_layers=opts.freezed)
    if opts.nhwc:
        D_kwargs.block_kwargs = dict(fp16_channels_last=True)
    return G_kwargs, D_kwargs

def build_training_config(opts: dict, dataset_info: dict) -> dnnlib.EasyDict:
    """Options (names as DEFAULT_OPTS; missing ones take the defaults) and dataset facts
    (name, resolution, num_channels, num_images, has_labels) -> training_loop kwargs
    (without run_dir and rank). Raises ConfigError naming the offending option."""
    unknown = set(opts) - set(DEFAULT_OPTS)
    _check(not unknown, f'unknown options: {", ".join(sorted(unknown))}')
    opts = dnnlib.EasyDict(DEFAULT_OPTS, **opts)
    info = dnnlib.EasyDict(dataset_info)
    res = int(info.resolution)

    # Devices and processes.
    _check(opts.gpus >= 1, f'--gpus={opts.gpus}: expected at least 1')
    if opts.device == 'auto':
        opts.device = misc.resolve_device('auto').type
    _check(opts.device in ('cpu', 'cuda'), f'--device={opts.device}: expected auto, cpu or cuda')
    _check(opts.precision in PRECISIONS, f'--precision={opts.precision}: expected one of {", ".join(PRECISIONS)}')
    if opts.precision == 'auto':
        opts.precision = default_precision(opts.device, opts.fp32)
    _check(not (opts.precision == 'fp16' and opts.device != 'cuda'), '--precision=fp16 needs CUDA; on CPU use --precision=bf16 or fp32')
    _check(not (opts.fp32 and opts.precision != 'fp32'), f'--fp32 contradicts --precision={opts.precision}; give one of them')

    # Preset and dataset.
    spec = preset_spec(opts.cfg, res, opts.gpus)
    _check(res >= 1 and res & (res - 1) == 0 and spec.min_res <= res <= spec.max_res,
           f'--data={opts.data}: resolution {res}x{res} is not supported by --cfg={opts.cfg} '
           f'(expected a power of two from {spec.min_res} to {spec.max_res}; dataset_tool.py --resolution can resize)')
    _check(not opts.cond or info.has_labels, f'--cond=True: {opts.data} has no labels (dataset.json)')
    _check(opts.subset is None or opts.subset >= 1, f'--subset={opts.subset}: expected at least 1')

    # Batch, networks.
    batch, batch_gpu, mbstd = _batch_sizes(opts, spec)
    G_kwargs, D_kwargs = _network_kwargs(opts, spec, batch, mbstd)

    # Loss, optimisers, schedule.
    gamma = opts.gamma if opts.gamma is not None else spec.gamma
    _check(gamma is not None, f'--cfg={opts.cfg} needs --gamma (the R1 weight, as StyleGAN3\'s train.py: it depends on the dataset; '
                              f'about 2 at 256x256, times 4 per doubling of the resolution)')
    _check(gamma >= 0, f'--gamma={gamma}: expected at least 0')
    kimg = opts.kimg if opts.kimg is not None else spec.kimg
    _check(kimg > 0, f'--kimg={kimg}: expected a positive number')
    _check(opts.tick > 0, f'--tick={opts.tick}: expected a positive number')
    _check(opts.snap >= 1, f'--snap={opts.snap}: expected at least 1')
    c = dnnlib.EasyDict()
    c.training_set_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=opts.data,
        resolution=res, use_labels=bool(opts.cond), xflip=bool(opts.mirror), random_seed=opts.seed,
        max_size=opts.subset if opts.subset is not None and opts.subset < info.num_images else None)
    workers = opts.workers if opts.workers is not None else default_workers(opts.device, opts.gpus, os.cpu_count())
    c.data_loader_kwargs = dnnlib.EasyDict(num_workers=workers, prefetch_factor=2)
    c.G_kwargs = G_kwargs
    c.D_kwargs = D_kwargs
    for name, lr in [('glr', opts.glr), ('dlr', opts.dlr)]:
        _check(lr is None or lr > 0, f'--{name}={lr}: expected a positive learning rate')
    # fused=True: torch's one-kernel Adam, the same update as upstream's for-loop Adam (to
    # rounding), and several times faster per step on a CPU (bench/results.md).
    c.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=opts.glr or spec.lrate, betas=[0.0, 0.99], eps=1e-8, fused=True)
    c.D_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=opts.dlr or spec.get('dlrate', spec.lrate), betas=[0.0, 0.99], eps=1e-8, fused=True)
    mode_seeking = opts.mode_seeking if opts.mode_seeking is not None else spec.get('mode_seeking', 0)
    _check(math.isfinite(mode_seeking) and mode_seeking >= 0, f'--mode-seeking={mode_seeking}: expected a finite weight of at least 0')
    c.loss_kwargs = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=gamma,
        style_mixing_prob=spec.style_mixing, pl_weight=spec.pl_weight, **stylegan3_batch_options(batch, spec.get('blur_init_sigma', 0))[1])
    if mode_seeking > 0:
        c.loss_kwargs.mode_seeking = mode_seeking
    c.G_reg_interval = 4 if spec.pl_weight > 0 else None
    c.D_reg_interval = 16
    c.ema_kimg = spec.ema if spec.ema is not None else batch * 10 / 32     # None: StyleGAN3's rule, from the total batch.
    c.ema_rampup = spec.ramp
    c.total_kimg = kimg
    c.kimg_per_tick = opts.tick
    c.image_snapshot_ticks = c.network_snapshot_ticks = opts.snap
    c.random_seed = opts.seed
    c.num_gpus = opts.gpus
    c.batch_size = batch
    c.batch_gpu = batch_gpu
    c.precision = opts.precision
    c.device = opts.device
    c.cudnn_benchmark = not opts.nobench
    c.allow_tf32 = bool(opts.allow_tf32)

    # Augmentation.
    _check(opts.aug in AUG_MODES, f'--aug={opts.aug}: expected one of {", ".join(AUG_MODES)}')
    _check(opts.p is None or opts.aug == 'fixed', '--p can only be given with --aug=fixed')
    _check(opts.p is None or 0 <= opts.p <= 1, f'--p={opts.p}: expected a probability in [0, 1]')
    _check(opts.target is None or opts.aug == 'ada', '--target can only be given with --aug=ada')
    _check(opts.target is None or 0 <= opts.target <= 1, f'--target={opts.target}: expected a value in [0, 1]')
    _check(opts.augpipe in AUGPIPES, f'--augpipe={opts.augpipe}: expected one of {", ".join(AUGPIPES)}')
    c.augment_kwargs = None
    c.augment_p = 0
    c.ada_target = None
    c.ada_kimg = spec.get('ada_kimg', 500)     # ADA's speed: p moves by at most 1 per ada_kimg kimg (upstream: 500).
    if opts.aug != 'noaug':
        c.augment_kwargs = dnnlib.EasyDict(class_name=networks.AUGMENT_PIPE_CLASS, **_augpipe_spec(opts.augpipe))
        if opts.aug == 'ada':
            c.ada_target = opts.target if opts.target is not None else 0.6
        else:
            c.augment_p = opts.p if opts.p is not None else FIXED_AUG_P

    # Metrics (what each needs is checked by train.py's preflight, which may open files).
    c.metrics = list(opts.metrics)
    c.metric_detectors = {name: path for name, path in dict(inception=opts.inception, vgg16=opts.vgg16).items() if path}
    if c.metrics:
        try:
            from metrics import metric_main
        except ImportError as err:
            raise ConfigError(f'--metrics={",".join(c.metrics)}: the metrics package cannot be imported ({err}); use --metrics=none') from None
        for metric in c.metrics:
            _check(metric_main.is_valid_metric(metric),
                   f'--metrics: "{metric}" is not a metric; expected none or a comma list of {", ".join(metric_main.list_valid_metrics())}')

    # Resume: a resume checkpoint (resume-KKKKKK.pt) continues exactly; anything else (a network
    # file, a reference FPA checkpoint such as model_1.pt, a URL or name) starts a new run from its weights.
    c.resume_pkl = None
    c.resume_state = None
    if opts.resume is not None:
        if checkpoint.RESUME_STATE_RE.fullmatch(os.path.basename(str(opts.resume))):
            c.resume_state = str(opts.resume)
        else:
            c.resume_pkl = str(opts.resume)
            c.ada_kimg = 100            # Upstream: let ADA catch up faster from a trained network,
            c.ema_rampup = None         # and no EMA ramp-up (G_ema starts from trained weights).
    return c

def _augpipe_spec(name: str) -> dict:
    from training.augment import AUGPIPE_SPECS   # The pipe's own table of presets.
    _check(name in AUGPIPE_SPECS, f'--augpipe={name}: not in training.augment.AUGPIPE_SPECS ({", ".join(AUGPIPE_SPECS)})')
    return dict(AUGPIPE_SPECS[name])

#----------------------------------------------------------------------------

def describe_run(opts: dict, dataset_info: dict) -> str:
    """The run directory's description, as upstream: dataset, then cfg and the overrides."""
    opts = dnnlib.EasyDict(DEFAULT_OPTS, **opts)
    parts = [dataset_info['name']]
    parts += ['cond'] if opts.cond else []
    parts += [f'subset{opts.subset}'] if opts.subset is not None else []
    parts += ['mirror'] if opts.mirror else []
    parts += [f'{opts.cfg}{opts.gpus}' if opts.cfg == 'auto' else opts.cfg]
    parts += [f'gen{opts.gen}'] if opts.gen is not None else []
    parts += [f'gpus{opts.gpus}'] if opts.cfg != 'auto' else []     # auto carries it in its name (auto1), as upstream.
    parts += [f'gamma{opts.gamma:g}'] if opts.gamma is not None else []
    parts += [f'kimg{opts.kimg:g}'] if opts.kimg is not None else []
    parts += [f'batch{opts.batch}'] if opts.batch is not None else []
    parts += [opts.aug] if opts.aug != 'ada' else []
    parts += [f'p{opts.p:g}'] if opts.p is not None else []
    parts += [f'target{opts.target:g}'] if opts.target is not None else []
    parts += [opts.augpipe] if opts.augpipe != 'bgc' and opts.aug != 'noaug' else []
    parts += ['resume'] if opts.resume is not None else []
    parts += ['freezefpa'] if opts.freeze_fpa else []
    parts += [f'freezed{opts.freezed}'] if opts.freezed else []
    parts += [opts.precision] if opts.precision not in ('auto', 'fp32') else []
    parts += ['fp32'] if opts.fp32 else []
    parts += [f'glr{opts.glr:g}'] if opts.glr is not None else []
    parts += [f'dlr{opts.dlr:g}'] if opts.dlr is not None else []
    parts += [f'map{opts.map_depth}'] if opts.map_depth is not None else []
    parts += [f'T{opts.fpa_steps}'] if opts.fpa_steps is not None else []
    parts += [f'veclr{int(opts.fpa_vector_lr)}'] if opts.fpa_vector_lr is not None else []
    parts += [f'mbstd{opts.mbstd_group}'] if opts.mbstd_group is not None else []
    parts += [f'ms{opts.mode_seeking:g}'] if opts.mode_seeking is not None else []
    return '-'.join(str(p) for p in parts)

#----------------------------------------------------------------------------
