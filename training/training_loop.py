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
- Every file except the appended logs (stats.jsonl, metric-*.jsonl) is written atomically
  (temporary file, then rename); a resumed run cuts stats.jsonl back to its checkpoint.

Layout: `training_loop()` is set-up (`setup`), then `training_step` per iteration and
`end_of_tick` (status line, snapshots, metrics, logs, resume checkpoint) when a tick is due.
The options are one read-only EasyDict `c`; what set-up builds (modules, loss, phases, data
stream, grids, logs) is `run`; the counters are `run.state`, a `checkpoint.RunState` that
every resume checkpoint holds whole. The run's files other than images (names, resume
checkpoints, RNG state, starting from a network file, keeping the directory whole) are
training/checkpoint.py's; image grids are written by painting/images.py and painting/paint.py.
"""

import copy
import dataclasses
import json
import os
import random
import time
import zipfile
from typing import Callable

import numpy as np
import psutil
import torch

import dnnlib
from painting import latents, paintings, pictures
from torch_utils import distributed
from torch_utils import misc
from torch_utils import persistence
from torch_utils import training_stats
from training import checkpoint
from training.augment import ada_update
from training.checkpoint import reporting_full_disk, snapshot_name
from training.progress import ProgressNotes
from training.dataset import InfiniteSampler
from training.loss import autocast_context

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

#----------------------------------------------------------------------------
# The snapshot grids.

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

#----------------------------------------------------------------------------
# The parts of one training iteration and one tick.

def setup_phases(params: dict, opt_kwargs: dict, reg_intervals: dict) -> tuple[list, dict]:
    """The phases of G and D (lazy regularisation, StyleGAN2 section 3.1: with an interval N,
    `main` and `reg` phases share one optimiser whose lr and betas are scaled by N/(N+1); None
    = one `both` phase). Returns (phases, {'G_opt': ..., 'D_opt': ...})."""
    phases = []
    optimizers = {}
    for name in ('G', 'D'):
        if len(params[name]) == 0:
            raise ValueError(f'{name} has no trainable parameters')
        kwargs = dnnlib.EasyDict(opt_kwargs[name])
        if 'betas' in kwargs:
            kwargs.betas = [float(beta) for beta in kwargs.betas]   # JSON may hold 0 for 0.0.
        interval = reg_intervals[name]
        if interval is not None:
            mb_ratio = interval / (interval + 1)
            kwargs.lr = kwargs.lr * mb_ratio
            kwargs.betas = [beta ** mb_ratio for beta in kwargs.betas]
        opt = dnnlib.util.construct_class_by_name(params=params[name], **kwargs)
        optimizers[f'{name}_opt'] = opt
        if interval is None:
            phases.append(dnnlib.EasyDict(name=name + 'both', params=params[name], opt=opt, interval=1))
        else:
            phases.append(dnnlib.EasyDict(name=name + 'main', params=params[name], opt=opt, interval=1))
            phases.append(dnnlib.EasyDict(name=name + 'reg', params=params[name], opt=opt, interval=interval))
    return phases, optimizers

DATA_ERRORS = (OSError, KeyError, zipfile.BadZipFile)    # What reading a changed or damaged --data raises (dataset.py: IOError).

def open_training_set(training_set_kwargs: dict):
    """The training set; a dataset that no longer reads (changed after train.py checked it)
    stops the run with one line (checkpoint.RunStopped)."""
    try:
        return dnnlib.util.construct_class_by_name(**training_set_kwargs)
    except (*DATA_ERRORS, ValueError) as err:   # (The constructor's size checks raise ValueError.)
        raise checkpoint.RunStopped(f'the training data no longer reads as at the start ({_last_line(err)})') from None

def next_batch(iterator, training_set_kwargs: dict):
    """The next batch; an image that no longer reads (the data was replaced or damaged after
    the start) stops the run with one line naming it."""
    try:
        return next(iterator)
    except DATA_ERRORS as err:
        raise checkpoint.RunStopped(f'--data={training_set_kwargs.get("path")}: the training data changed or was damaged after the '
                                    f'start ({_last_line(err)})') from None

def _last_line(err: Exception) -> str:
    """The message of an error, also when a DataLoader worker wrapped it in its traceback."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[-1] if lines else type(err).__name__)[:300]

@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, ema_kimg: float, ema_rampup: float | None, cur_nimg: int, batch_size: int) -> None:
    """G_ema's parameters averaged with a half-life of ema_kimg (at most cur_nimg * ema_rampup
    images while ramping up); its buffers copied."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    ema_beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, ema_beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)

def tick_status(cur_tick, cur_nimg, total_sec, tick_start_nimg, tick_sec, maintenance_sec, device, augment_pipe, nonfinite_collector) -> list[str]:
    """The tick's status line (and a warning line when values were not finite), reporting the
    same figures to training_stats."""
    nonfinite_collector.update()
    num_nonfinite_losses = sum(int(round(nonfinite_collector.mean(n) * nonfinite_collector.num(n)))
                               for n in nonfinite_collector.names() if n.startswith('Loss/') and nonfinite_collector.num(n) > 0)
    num_nonfinite_grads = int(round(nonfinite_collector.mean('Progress/nonfinite_grads') * nonfinite_collector.num('Progress/nonfinite_grads'))) \
        if nonfinite_collector.num('Progress/nonfinite_grads') > 0 else 0
    fields = []
    fields += [f"tick {training_stats.report0('Progress/tick', cur_tick):<5d}"]
    fields += [f"kimg {training_stats.report0('Progress/kimg', cur_nimg / 1e3):<8.1f}"]
    fields += [f"time {dnnlib.util.format_time(training_stats.report0('Timing/total_sec', total_sec)):<12s}"]
    fields += [f"sec/tick {training_stats.report0('Timing/sec_per_tick', tick_sec):<7.1f}"]
    fields += [f"sec/kimg {training_stats.report0('Timing/sec_per_kimg', tick_sec / max(cur_nimg - tick_start_nimg, 1) * 1e3):<7.2f}"]
    fields += [f"maintenance {training_stats.report0('Timing/maintenance_sec', maintenance_sec):<6.1f}"]
    fields += [f"cpumem {training_stats.report0('Resources/cpu_mem_gb', psutil.Process(os.getpid()).memory_info().rss / 2**30):<6.2f}"]
    if device.type == 'cuda':
        fields += [f"gpumem {training_stats.report0('Resources/peak_gpu_mem_gb', torch.cuda.max_memory_allocated(device) / 2**30):<6.2f}"]
        fields += [f"reserved {training_stats.report0('Resources/peak_gpu_mem_reserved_gb', torch.cuda.max_memory_reserved(device) / 2**30):<6.2f}"]
        torch.cuda.reset_peak_memory_stats(device)
    fields += [f"augment {training_stats.report0('Progress/augment', float(augment_pipe.p.cpu()) if augment_pipe is not None else 0):.3f}"]
    if not (num_nonfinite_losses or num_nonfinite_grads):
        return [' '.join(fields)]
    fields += [f'nonfinite {num_nonfinite_losses}/{num_nonfinite_grads}']
    return [' '.join(fields), f'Warning: {num_nonfinite_losses} non-finite loss values and {num_nonfinite_grads} non-finite gradient '
            'entries this tick; the gradients were set to 0 (NaN) or +-1e5 (inf) before the optimiser steps']

def open_logs(run_dir: str, resumed_tick: int | None, resumed_nimg: int | None, say: Callable) -> tuple:
    """(stats.jsonl opened for appending, a TensorBoard writer or None), after removing partial
    files of an interrupted write and, on resume, the lines after the checkpoint's tick. On
    resume the writer's first event tells TensorBoard to hide the scalars of earlier event files
    from the step after the checkpoint's onwards (`purge_step`; a step is a whole kimg, as
    upstream's, so ticks shorter than 1 kimg that share the checkpoint's step stay twice)."""
    stale = checkpoint.remove_stale_temporaries(run_dir)
    if stale:
        say(f'Removed {len(stale)} partial file(s) left by an interrupted write: {", ".join(stale)}')
    if resumed_tick is not None:
        dropped = checkpoint.cut_stats_jsonl(os.path.join(run_dir, 'stats.jsonl'), next_tick=resumed_tick)
        if dropped:
            say(f'stats.jsonl: removed {dropped} line(s) written after the checkpoint (tick {resumed_tick} onwards); they are redone')
    stats_jsonl = open(os.path.join(run_dir, 'stats.jsonl'), 'at')
    stats_tfevents = None
    try:
        import torch.utils.tensorboard as tensorboard
        purge_step = int(resumed_nimg / 1e3) + 1 if resumed_nimg is not None else None
        stats_tfevents = tensorboard.SummaryWriter(run_dir, purge_step=purge_step)
    except ImportError as err:
        say(f'Skipping tfevents export: {err}')
    return stats_jsonl, stats_tfevents

def write_logs(stats_jsonl, stats_tfevents, stats_dict: dict, stats_metrics: dict, cur_nimg: int, start_time: float, last_state: str | None) -> None:
    """One line of stats.jsonl and the TensorBoard scalars of this tick (rank 0; others pass None)."""
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
    """Train; return the final networks and counters. The body is the three parts of every
    training loop: setup(), then training_step() per iteration and end_of_tick() when a tick is
    due; the run's counters live in one checkpoint.RunState, which resume checkpoints hold."""
    c = dnnlib.EasyDict(locals())     # The options (training_options.json records them), read-only below.
    run = setup(c)
    state = run.state
    while state.cur_nimg < c.total_kimg * 1000 or state.batch_idx == 0:
        training_step(c, run)
        run.notes.toward_tick(state.cur_tick, state.cur_nimg, run.tick_start_nimg, c.kimg_per_tick)
        done = state.cur_nimg >= c.total_kimg * 1000
        if done or state.cur_tick == 0 or state.cur_nimg >= run.tick_start_nimg + c.kimg_per_tick * 1000:
            if end_of_tick(c, run, done):
                break
    for log in (run.stats_jsonl, run.stats_tfevents):
        if log is not None:
            log.close()
    run.say()
    run.say('Exiting...')
    return dnnlib.EasyDict(**run.modules, cur_nimg=state.cur_nimg, cur_tick=state.cur_tick, batch_idx=state.batch_idx)

#----------------------------------------------------------------------------
# Set-up: devices, data, networks, resume, loss and phases, the data stream, grids, logs.

def setup_device(c: dnnlib.EasyDict) -> torch.device:
    """This process's torch device, with the backend switches of the options set."""
    device = torch.device(c.device)
    if device.type == 'cuda':
        if device.index is None: # 'cuda' = the current device; set_device needs an index.
            device = torch.device('cuda', torch.cuda.current_device())
        torch.cuda.set_device(device)
    torch.backends.cudnn.benchmark = c.cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = c.allow_tf32  # Set explicitly here, not at import time.
    torch.backends.cudnn.allow_tf32 = c.allow_tf32
    autocast_context(device, c.precision)               # fp16 on CPU -> ValueError before any work.
    return device

def build_networks(c: dnnlib.EasyDict, training_set, device: torch.device) -> tuple[dict, dict]:
    """(modules G, D, G_ema, augment_pipe or None; the parameters each optimiser trains), built
    identically on every rank (seeded by random_seed alone; broadcast after set-up anyway)."""
    seed_global_rngs(derive_seed(c.random_seed, STREAM_INIT))
    common_kwargs = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels)
    G = dnnlib.util.construct_class_by_name(**c.G_kwargs, **common_kwargs).train().to(device)
    D = dnnlib.util.construct_class_by_name(**c.D_kwargs, **common_kwargs).train().to(device)
    # What each optimiser trains: the parameters a module leaves trainable after its own
    # freezing (FPA/U-Net train_fpa=False, Freeze-D). Phases toggle requires_grad of these only.
    trainable = dict(G=[p for p in G.parameters() if p.requires_grad], D=[p for p in D.parameters() if p.requires_grad])
    G.requires_grad_(False)
    D.requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    augment_pipe = None
    if c.augment_kwargs is not None and (c.augment_p > 0 or c.ada_target is not None):
        augment_pipe = dnnlib.util.construct_class_by_name(**c.augment_kwargs).train().requires_grad_(False).to(device)
        augment_pipe.p.copy_(torch.as_tensor(c.augment_p))
    return dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe), trainable

def start_state(c: dnnlib.EasyDict, modules: dict, say: Callable) -> tuple[checkpoint.RunState, dict | None]:
    """(the run's state, the resume checkpoint's data or None): a new run, one continued from
    c.resume_state, or a new run from the weights of c.resume_pkl (copied into the modules)."""
    state = checkpoint.RunState(run_id=checkpoint.new_run_id(), random_seed=c.random_seed, batch_size=c.batch_size, num_gpus=c.num_gpus)
    if c.resume_state is not None:
        say(f'Resuming from "{c.resume_state}"')
        data = checkpoint.load_resume_state(c.resume_state)
        state = checkpoint.RunState.from_checkpoint(data, c.resume_state)
        written = dict(batch_size=state.batch_size, num_gpus=state.num_gpus, random_seed=state.random_seed)
        if written != dict(batch_size=c.batch_size, num_gpus=c.num_gpus, random_seed=c.random_seed):
            say(f'Warning: the checkpoint was written with {", ".join(f"{k}={v}" for k, v in written.items())}; '
                'this run differs, so it continues training but does not reproduce an uninterrupted run')
            state.batch_size, state.num_gpus, state.random_seed = c.batch_size, c.num_gpus, c.random_seed
        return state, data
    if c.resume_pkl is not None:
        say(f'Starting from the weights in "{c.resume_pkl}"')
        checkpoint.copy_from_network_file(c.resume_pkl, {name: modules[name] for name in ('G', 'D', 'G_ema')})
        checkpoint.align_frozen_fpa(modules['G'], modules['G_ema'])
    return state, None

def setup_grids(c: dnnlib.EasyDict, run: dnnlib.EasyDict, resumed: bool) -> None:
    """The fixed latents of the image and painting grids (rank 0); reals.png and fakes_init.png
    for a new run (a resumed run keeps its files)."""
    G_ema, device = run.modules['G_ema'], run.device
    run.grid_size = run.grid_z = run.grid_c = run.paint_z = run.paint_c = None
    if c.rank == 0 and c.image_snapshot_ticks is not None:
        run.say('Exporting sample images...')
        run.grid_size, images, labels = setup_snapshot_image_grid(training_set=run.training_set, random_seed=c.random_seed)
        grid_gen = torch.Generator().manual_seed(derive_seed(c.random_seed, STREAM_GRID))
        grid_batch = max(c.batch_gpu, GRID_BATCH)
        run.grid_z = torch.randn([labels.shape[0], G_ema.z_dim], generator=grid_gen).to(device).split(grid_batch)
        run.grid_c = torch.from_numpy(labels).to(device).split(grid_batch)
        if not resumed:
            with reporting_full_disk(os.path.join(c.run_dir, 'reals.png'), None):
                pictures.save_image_grid(images, os.path.join(c.run_dir, 'reals.png'), drange=(0, 255), grid_size=run.grid_size)
            grid = run.notes.iterate(zip(run.grid_z, run.grid_c), len(run.grid_z), 'fakes_init.png batches')
            images = torch.cat([G_ema(z=z, c=c_, noise_mode='const').cpu() for z, c_ in grid])
            with reporting_full_disk(os.path.join(c.run_dir, 'fakes_init.png'), None):
                pictures.save_image_grid(images, os.path.join(c.run_dir, 'fakes_init.png'), drange=(-1, 1), grid_size=run.grid_size)
    if c.rank == 0 and paintings.paints(G_ema):
        run.paint_z = latents.seeds_to_z(c.paint_seeds, G_ema.z_dim, device=device)     # The latents of generate.py --seeds.
        label_gen = torch.Generator().manual_seed(derive_seed(c.random_seed, STREAM_GRID, 1))
        run.paint_c = torch.stack([torch.from_numpy(run.training_set.get_label(int(i)))
                                   for i in torch.randint(len(run.training_set), [len(c.paint_seeds)], generator=label_gen)]).to(device)

def setup(c: dnnlib.EasyDict) -> dnnlib.EasyDict:
    """Everything the steps and ticks use: modules, loss, phases, the data stream, grids, logs,
    and the run's state (new, or restored whole from c.resume_state)."""
    run = dnnlib.EasyDict(start_time=time.time(), say=c.print_fn if c.rank == 0 else (lambda *_args, **_kwargs: None))
    say = run.say
    run.device = setup_device(c)
    training_stats.reset()
    training_stats.init_multiprocessing(rank=c.rank, sync_device=(run.device if c.num_gpus > 1 else None))
    run.batch_per_gpu = c.batch_size // c.num_gpus
    if c.batch_size % c.num_gpus != 0 or run.batch_per_gpu % c.batch_gpu != 0:
        raise ValueError(f'batch_size={c.batch_size} must be a multiple of num_gpus * batch_gpu = {c.num_gpus} * {c.batch_gpu}')
    run.num_rounds = run.batch_per_gpu // c.batch_gpu

    say('Loading training set...')
    run.training_set = open_training_set(c.training_set_kwargs)
    say(f'Num images:  {len(run.training_set)}')
    say(f'Image shape: {run.training_set.image_shape}')
    say(f'Label shape: {run.training_set.label_shape}')
    say()
    say('Constructing networks...')
    run.modules, trainable = build_networks(c, run.training_set, run.device)
    G, D = run.modules['G'], run.modules['D']
    run.state, resumed = start_state(c, run.modules, say)   # The networks now, the rest once the loss and optimisers exist.
    if c.rank == 0:     # Summaries: one forward of G and D on a batch_gpu of zeros.
        z = torch.zeros([c.batch_gpu, G.z_dim], device=run.device)
        c_zeros = torch.zeros([c.batch_gpu, G.c_dim], device=run.device)
        img = misc.print_module_summary(G, [z, c_zeros], print_fn=say)
        misc.print_module_summary(D, [img, c_zeros], print_fn=say)

    say('Setting up training phases...')
    run.loss = dnnlib.util.construct_class_by_name(device=run.device, G=G, D=D, augment_pipe=run.modules['augment_pipe'],
                                                   precision=c.precision, **c.loss_kwargs)
    run.phases, run.optimizers = setup_phases(trainable, dict(G=c.G_opt_kwargs, D=c.D_opt_kwargs), dict(G=c.G_reg_interval, D=c.D_reg_interval))
    run.ada_stats = None
    if c.ada_target is not None and run.modules['augment_pipe'] is not None:
        run.ada_stats = training_stats.Collector(regex='Loss/signs/real')
    if resumed is not None:
        checkpoint.restore_resume_state(resumed, c.resume_state, run.modules, run.optimizers, run.loss)
        if run.ada_stats is not None:
            run.ada_stats.add_pending(resumed['ada_pending'], run.device)
    for module in run.modules.values():    # The same weights on every process.
        if module is not None:
            distributed.broadcast_module(module)
    sampler = InfiniteSampler(dataset=run.training_set, rank=c.rank, num_replicas=c.num_gpus, seed=c.random_seed,
                              start_idx=run.state.batch_idx * run.batch_per_gpu)   # Items this rank has already seen.
    loader_kwargs = dict(c.data_loader_kwargs)
    if loader_kwargs.get('num_workers', 0) == 0:
        loader_kwargs.pop('prefetch_factor', None)
    loader_kwargs['pin_memory'] = run.device.type == 'cuda'
    run.training_set_iterator = iter(torch.utils.data.DataLoader(dataset=run.training_set, sampler=sampler,
                                                                 batch_size=run.batch_per_gpu, **loader_kwargs))
    run.notes = ProgressNotes(say)          # Progress lines in the silent stretches (sample grid, toward a tick).
    run.phase_timer = training_stats.PhaseTimer(run.device)
    setup_grids(c, run, resumed=resumed is not None)

    say('Initializing logs...')
    run.stats_collector = training_stats.Collector(regex='.*')
    if resumed is not None:
        run.stats_collector.restore_kept(resumed.get('stats_kept', {}))   # (Checkpoints before it: nothing kept.)
    run.nonfinite_collector = training_stats.Collector(regex=r'Loss/nonfinite/.*|Progress/nonfinite_grads', keep_previous=False)
    run.stats_metrics = dict()
    run.stats_jsonl = run.stats_tfevents = None
    if c.rank == 0:
        run.stats_jsonl, run.stats_tfevents = open_logs(c.run_dir, resumed_tick=run.state.cur_tick if resumed is not None else None,
                                                        resumed_nimg=run.state.cur_nimg if resumed is not None else None, say=say)
        if resumed is not None and checkpoint.cut_metric_jsonl(c.run_dir, c.resume_state):
            say('metric-*.jsonl: removed the lines of snapshots written after the checkpoint; they are redone')

    say(f'Training for {c.total_kimg} kimg...')
    say()
    run.tick_start_nimg = run.state.cur_nimg
    run.tick_start_time = time.time()
    run.maintenance_time = run.tick_start_time - run.start_time
    run.tick_end_time = run.start_time      # The state's elapsed_sec counts this process's time from here.
    if c.progress_fn is not None:
        c.progress_fn(run.state.cur_nimg // 1000, c.total_kimg)
    if resumed is not None and run.state.cur_nimg >= c.total_kimg * 1000:
        say(f'Nothing to do: the checkpoint is at {run.state.cur_nimg / 1e3:.1f} kimg, total_kimg={c.total_kimg}')
    return run

#----------------------------------------------------------------------------
# One training iteration.

def training_step(c: dnnlib.EasyDict, run: dnnlib.EasyDict) -> None:
    """One iteration over the global batch: the phases (with their lazy-regularisation
    intervals), G_ema, the counters, and ADA's p every ada_interval iterations."""
    state, device, batch_gpu = run.state, run.device, c.batch_gpu
    G = run.modules['G']

    # Every random draw of this step is a function of (random_seed, rank, batch_idx).
    seed_global_rngs(derive_seed(c.random_seed, STREAM_RANK, c.rank, state.batch_idx))
    batch_gen = torch.Generator().manual_seed(derive_seed(c.random_seed, STREAM_BATCH, state.batch_idx))
    my_slice = slice(c.rank * run.batch_per_gpu, (c.rank + 1) * run.batch_per_gpu)

    # Fetch training data: reals from this rank's shard of the stream, latents and fake
    # labels (drawn from the dataset's labels) as this rank's slice of the global batch.
    phase_real_img, phase_real_c = next_batch(run.training_set_iterator, c.training_set_kwargs)
    phase_real_img = (phase_real_img.to(device).to(torch.float32) / 127.5 - 1).split(batch_gpu)
    phase_real_c = phase_real_c.to(device).split(batch_gpu)
    all_gen_z = torch.randn([len(run.phases), c.batch_size, G.z_dim], generator=batch_gen)
    all_gen_idx = torch.randint(len(run.training_set), [len(run.phases), c.batch_size], generator=batch_gen)
    all_gen_z = [z[my_slice].to(device).split(batch_gpu) for z in all_gen_z]
    all_gen_c = [torch.from_numpy(np.stack([run.training_set.get_label(int(i)) for i in idx[my_slice]])).to(device).split(batch_gpu)
                 for idx in all_gen_idx]

    # Execute training phases.
    for phase, phase_gen_z, phase_gen_c in zip(run.phases, all_gen_z, all_gen_c):
        if state.batch_idx % phase.interval != 0:
            continue
        run.phase_timer.start(phase.name)
        phase.opt.zero_grad(set_to_none=True)
        for p in phase.params:
            p.requires_grad_(True)
        for real_img, real_c, gen_z, gen_c in zip(phase_real_img, phase_real_c, phase_gen_z, phase_gen_c):
            run.loss.accumulate_gradients(phase=phase.name, real_img=real_img, real_c=real_c, gen_z=gen_z, gen_c=gen_c,
                                          gain=phase.interval / run.num_rounds, cur_nimg=state.cur_nimg)
        for p in phase.params:
            p.requires_grad_(False)
        num_nonfinite = distributed.sync_gradients(phase.params)
        training_stats.report0('Progress/nonfinite_grads', num_nonfinite)
        phase.opt.step()
        run.phase_timer.stop()

    # Update G_ema, the counters and ADA's p.
    update_ema(run.modules['G_ema'], G, ema_kimg=c.ema_kimg, ema_rampup=c.ema_rampup, cur_nimg=state.cur_nimg, batch_size=c.batch_size)
    state.cur_nimg += c.batch_size
    state.batch_idx += 1
    if run.ada_stats is not None and state.batch_idx % c.ada_interval == 0:
        run.ada_stats.update()
        if run.ada_stats.num('Loss/signs/real') > 0:    # p moves by the sign of E[sign(D(real))] - target.
            ada_update(run.modules['augment_pipe'].p, run.ada_stats['Loss/signs/real'], c.ada_target, c.batch_size * c.ada_interval, c.ada_kimg)

#----------------------------------------------------------------------------
# The end of a tick: status line, snapshots, metrics, logs, the resume checkpoint.

def save_snapshots(c: dnnlib.EasyDict, run: dnnlib.EasyDict, done: bool, is_snapshot: bool) -> tuple[str | None, dict | None]:
    """The image grid, the network snapshot and the painting grid this tick writes (rank 0),
    and what the resume checkpoint takes now (before the metrics draw numbers): returns
    (network snapshot path, resume parts), both None except on rank 0 at a network snapshot."""
    state, last = run.state, run.state.last_checkpoint
    if c.rank == 0 and c.image_snapshot_ticks is not None and (done or state.cur_tick % c.image_snapshot_ticks == 0):
        images = torch.cat([run.modules['G_ema'](z=z, c=c_, noise_mode='const').cpu() for z, c_ in zip(run.grid_z, run.grid_c)])
        fakes_png = os.path.join(c.run_dir, snapshot_name('fakes', state.cur_nimg))
        with reporting_full_disk(fakes_png, last):
            pictures.save_image_grid(images, fakes_png, drange=(-1, 1), grid_size=run.grid_size)
    if not is_snapshot:
        return None, None
    if c.num_gpus > 1:
        for module in run.modules.values():
            if module is not None:
                misc.check_ddp_consistency(module, ignore_regex=r'.*\.[^.]+_(avg|ema)')
    ada_pending = run.ada_stats.pending() if run.ada_stats is not None else {}
    if c.rank != 0:
        return None, None
    snapshot_pkl = os.path.join(c.run_dir, snapshot_name('network-snapshot', state.cur_nimg))
    with reporting_full_disk(snapshot_pkl, last):
        persistence.save_network(snapshot_pkl, **run.modules, training_set_kwargs=c.training_set_kwargs)
    resume_parts = dict(state=dataclasses.replace(state, cur_tick=state.cur_tick + 1),   # As the resumed run starts.
                        ada_pending=ada_pending, rng=checkpoint.get_rng_states())
    if run.paint_z is not None:
        paint_png = os.path.join(c.run_dir, snapshot_name('paint', state.cur_nimg))
        with reporting_full_disk(paint_png, last):
            paintings.save_paint_grid(run.modules['G_ema'], run.paint_z, run.paint_c, paint_png)
    return snapshot_pkl, resume_parts

def end_of_tick(c: dnnlib.EasyDict, run: dnnlib.EasyDict, done: bool) -> bool:
    """Everything a tick ends with, in order: status line, abort check, snapshots, metrics,
    logs, resume checkpoint; then the next tick starts. Returns whether training is done."""
    state, say = run.state, run.say

    # Print the status line, accumulating the same information in training_stats.
    tick_end_time = time.time()
    state.elapsed_sec += tick_end_time - run.tick_end_time
    run.tick_end_time = tick_end_time
    for line in tick_status(state.cur_tick, state.cur_nimg, state.elapsed_sec, run.tick_start_nimg, tick_end_time - run.tick_start_time,
                            run.maintenance_time, run.device, run.modules['augment_pipe'], run.nonfinite_collector):
        say(line)
    checkpoint.check_finite_weights(run.modules, state.cur_nimg, state.last_checkpoint)   # Before any file of the tick is written.

    # Check for abort.
    if not done and c.abort_fn is not None and distributed.broadcast_object(bool(c.abort_fn())):
        done = True
        say()
        say('Aborting...')

    # Snapshots, then metrics.
    is_snapshot = c.network_snapshot_ticks is not None and (done or state.cur_tick % c.network_snapshot_ticks == 0)
    snapshot_pkl, resume_parts = save_snapshots(c, run, done, is_snapshot)
    if is_snapshot and len(c.metrics) > 0:
        say('Evaluating metrics...')
        from metrics import metric_main   # Imported only when metrics are requested.
        for metric in c.metrics:
            result_dict = metric_main.calc_metric(metric=metric, G=run.modules['G_ema'], dataset_kwargs=c.training_set_kwargs,
                                                  num_gpus=c.num_gpus, rank=c.rank, device=run.device, detectors=c.metric_detectors)
            if c.rank == 0:
                with reporting_full_disk(os.path.join(c.run_dir, f'metric-{metric}.jsonl'), state.last_checkpoint):
                    metric_main.report_metric(result_dict, run_dir=c.run_dir, snapshot_pkl=snapshot_pkl)
            run.stats_metrics.update(result_dict.results)

    # Collect statistics and update the logs.
    training_stats.report0('Timing/total_hours', state.elapsed_sec / (60 * 60))    # (Upstream's, for plots.)
    training_stats.report0('Timing/total_days', state.elapsed_sec / (24 * 60 * 60))
    run.stats_collector.update()
    resume_bytes = None
    if resume_parts is not None:      # Nothing trains between the snapshot and here: the modules are as they were.
        resume_bytes = checkpoint.encode_resume_state(modules=run.modules, optimizers=run.optimizers, loss=run.loss, **resume_parts,
                                                      stats_kept=run.stats_collector.kept())
    write_logs(run.stats_jsonl, run.stats_tfevents, run.stats_collector.as_dict(), run.stats_metrics, state.cur_nimg, run.start_time,
               state.last_checkpoint)
    if c.progress_fn is not None:
        c.progress_fn(state.cur_nimg // 1000, c.total_kimg)

    # The resume checkpoint, after the tick's log line: a kill before this point resumes from
    # the previous checkpoint and redoes the tick, cutting its line (checkpoint.cut_stats_jsonl);
    # a kill after it finds the line in place. Only the newest checkpoint of this run is kept.
    if resume_bytes is not None:
        resume_path = os.path.join(c.run_dir, snapshot_name('resume', state.cur_nimg))
        state.last_checkpoint = checkpoint.write_resume_state(resume_path, resume_bytes, previous=state.last_checkpoint)

    # The next tick.
    state.cur_tick += 1
    run.tick_start_nimg = state.cur_nimg
    run.tick_start_time = time.time()
    run.maintenance_time = run.tick_start_time - tick_end_time
    return done

#----------------------------------------------------------------------------
