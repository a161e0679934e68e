"""The training loop of StyleGAN2-ADA / StyleGAN3, for any registered generator.

Karras et al., "Training Generative Adversarial Networks with Limited Data" (NeurIPS 2020)
and "Alias-Free Generative Adversarial Networks" (NeurIPS 2021): phases Gmain, Greg, Dmain,
Dreg with lazy regularisation (StyleGAN2, section 3.1: optimiser lr and betas scaled by
N/(N+1)), gradient accumulation over `batch_gpu` chunks, G_ema with a half-life in images,
the ADA heuristic (section 3: adjust p by the sign of r_t - target), ticks, snapshots and
metrics. `training_loop(**kwargs)` builds every part by class name from `*_kwargs` dicts;
its signature is the bill of materials and `training_options.json` records it.

What this loop adds over its anchors:
- Exact resume. Every random draw of a step comes from generators seeded by
  (random_seed, rank, step): the latents and fake labels of the whole batch from one
  generator shared by all ranks (each rank takes its slice, so N processes see the same
  latents as one process with the same total batch), and the global torch/numpy/python
  RNGs (augmentation, noise inputs, style mixing, path-length noise) reseeded per rank and
  step. A resume checkpoint beside each network snapshot holds the rest of the state
  (networks, optimisers, counters, ADA p and its pending statistics, pl_mean, the data-
  stream position), so a resumed run reproduces the uninterrupted one.
- Gradient averaging that is exact: each chunk's loss is divided by the number of chunks,
  so the step sees the mean over the global batch for any split into processes and chunks.
- Non-finite gradients are neutralised (as upstream) and also counted, and non-finite
  losses are counted; both are logged per tick.
- Every file is written atomically (temporary file, then rename).
"""

import contextlib
import copy
import errno
import io
import json
import os
import random
import time
import uuid
from typing import Callable

import numpy as np
import PIL.Image
import psutil
import torch

import dnnlib
import networks
from painting import api as painting_api
from torch_utils import distributed
from torch_utils import misc
from torch_utils import persistence
from torch_utils import training_stats
from training.augment import ada_update
from training.config import RESUME_STATE_RE
from training.dataset import InfiniteSampler
from training.loss import autocast_context

#----------------------------------------------------------------------------
# File names inside a run directory.

def snapshot_name(kind: str, cur_nimg: int) -> str:
    """'network-snapshot' -> network-snapshot-000123.pkl, 'resume' -> resume-000123.pt,
    'fakes' / 'paint' -> fakes000123.png / paint000123.png (kimg, zero-padded to 6 digits)."""
    kimg = cur_nimg // 1000
    return {'network-snapshot': f'network-snapshot-{kimg:06d}.pkl', 'resume': f'resume-{kimg:06d}.pt',
            'fakes': f'fakes{kimg:06d}.png', 'paint': f'paint{kimg:06d}.png'}[kind]

RESUME_STATE_FORMAT = 'fpa-gan-resume'
RESUME_STATE_VERSION = 1

def find_latest_resume_state(run_dir: str) -> str | None:
    """The newest resume checkpoint in `run_dir`, or None."""
    if not os.path.isdir(run_dir):
        return None
    found = [(int(m.group(1)), name) for name in os.listdir(run_dir) if (m := RESUME_STATE_RE.fullmatch(name))]
    return os.path.join(run_dir, max(found)[1]) if found else None

#----------------------------------------------------------------------------
# Keeping a run directory whole across kills, restarts and full disks.

def new_run_id() -> str:
    """Recorded in every resume checkpoint a run writes; a resumed run keeps its checkpoint's."""
    return uuid.uuid4().hex[:16]

def remove_stale_temporaries(run_dir: str) -> list[str]:
    """Delete the partial files (.tmp-*) that a kill during an atomic write left in the run
    directory. Called when the run starts or resumes, before it writes anything; returns
    their names."""
    names = sorted(name for name in os.listdir(run_dir) if name.startswith('.tmp-'))
    for name in names:
        os.remove(os.path.join(run_dir, name))
    return names

def cut_stats_jsonl(path: str, next_tick: int) -> int:
    """On resume: keep only the lines of stats.jsonl for ticks before `next_tick` (the tick the
    checkpoint continues with), and no partial line, so that the resumed run's lines follow on
    exactly and the log equals an uninterrupted run's. Returns the number of lines dropped."""
    if not os.path.isfile(path):
        return 0
    with open(path, 'rb') as f:
        lines = f.read().decode('utf-8', errors='replace').splitlines()
    kept = []
    for line in lines:
        try:
            tick = json.loads(line)['Progress/tick']['mean']
        except (ValueError, KeyError, TypeError):
            continue    # A line cut short by the kill.
        if tick < next_tick:
            kept.append(line)
    if len(kept) != len(lines):
        dnnlib.util.atomic_write(path, ''.join(line + '\n' for line in kept).encode('utf-8'))
    return len(lines) - len(kept)

class DiskFullError(ValueError):
    """No space left on the device while the run wrote one of its files (one line, no traceback)."""

@contextlib.contextmanager
def reporting_full_disk(path: str, previous_state: str | None):
    """A full disk while writing `path` becomes a DiskFullError naming it and the checkpoint the
    run can continue from (atomic writes leave the previous files as they were)."""
    try:
        yield
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        intact = f'the previous checkpoint {previous_state} is intact' if previous_state else 'no earlier file was changed'
        raise DiskFullError(f'no space left on device writing {path}; {intact}') from None

#----------------------------------------------------------------------------
# Deterministic seeds.

def derive_seed(*keys: int) -> int:
    """A 32-bit seed from a tuple of non-negative integers (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])

STREAM_INIT, STREAM_BATCH, STREAM_RANK, STREAM_GRID = 0, 1, 2, 3   # Independent random streams.

def seed_global_rngs(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)

def get_rng_states() -> dict:
    """The global RNG states as plain data (loadable with torch.load(weights_only=True))."""
    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return dict(
        torch=torch.get_rng_state(),
        cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        numpy=dict(name=np_name, keys=torch.from_numpy(np_keys.astype(np.int64)), pos=int(np_pos),
                   has_gauss=int(np_has_gauss), cached_gaussian=float(np_cached)),
        python=dict(version=py_version, state=list(py_state), gauss=py_gauss),
    )

def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states['torch'])
    if torch.cuda.is_available() and len(states['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states['cuda'])
    n = states['numpy']
    np.random.set_state((n['name'], n['keys'].numpy().astype(np.uint32), n['pos'], n['has_gauss'], n['cached_gaussian']))
    p = states['python']
    random.setstate((p['version'], tuple(p['state']), p['gauss']))

#----------------------------------------------------------------------------
# Images.

def encode_png(img: np.ndarray) -> bytes:
    """uint8 [H, W, C] (C = 1 or 3) -> PNG bytes."""
    img = img[:, :, 0] if img.shape[2] == 1 else img
    buffer = io.BytesIO()
    PIL.Image.fromarray(img, 'L' if img.ndim == 2 else 'RGB').save(buffer, format='png')
    return buffer.getvalue()

def to_uint8(img: torch.Tensor | np.ndarray, drange: tuple[float, float]) -> np.ndarray:
    img = np.asarray(img.detach().cpu().float() if isinstance(img, torch.Tensor) else img, dtype=np.float32)
    lo, hi = drange
    img = (img - lo) * (255 / (hi - lo))
    return np.rint(img).clip(0, 255).astype(np.uint8)

def save_image_grid(img: torch.Tensor | np.ndarray, path: str, drange: tuple[float, float], grid_size: tuple[int, int]) -> None:
    """Write images [gw*gh, C, H, W] as a gh x gw grid PNG (row-major), atomically."""
    gw, gh = grid_size
    img = to_uint8(img, drange)
    _N, C, H, W = img.shape
    img = img.reshape(gh, gw, C, H, W).transpose(0, 3, 1, 4, 2).reshape(gh * H, gw * W, C)
    dnnlib.util.atomic_write(path, encode_png(img))

def setup_snapshot_image_grid(training_set, random_seed: int = 0) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Upstream's grid: gw x gh = clip(7680/W, 7, 32) x clip(4320/H, 4, 32) images, rows grouped
    by label for labelled data. Returns (grid_size, uint8 images [N,C,H,W], labels [N, label_dim])."""
    rnd = np.random.RandomState(random_seed)
    gw = int(np.clip(7680 // training_set.image_shape[2], 7, 32))
    gh = int(np.clip(4320 // training_set.image_shape[1], 4, 32))
    all_indices = list(range(len(training_set)))
    if not training_set.has_labels:
        rnd.shuffle(all_indices)
        grid_indices = [all_indices[i % len(all_indices)] for i in range(gw * gh)]
    else:
        label_groups = {}
        for idx in all_indices:
            label_groups.setdefault(tuple(training_set.get_label(idx).tolist()), []).append(idx)
        label_order = sorted(label_groups)
        for label in label_order:
            rnd.shuffle(label_groups[label])
        grid_indices = []
        for y in range(gh):
            indices = label_groups[label_order[y % len(label_order)]]
            grid_indices += [indices[x % len(indices)] for x in range(gw)]
    images, labels = zip(*[training_set[i] for i in grid_indices])
    return (gw, gh), np.stack(images), np.stack(labels)

GRID_BATCH = 32         # Snapshot grids are generated in batches of max(batch_gpu, this).
def save_paint_grid(G, z: torch.Tensor, c: torch.Tensor, path: str) -> None:
    """The painting of each latent, one under the other, as generate.py --paint draws it
    (painting.api.painting_figure: rank-1 updates over partial images, docs/fpa-model.md §5) at
    most painting.api.MAX_PAINT_COLUMNS steps wide; written atomically."""
    painted = painting_api.paint_latents(G, z, c)
    steps = painting_api.paint_columns(painted.updates.shape[1])
    figures = [painting_api.painting_figure(painted, i, scale=1, gap_px=0, steps=steps) for i in range(len(z))]
    dnnlib.util.atomic_write(path, encode_png(np.concatenate(figures, axis=0)))

#----------------------------------------------------------------------------

def load_resume_state(path: str) -> dict:
    state = persistence.load_plain_data(path, path, 'resume checkpoint')
    if not isinstance(state, dict) or state.get('format') != RESUME_STATE_FORMAT:
        raise ValueError(f'{path}: not a resume checkpoint of this codebase (expected a resume-KKKKKK.pt written by training)')
    if state.get('version') != RESUME_STATE_VERSION:
        raise ValueError(f'{path}: resume checkpoint version {state.get("version")} is not supported (expected {RESUME_STATE_VERSION})')
    return state

def _load_module_state(module: torch.nn.Module, state_dict: dict, name: str, path: str) -> None:
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        detail = ' '.join(str(err).split())[:300]
        raise ValueError(f'{path}: {name} does not match this run ({detail}); was it written with other options?') from None

def copy_from_network_file(path: str, modules: dict[str, torch.nn.Module]) -> None:
    """--resume=NETWORK.pkl: copy tensors by name into freshly built modules. Reads every kind
    networks.load_network reads (ours, reference FPA checkpoints, StyleGAN2-ADA/StyleGAN3
    pickles; paths, URLs and upstream's named sources). A file of another class, resolution or
    channel count, or with a tensor of another shape, is a ValueError."""
    data = networks.load_network(path)
    for name, module in modules.items():
        src = data.get(name)
        if src is None:
            continue
        for attr in ('img_resolution', 'img_channels'):
            if hasattr(module, attr) and getattr(src, attr, None) != getattr(module, attr):
                raise ValueError(f'--resume={path}: {name} has {attr}={getattr(src, attr, None)}, this run needs {getattr(module, attr)}')
        if type(src) is not type(module):
            raise ValueError(f'--resume={path}: {name} is a {src.class_name}, this run trains a {module.class_name}')
        try:
            misc.copy_params_and_buffers(src, module, require_all=False)
        except ValueError as err:
            raise ValueError(f'--resume={path}: {name}: {err} (another architecture?)') from None
        src_params = {n for n, _ in src.named_parameters()}
        if not any(n in src_params for n, _ in module.named_parameters()):
            raise ValueError(f'--resume={path}: no parameter of {name} matches this run\'s {module.class_name} (another architecture?)')

#----------------------------------------------------------------------------

def training_loop(
    run_dir                 = '.',      # Output directory.
    training_set_kwargs     = {},       # Options for the training set (class_name = training.dataset.ImageFolderDataset).
    data_loader_kwargs      = {},       # Options for torch.utils.data.DataLoader (num_workers, prefetch_factor).
    G_kwargs                = {},       # Options for the generator (class_name + family kwargs + z_dim).
    D_kwargs                = {},       # Options for the discriminator.
    G_opt_kwargs            = {},       # Options for the generator optimiser (class_name, lr, betas, eps).
    D_opt_kwargs            = {},       # Options for the discriminator optimiser.
    augment_kwargs          = None,     # Options for the augment pipe, None = no augmentation.
    loss_kwargs             = {},       # Options for the loss (class_name = training.loss.StyleGAN2Loss).
    metrics                 = [],       # Metrics to evaluate after each network snapshot.
    random_seed             = 0,        # Global random seed.
    num_gpus                = 1,        # Number of processes taking part.
    rank                    = 0,        # This process's rank in [0, num_gpus).
    batch_size              = 4,        # Total batch size of one training iteration, all processes together.
    batch_gpu               = 4,        # Samples per forward/backward pass of one process (gradient accumulation chunk).
    ema_kimg                = 10,       # Half-life of G_ema in kimg.
    ema_rampup              = 0.05,     # EMA ramp-up: half-life at most cur_nimg * ema_rampup; None = no ramp-up.
    G_reg_interval          = None,     # Lazy regularisation interval of G, None = Gboth.
    D_reg_interval          = 16,       # Lazy regularisation interval of D, None = Dboth.
    augment_p               = 0,        # Initial augmentation probability.
    ada_target              = None,     # ADA target of E[sign(D(real))], None = fixed p.
    ada_interval            = 4,        # Iterations between ADA adjustments.
    ada_kimg                = 500,      # kimg for p to move from 0 to 1 at most.
    total_kimg              = 25000,    # Training length in kimg.
    kimg_per_tick           = 4,        # Progress-report interval in kimg.
    image_snapshot_ticks    = 50,       # Ticks between image snapshots, None = none.
    network_snapshot_ticks  = 50,       # Ticks between network snapshots (+ resume checkpoints, metrics), None = none.
    resume_pkl              = None,     # Network file to start from (copied by name), None = from scratch.
    resume_state            = None,     # Resume checkpoint (resume-KKKKKK.pt) to continue exactly, None = none.
    precision               = 'fp32',   # 'fp32' | 'bf16' | 'fp16': autocast of the loss's G and D passes.
    device                  = 'cpu',    # torch device of this process ('cpu', 'cuda', 'cuda:1').
    cudnn_benchmark         = True,     # torch.backends.cudnn.benchmark (CUDA only).
    allow_tf32              = False,    # Allow TF32 in matmuls and cuDNN (CUDA; StyleGAN2-ADA's --allow-tf32).
    metric_detectors        = {},       # Detector weights for the metrics: {'inception': path_or_url, 'vgg16': ...}.
    paint_seeds             = [0, 1, 2, 3], # Seeds of the painting grid (generators with a paint method), as generate.py --seeds.
    abort_fn                = None,     # Callback: returns True to stop training at the next tick.
    progress_fn             = None,     # Callback: progress_fn(cur_kimg, total_kimg) once per tick.
    print_fn: Callable      = print,    # Where rank 0's messages go.
):
    # Initialise.
    start_time = time.time()
    device = torch.device(device)
    if device.type == 'cuda':
        if device.index is None: # 'cuda' = the current device; set_device needs an index.
            device = torch.device('cuda', torch.cuda.current_device())
        torch.cuda.set_device(device)
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32  # Set explicitly here, not at import time.
    torch.backends.cudnn.allow_tf32 = allow_tf32
    autocast_context(device, precision)             # fp16 on CPU -> ValueError before any work.
    say = print_fn if rank == 0 else (lambda *_args, **_kwargs: None)
    training_stats.reset()
    training_stats.init_multiprocessing(rank=rank, sync_device=(device if num_gpus > 1 else None))
    batch_per_gpu = batch_size // num_gpus
    if batch_size % num_gpus != 0 or batch_per_gpu % batch_gpu != 0:
        raise ValueError(f'batch_size={batch_size} must be a multiple of num_gpus * batch_gpu = {num_gpus} * {batch_gpu}')
    num_rounds = batch_per_gpu // batch_gpu

    # Training data.
    say('Loading training set...')
    training_set = dnnlib.util.construct_class_by_name(**training_set_kwargs)
    say(f'Num images:  {len(training_set)}')
    say(f'Image shape: {training_set.image_shape}')
    say(f'Label shape: {training_set.label_shape}')
    say()

    # Networks, built identically on every rank (seeded by random_seed alone; broadcast below anyway).
    say('Constructing networks...')
    seed_global_rngs(derive_seed(random_seed, STREAM_INIT))
    common_kwargs = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels)
    G = dnnlib.util.construct_class_by_name(**G_kwargs, **common_kwargs).train().to(device)
    D = dnnlib.util.construct_class_by_name(**D_kwargs, **common_kwargs).train().to(device)
    # What each optimiser trains: the parameters a module leaves trainable after its own
    # freezing (FPA/U-Net train_fpa=False, Freeze-D). Phases toggle requires_grad of these only.
    G_trainable = [p for p in G.parameters() if p.requires_grad]
    D_trainable = [p for p in D.parameters() if p.requires_grad]
    G.requires_grad_(False)
    D.requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    augment_pipe = None
    if augment_kwargs is not None and (augment_p > 0 or ada_target is not None):
        augment_pipe = dnnlib.util.construct_class_by_name(**augment_kwargs).train().requires_grad_(False).to(device)
        augment_pipe.p.copy_(torch.as_tensor(augment_p))

    # Resume.
    state = None
    run_id = new_run_id()
    last_state = None   # The newest resume checkpoint of this run (its id): the only one pruning removes.
    if resume_state is not None:
        say(f'Resuming from "{resume_state}"')
        state = load_resume_state(resume_state)
        if state.get('run_id') is not None:     # Checkpoints from before run ids are never removed.
            run_id = state['run_id']
            last_state = resume_state
        _load_module_state(G, state['G'], 'G', resume_state)
        _load_module_state(D, state['D'], 'D', resume_state)
        _load_module_state(G_ema, state['G_ema'], 'G_ema', resume_state)
        if augment_pipe is not None and state['augment_pipe'] is not None:
            _load_module_state(augment_pipe, state['augment_pipe'], 'augment_pipe', resume_state)
        if state['batch_size'] != batch_size or state['num_gpus'] != num_gpus:
            say(f'Warning: the checkpoint was written with batch_size={state["batch_size"]}, num_gpus={state["num_gpus"]}; '
                'this run differs, so it continues training but does not reproduce an uninterrupted run')
    elif resume_pkl is not None:
        say(f'Starting from the weights in "{resume_pkl}"')
        copy_from_network_file(resume_pkl, dict(G=G, D=D, G_ema=G_ema))

    # Summaries (rank 0): one forward of G and D on a batch_gpu of zeros.
    if rank == 0:
        z = torch.zeros([batch_gpu, G.z_dim], device=device)
        c = torch.zeros([batch_gpu, G.c_dim], device=device)
        img = misc.print_module_summary(G, [z, c], print_fn=say)
        misc.print_module_summary(D, [img, c], print_fn=say)

    # Same weights on every process.
    for module in (G, D, G_ema, augment_pipe):
        if module is not None:
            distributed.broadcast_module(module)

    # Loss and phases (lazy regularisation: one optimiser per network, lr and betas scaled by N/(N+1)).
    say('Setting up training phases...')
    loss = dnnlib.util.construct_class_by_name(device=device, G=G, D=D, augment_pipe=augment_pipe, precision=precision, **loss_kwargs)
    phases = []
    for name, module, params, opt_kwargs, reg_interval in [('G', G, G_trainable, G_opt_kwargs, G_reg_interval),
                                                            ('D', D, D_trainable, D_opt_kwargs, D_reg_interval)]:
        if len(params) == 0:
            raise ValueError(f'{name} has no trainable parameters')
        opt_kwargs = dnnlib.EasyDict(opt_kwargs)
        if 'betas' in opt_kwargs:
            opt_kwargs.betas = [float(beta) for beta in opt_kwargs.betas]   # JSON may hold 0 for 0.0.
        if reg_interval is None:
            opt = dnnlib.util.construct_class_by_name(params=params, **opt_kwargs)
            phases.append(dnnlib.EasyDict(name=name + 'both', module=module, params=params, opt=opt, interval=1))
        else:
            mb_ratio = reg_interval / (reg_interval + 1)
            opt_kwargs.lr = opt_kwargs.lr * mb_ratio
            opt_kwargs.betas = [beta ** mb_ratio for beta in opt_kwargs.betas]
            opt = dnnlib.util.construct_class_by_name(params=params, **opt_kwargs)
            phases.append(dnnlib.EasyDict(name=name + 'main', module=module, params=params, opt=opt, interval=1))
            phases.append(dnnlib.EasyDict(name=name + 'reg', module=module, params=params, opt=opt, interval=reg_interval))
    optimizers = {'G_opt': phases[0].opt, 'D_opt': phases[-1].opt}

    # Counters and the data stream.
    cur_nimg = 0
    cur_tick = 0
    batch_idx = 0
    elapsed_before = 0.0
    ada_stats = training_stats.Collector(regex='Loss/signs/real') if ada_target is not None and augment_pipe is not None else None
    if state is not None:
        for key, opt in optimizers.items():
            opt.load_state_dict(state[key])
        loss.pl_mean.copy_(state['pl_mean'])
        cur_nimg, cur_tick, batch_idx = state['cur_nimg'], state['cur_tick'], state['batch_idx']
        elapsed_before = state['elapsed_sec']
        if ada_stats is not None:
            ada_stats.add_pending(state['ada_pending'])
        set_rng_states(state['rng'])
    sampler = InfiniteSampler(dataset=training_set, rank=rank, num_replicas=num_gpus, seed=random_seed,
                              start_idx=batch_idx * batch_per_gpu)   # Items this rank has already seen.
    loader_kwargs = dict(data_loader_kwargs)
    if loader_kwargs.get('num_workers', 0) == 0:
        loader_kwargs.pop('prefetch_factor', None)
    loader_kwargs['pin_memory'] = device.type == 'cuda'
    training_set_iterator = iter(torch.utils.data.DataLoader(dataset=training_set, sampler=sampler, batch_size=batch_per_gpu, **loader_kwargs))

    # Export sample images (a fresh run only: a resumed one keeps its files).
    grid_size = grid_z = grid_c = None
    if rank == 0 and image_snapshot_ticks is not None:
        say('Exporting sample images...')
        grid_size, images, labels = setup_snapshot_image_grid(training_set=training_set, random_seed=random_seed)
        grid_gen = torch.Generator().manual_seed(derive_seed(random_seed, STREAM_GRID))
        grid_batch = max(batch_gpu, GRID_BATCH)
        grid_z = torch.randn([labels.shape[0], G.z_dim], generator=grid_gen).to(device).split(grid_batch)
        grid_c = torch.from_numpy(labels).to(device).split(grid_batch)
        if state is None:
            with reporting_full_disk(os.path.join(run_dir, 'reals.png'), None):
                save_image_grid(images, os.path.join(run_dir, 'reals.png'), drange=(0, 255), grid_size=grid_size)
            images = torch.cat([G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(grid_z, grid_c)])
            with reporting_full_disk(os.path.join(run_dir, 'fakes_init.png'), None):
                save_image_grid(images, os.path.join(run_dir, 'fakes_init.png'), drange=(-1, 1), grid_size=grid_size)
    paint_z = paint_c = None
    if rank == 0 and hasattr(G_ema, 'paint'):
        paint_z = painting_api.seeds_to_z(paint_seeds, G.z_dim, device=device)     # The latents of generate.py --seeds.
        label_gen = torch.Generator().manual_seed(derive_seed(random_seed, STREAM_GRID, 1))
        paint_c = torch.stack([torch.from_numpy(training_set.get_label(int(i)))
                               for i in torch.randint(len(training_set), [len(paint_seeds)], generator=label_gen)]).to(device)

    # Logs.
    say('Initializing logs...')
    stats_collector = training_stats.Collector(regex='.*')
    nonfinite_collector = training_stats.Collector(regex=r'Loss/nonfinite/.*|Progress/nonfinite_grads', keep_previous=False)
    stats_metrics = dict()
    stats_jsonl = None
    stats_tfevents = None
    if rank == 0:
        stale = remove_stale_temporaries(run_dir)
        if stale:
            say(f'Removed {len(stale)} partial file(s) left by an interrupted write: {", ".join(stale)}')
        if state is not None:
            dropped = cut_stats_jsonl(os.path.join(run_dir, 'stats.jsonl'), next_tick=cur_tick)
            if dropped:
                say(f'stats.jsonl: removed {dropped} line(s) written after the checkpoint (tick {cur_tick} onwards); they are redone')
        stats_jsonl = open(os.path.join(run_dir, 'stats.jsonl'), 'at')
        try:
            import torch.utils.tensorboard as tensorboard
            stats_tfevents = tensorboard.SummaryWriter(run_dir)
        except ImportError as err:
            say(f'Skipping tfevents export: {err}')

    # Train.
    say(f'Training for {total_kimg} kimg...')
    say()
    tick_start_nimg = cur_nimg
    tick_start_time = time.time()
    maintenance_time = tick_start_time - start_time
    if progress_fn is not None:
        progress_fn(cur_nimg // 1000, total_kimg)
    if state is not None and cur_nimg >= total_kimg * 1000:
        say(f'Nothing to do: the checkpoint is at {cur_nimg / 1e3:.1f} kimg, total_kimg={total_kimg}')
    while cur_nimg < total_kimg * 1000 or batch_idx == 0:

        # Every random draw of this step is a function of (random_seed, rank, batch_idx).
        seed_global_rngs(derive_seed(random_seed, STREAM_RANK, rank, batch_idx))
        batch_gen = torch.Generator().manual_seed(derive_seed(random_seed, STREAM_BATCH, batch_idx))
        my_slice = slice(rank * batch_per_gpu, (rank + 1) * batch_per_gpu)

        # Fetch training data: reals from this rank's shard of the stream, latents and fake
        # labels (drawn from the dataset's labels) as this rank's slice of the global batch.
        phase_real_img, phase_real_c = next(training_set_iterator)
        phase_real_img = (phase_real_img.to(device).to(torch.float32) / 127.5 - 1).split(batch_gpu)
        phase_real_c = phase_real_c.to(device).split(batch_gpu)
        all_gen_z = torch.randn([len(phases), batch_size, G.z_dim], generator=batch_gen)
        all_gen_idx = torch.randint(len(training_set), [len(phases), batch_size], generator=batch_gen)
        all_gen_z = [z[my_slice].to(device).split(batch_gpu) for z in all_gen_z]
        all_gen_c = [torch.from_numpy(np.stack([training_set.get_label(int(i)) for i in idx[my_slice]])).to(device).split(batch_gpu)
                     for idx in all_gen_idx]

        # Execute training phases.
        for phase, phase_gen_z, phase_gen_c in zip(phases, all_gen_z, all_gen_c):
            if batch_idx % phase.interval != 0:
                continue
            phase.opt.zero_grad(set_to_none=True)
            for p in phase.params:
                p.requires_grad_(True)
            for real_img, real_c, gen_z, gen_c in zip(phase_real_img, phase_real_c, phase_gen_z, phase_gen_c):
                loss.accumulate_gradients(phase=phase.name, real_img=real_img, real_c=real_c, gen_z=gen_z, gen_c=gen_c,
                                          gain=phase.interval / num_rounds, cur_nimg=cur_nimg)
            for p in phase.params:
                p.requires_grad_(False)
            num_nonfinite = distributed.sync_gradients(phase.params)
            training_stats.report0('Progress/nonfinite_grads', num_nonfinite)
            phase.opt.step()

        # Update G_ema: parameters averaged with a half-life of ema_kimg, buffers copied.
        with torch.no_grad():
            ema_nimg = ema_kimg * 1000
            if ema_rampup is not None:
                ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
            ema_beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.detach().lerp(p_ema, ema_beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)

        # Update state.
        cur_nimg += batch_size
        batch_idx += 1

        # ADA: move p by the sign of E[sign(D(real))] - target.
        if ada_stats is not None and batch_idx % ada_interval == 0:
            ada_stats.update()
            if ada_stats.num('Loss/signs/real') > 0:
                ada_update(augment_pipe.p, ada_stats['Loss/signs/real'], ada_target, batch_size * ada_interval, ada_kimg)

        # Perform maintenance tasks once per tick.
        done = cur_nimg >= total_kimg * 1000
        if not done and cur_tick != 0 and cur_nimg < tick_start_nimg + kimg_per_tick * 1000:
            continue

        # Print status line, accumulating the same information in training_stats.
        tick_end_time = time.time()
        total_sec = elapsed_before + tick_end_time - start_time
        nonfinite_collector.update()
        num_nonfinite_losses = sum(int(round(nonfinite_collector.mean(n) * nonfinite_collector.num(n)))
                                   for n in nonfinite_collector.names() if n.startswith('Loss/') and nonfinite_collector.num(n) > 0)
        num_nonfinite_grads = int(round(nonfinite_collector.mean('Progress/nonfinite_grads') * nonfinite_collector.num('Progress/nonfinite_grads'))) \
            if nonfinite_collector.num('Progress/nonfinite_grads') > 0 else 0
        fields = []
        fields += [f"tick {training_stats.report0('Progress/tick', cur_tick):<5d}"]
        fields += [f"kimg {training_stats.report0('Progress/kimg', cur_nimg / 1e3):<8.1f}"]
        fields += [f"time {dnnlib.util.format_time(training_stats.report0('Timing/total_sec', total_sec)):<12s}"]
        fields += [f"sec/tick {training_stats.report0('Timing/sec_per_tick', tick_end_time - tick_start_time):<7.1f}"]
        fields += [f"sec/kimg {training_stats.report0('Timing/sec_per_kimg', (tick_end_time - tick_start_time) / max(cur_nimg - tick_start_nimg, 1) * 1e3):<7.2f}"]
        fields += [f"maintenance {training_stats.report0('Timing/maintenance_sec', maintenance_time):<6.1f}"]
        fields += [f"cpumem {training_stats.report0('Resources/cpu_mem_gb', psutil.Process(os.getpid()).memory_info().rss / 2**30):<6.2f}"]
        if device.type == 'cuda':
            fields += [f"gpumem {training_stats.report0('Resources/peak_gpu_mem_gb', torch.cuda.max_memory_allocated(device) / 2**30):<6.2f}"]
            fields += [f"reserved {training_stats.report0('Resources/peak_gpu_mem_reserved_gb', torch.cuda.max_memory_reserved(device) / 2**30):<6.2f}"]
            torch.cuda.reset_peak_memory_stats(device)
        fields += [f"augment {training_stats.report0('Progress/augment', float(augment_pipe.p.cpu()) if augment_pipe is not None else 0):.3f}"]
        if num_nonfinite_losses or num_nonfinite_grads:
            fields += [f'nonfinite {num_nonfinite_losses}/{num_nonfinite_grads}']
        say(' '.join(fields))
        if num_nonfinite_losses or num_nonfinite_grads:
            say(f'Warning: {num_nonfinite_losses} non-finite loss values and {num_nonfinite_grads} non-finite gradient entries '
                'this tick; the gradients were set to 0 (NaN) or +-1e5 (inf) before the optimiser steps')

        # Check for abort.
        if not done and abort_fn is not None and distributed.broadcast_object(bool(abort_fn())):
            done = True
            say()
            say('Aborting...')

        # Save image snapshot.
        if rank == 0 and image_snapshot_ticks is not None and (done or cur_tick % image_snapshot_ticks == 0):
            images = torch.cat([G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(grid_z, grid_c)])
            fakes_png = os.path.join(run_dir, snapshot_name('fakes', cur_nimg))
            with reporting_full_disk(fakes_png, last_state):
                save_image_grid(images, fakes_png, drange=(-1, 1), grid_size=grid_size)

        # Save network snapshot, resume checkpoint and painting grid.
        snapshot_pkl = resume_bytes = None
        is_snapshot = network_snapshot_ticks is not None and (done or cur_tick % network_snapshot_ticks == 0)
        if is_snapshot:
            if num_gpus > 1:
                for module in (G, D, G_ema, augment_pipe):
                    if module is not None:
                        misc.check_ddp_consistency(module, ignore_regex=r'.*\.[^.]+_(avg|ema)')
            ada_pending = ada_stats.pending() if ada_stats is not None else {}
            if rank == 0:
                snapshot_pkl = os.path.join(run_dir, snapshot_name('network-snapshot', cur_nimg))
                with reporting_full_disk(snapshot_pkl, last_state):
                    persistence.save_network(snapshot_pkl, G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe,
                                             training_set_kwargs=training_set_kwargs)
                resume_path = os.path.join(run_dir, snapshot_name('resume', cur_nimg))
                resume = dict(
                    format=RESUME_STATE_FORMAT, version=RESUME_STATE_VERSION, run_id=run_id,
                    G=G.state_dict(), D=D.state_dict(), G_ema=G_ema.state_dict(),
                    augment_pipe=augment_pipe.state_dict() if augment_pipe is not None else None,
                    **{key: opt.state_dict() for key, opt in optimizers.items()},
                    pl_mean=loss.pl_mean.detach().cpu(), cur_nimg=cur_nimg, cur_tick=cur_tick + 1, batch_idx=batch_idx,
                    sampler_start_idx=batch_idx * batch_per_gpu, batch_size=batch_size, num_gpus=num_gpus,
                    random_seed=random_seed, elapsed_sec=total_sec, ada_pending=ada_pending, rng=get_rng_states(),
                )
                buffer = io.BytesIO()
                torch.save(resume, buffer)
                resume_bytes = buffer.getvalue()     # Written after this tick's stats.jsonl line (below).
                if paint_z is not None:
                    paint_png = os.path.join(run_dir, snapshot_name('paint', cur_nimg))
                    with reporting_full_disk(paint_png, last_state):
                        save_paint_grid(G_ema, paint_z, paint_c, paint_png)

        # Evaluate metrics.
        if is_snapshot and len(metrics) > 0:
            say('Evaluating metrics...')
            from metrics import metric_main   # Imported only when metrics are requested.
            for metric in metrics:
                result_dict = metric_main.calc_metric(metric=metric, G=G_ema, dataset_kwargs=training_set_kwargs,
                                                      num_gpus=num_gpus, rank=rank, device=device, detectors=metric_detectors)
                if rank == 0:
                    with reporting_full_disk(os.path.join(run_dir, f'metric-{metric}.jsonl'), last_state):
                        metric_main.report_metric(result_dict, run_dir=run_dir, snapshot_pkl=snapshot_pkl)
                stats_metrics.update(result_dict.results)

        # Collect statistics.
        training_stats.report0('Timing/total_hours', total_sec / (60 * 60))    # (Upstream's, for plots.)
        training_stats.report0('Timing/total_days', total_sec / (24 * 60 * 60))
        stats_collector.update()
        stats_dict = stats_collector.as_dict()

        # Update logs.
        timestamp = time.time()
        if stats_jsonl is not None:
            with reporting_full_disk(stats_jsonl.name, last_state):
                stats_jsonl.write(json.dumps(dict(stats_dict, timestamp=timestamp)) + '\n')
                stats_jsonl.flush()
        if stats_tfevents is not None:
            global_step = int(cur_nimg / 1e3)
            walltime = timestamp - start_time
            for name, value in stats_dict.items():
                stats_tfevents.add_scalar(name, value['mean'], global_step=global_step, walltime=walltime)
            for name, value in stats_metrics.items():
                stats_tfevents.add_scalar(f'Metrics/{name}', value, global_step=global_step, walltime=walltime)
            stats_tfevents.flush()
        if progress_fn is not None:
            progress_fn(cur_nimg // 1000, total_kimg)

        # Resume checkpoint, after the tick's log line: a kill before this point resumes from the
        # previous checkpoint and redoes the tick, cutting its line (cut_stats_jsonl); a kill after
        # it finds the line in place. Then keep only the newest checkpoint of this run (they hold
        # optimiser states); another run's checkpoints in the directory are never removed.
        if resume_bytes is not None:
            with reporting_full_disk(resume_path, last_state):
                dnnlib.util.atomic_write(resume_path, resume_bytes)
            if last_state is not None and os.path.isfile(last_state) and not os.path.samefile(last_state, resume_path):
                os.remove(last_state)
            last_state = resume_path

        # Update state.
        cur_tick += 1
        tick_start_nimg = cur_nimg
        tick_start_time = time.time()
        maintenance_time = tick_start_time - tick_end_time
        if done:
            break

    # Done.
    if stats_jsonl is not None:
        stats_jsonl.close()
    if stats_tfevents is not None:
        stats_tfevents.close()
    say()
    say('Exiting...')
    return dnnlib.EasyDict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, cur_nimg=cur_nimg, cur_tick=cur_tick, batch_idx=batch_idx)

#----------------------------------------------------------------------------
