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

The run's files other than images (names, resume checkpoints, RNG state, starting from a
network file, keeping the directory whole) are training/checkpoint.py's; image grids are
written by painting/api.py.
"""

import copy
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
from painting import api as painting_api
from torch_utils import distributed
from torch_utils import misc
from torch_utils import persistence
from torch_utils import training_stats
from training import checkpoint
from training.augment import ada_update
from training.checkpoint import reporting_full_disk, snapshot_name
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
    training_set = open_training_set(training_set_kwargs)
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
    modules = dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe)

    # Resume: the networks now, the rest once the loss and optimisers exist.
    state = None
    run_id = checkpoint.new_run_id()
    last_state = None   # The newest resume checkpoint of this run (its id): the only one pruning removes.
    if resume_state is not None:
        say(f'Resuming from "{resume_state}"')
        state = checkpoint.load_resume_state(resume_state)
        if state.get('run_id') is not None:     # Checkpoints from before run ids are never removed.
            run_id = state['run_id']
            last_state = resume_state
        if state['batch_size'] != batch_size or state['num_gpus'] != num_gpus:
            say(f'Warning: the checkpoint was written with batch_size={state["batch_size"]}, num_gpus={state["num_gpus"]}; '
                'this run differs, so it continues training but does not reproduce an uninterrupted run')
    elif resume_pkl is not None:
        say(f'Starting from the weights in "{resume_pkl}"')
        checkpoint.copy_from_network_file(resume_pkl, dict(G=G, D=D, G_ema=G_ema))

    # Summaries (rank 0): one forward of G and D on a batch_gpu of zeros.
    if rank == 0:
        z = torch.zeros([batch_gpu, G.z_dim], device=device)
        c = torch.zeros([batch_gpu, G.c_dim], device=device)
        img = misc.print_module_summary(G, [z, c], print_fn=say)
        misc.print_module_summary(D, [img, c], print_fn=say)

    # Loss and phases.
    say('Setting up training phases...')
    loss = dnnlib.util.construct_class_by_name(device=device, G=G, D=D, augment_pipe=augment_pipe, precision=precision, **loss_kwargs)
    phases, optimizers = setup_phases(dict(G=G_trainable, D=D_trainable), dict(G=G_opt_kwargs, D=D_opt_kwargs),
                                      dict(G=G_reg_interval, D=D_reg_interval))

    # Counters (from the checkpoint when resuming), the same weights on every process, the data stream.
    cur_nimg = cur_tick = batch_idx = 0
    elapsed_before = 0.0
    ada_stats = training_stats.Collector(regex='Loss/signs/real') if ada_target is not None and augment_pipe is not None else None
    if state is not None:
        checkpoint.restore_resume_state(state, resume_state, modules, optimizers, loss)
        cur_nimg, cur_tick, batch_idx = state['cur_nimg'], state['cur_tick'], state['batch_idx']
        elapsed_before = state['elapsed_sec']
        if ada_stats is not None:
            ada_stats.add_pending(state['ada_pending'], device)
    for module in modules.values():
        if module is not None:
            distributed.broadcast_module(module)
    sampler = InfiniteSampler(dataset=training_set, rank=rank, num_replicas=num_gpus, seed=random_seed,
                              start_idx=batch_idx * batch_per_gpu)   # Items this rank has already seen.
    loader_kwargs = dict(data_loader_kwargs)
    if loader_kwargs.get('num_workers', 0) == 0:
        loader_kwargs.pop('prefetch_factor', None)
    loader_kwargs['pin_memory'] = device.type == 'cuda'
    training_set_iterator = iter(torch.utils.data.DataLoader(dataset=training_set, sampler=sampler, batch_size=batch_per_gpu, **loader_kwargs))

    # Sample images and paintings of fixed latents (rank 0; a resumed run keeps its files).
    grid_size = grid_z = grid_c = paint_z = paint_c = None
    if rank == 0 and image_snapshot_ticks is not None:
        say('Exporting sample images...')
        grid_size, images, labels = setup_snapshot_image_grid(training_set=training_set, random_seed=random_seed)
        grid_gen = torch.Generator().manual_seed(derive_seed(random_seed, STREAM_GRID))
        grid_batch = max(batch_gpu, GRID_BATCH)
        grid_z = torch.randn([labels.shape[0], G.z_dim], generator=grid_gen).to(device).split(grid_batch)
        grid_c = torch.from_numpy(labels).to(device).split(grid_batch)
        if state is None:
            with reporting_full_disk(os.path.join(run_dir, 'reals.png'), None):
                painting_api.save_image_grid(images, os.path.join(run_dir, 'reals.png'), drange=(0, 255), grid_size=grid_size)
            images = torch.cat([G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(grid_z, grid_c)])
            with reporting_full_disk(os.path.join(run_dir, 'fakes_init.png'), None):
                painting_api.save_image_grid(images, os.path.join(run_dir, 'fakes_init.png'), drange=(-1, 1), grid_size=grid_size)
    if rank == 0 and painting_api.paints(G_ema):
        paint_z = painting_api.seeds_to_z(paint_seeds, G.z_dim, device=device)     # The latents of generate.py --seeds.
        label_gen = torch.Generator().manual_seed(derive_seed(random_seed, STREAM_GRID, 1))
        paint_c = torch.stack([torch.from_numpy(training_set.get_label(int(i)))
                               for i in torch.randint(len(training_set), [len(paint_seeds)], generator=label_gen)]).to(device)

    # Logs.
    say('Initializing logs...')
    stats_collector = training_stats.Collector(regex='.*')
    if state is not None:
        stats_collector.restore_kept(state.get('stats_kept', {}))   # (Checkpoints before it: nothing kept.)
    nonfinite_collector = training_stats.Collector(regex=r'Loss/nonfinite/.*|Progress/nonfinite_grads', keep_previous=False)
    stats_metrics = dict()
    stats_jsonl = stats_tfevents = None
    if rank == 0:
        stats_jsonl, stats_tfevents = open_logs(run_dir, resumed_tick=cur_tick if state is not None else None,
                                                resumed_nimg=cur_nimg if state is not None else None, say=say)
        if state is not None and checkpoint.cut_metric_jsonl(run_dir, resume_state):
            say('metric-*.jsonl: removed the lines of snapshots written after the checkpoint; they are redone')

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
        phase_real_img, phase_real_c = next_batch(training_set_iterator, training_set_kwargs)
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

        # Update G_ema, the counters and ADA's p.
        update_ema(G_ema, G, ema_kimg=ema_kimg, ema_rampup=ema_rampup, cur_nimg=cur_nimg, batch_size=batch_size)
        cur_nimg += batch_size
        batch_idx += 1
        if ada_stats is not None and batch_idx % ada_interval == 0:
            ada_stats.update()
            if ada_stats.num('Loss/signs/real') > 0:    # p moves by the sign of E[sign(D(real))] - target.
                ada_update(augment_pipe.p, ada_stats['Loss/signs/real'], ada_target, batch_size * ada_interval, ada_kimg)

        # Perform maintenance tasks once per tick.
        done = cur_nimg >= total_kimg * 1000
        if not done and cur_tick != 0 and cur_nimg < tick_start_nimg + kimg_per_tick * 1000:
            continue

        # Print the status line, accumulating the same information in training_stats.
        tick_end_time = time.time()
        total_sec = elapsed_before + tick_end_time - start_time
        for line in tick_status(cur_tick, cur_nimg, total_sec, tick_start_nimg, tick_end_time - tick_start_time, maintenance_time,
                                device, augment_pipe, nonfinite_collector):
            say(line)
        checkpoint.check_finite_weights(modules, cur_nimg, last_state)   # Before any file of the tick is written.

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
                painting_api.save_image_grid(images, fakes_png, drange=(-1, 1), grid_size=grid_size)

        # Save network snapshot, painting grid, and take the resume checkpoint (written below).
        snapshot_pkl = resume_parts = resume_bytes = None
        is_snapshot = network_snapshot_ticks is not None and (done or cur_tick % network_snapshot_ticks == 0)
        if is_snapshot:
            if num_gpus > 1:
                for module in modules.values():
                    if module is not None:
                        misc.check_ddp_consistency(module, ignore_regex=r'.*\.[^.]+_(avg|ema)')
            ada_pending = ada_stats.pending() if ada_stats is not None else {}
            if rank == 0:
                snapshot_pkl = os.path.join(run_dir, snapshot_name('network-snapshot', cur_nimg))
                with reporting_full_disk(snapshot_pkl, last_state):
                    persistence.save_network(snapshot_pkl, **modules, training_set_kwargs=training_set_kwargs)
                progress = dict(cur_nimg=cur_nimg, cur_tick=cur_tick + 1, batch_idx=batch_idx, batch_size=batch_size,
                                num_gpus=num_gpus, random_seed=random_seed, elapsed_sec=total_sec)
                resume_parts = dict(progress=progress, ada_pending=ada_pending, rng=checkpoint.get_rng_states())   # (Before the metrics draw numbers.)
                if paint_z is not None:
                    paint_png = os.path.join(run_dir, snapshot_name('paint', cur_nimg))
                    with reporting_full_disk(paint_png, last_state):
                        painting_api.save_paint_grid(G_ema, paint_z, paint_c, paint_png)

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

        # Collect statistics and update the logs.
        training_stats.report0('Timing/total_hours', total_sec / (60 * 60))    # (Upstream's, for plots.)
        training_stats.report0('Timing/total_days', total_sec / (24 * 60 * 60))
        stats_collector.update()
        if resume_parts is not None:      # Nothing trains between the snapshot and here: the modules are as they were.
            resume_bytes = checkpoint.encode_resume_state(run_id, modules, optimizers, loss, **resume_parts, stats_kept=stats_collector.kept())
        write_logs(stats_jsonl, stats_tfevents, stats_collector.as_dict(), stats_metrics, cur_nimg, start_time, last_state)
        if progress_fn is not None:
            progress_fn(cur_nimg // 1000, total_kimg)

        # The resume checkpoint, after the tick's log line: a kill before this point resumes from
        # the previous checkpoint and redoes the tick, cutting its line (checkpoint.cut_stats_jsonl);
        # a kill after it finds the line in place. Only the newest checkpoint of this run is kept.
        if resume_bytes is not None:
            resume_path = os.path.join(run_dir, snapshot_name('resume', cur_nimg))
            last_state = checkpoint.write_resume_state(resume_path, resume_bytes, previous=last_state)

        # Update state.
        cur_tick += 1
        tick_start_nimg = cur_nimg
        tick_start_time = time.time()
        maintenance_time = tick_start_time - tick_end_time
        if done:
            break

    # Done.
    for log in (stats_jsonl, stats_tfevents):
        if log is not None:
            log.close()
    say()
    say('Exiting...')
    return dnnlib.EasyDict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, cur_nimg=cur_nimg, cur_tick=cur_tick, batch_idx=batch_idx)

#----------------------------------------------------------------------------
