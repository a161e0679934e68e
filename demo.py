"""The demo: from a fresh clone on a CPU, a Fast Weight Painter learns to draw clothing.

    make demo                     # = python demo.py, after the Makefile's set-up
    python demo.py [--source=DIR_OR_ZIP] [--kimg=40] [--outdir=demo]

Steps, each one of the user-facing scripts:
  1. dataset_tool.py: Fashion-MNIST (Debian package dataset-fashion-mnist, files under
     /usr/share/datasets/fashion-mnist) -> demo/fashion-mnist-32.zip (32x32 greyscale).
     Without the package, --source takes any folder or zip of images instead.
  2. train.py --cfg=fpa-cpu --precision=bf16: the paper's FPA scaled down for a CPU
     (docs/training.md) with the StyleGAN2-ADA machinery, for --kimg thousand images
     (40 kimg: a few minutes on 2 idle cores; bench/results.md has the speed).
  3. generate.py: painting figures (rank-1 updates over partial images) and painting
     animations (GIF/WebP) of four seeds from the last snapshot; the grid of samples is
     the training run's own fakesKKKKKK.png.
It prints where every file is. Re-running with a larger --kimg continues the same training
run exactly (--resume=latest).
"""

import glob
import os
import subprocess
import sys
import time

import click

FASHION_MNIST = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz'
REPO = os.path.dirname(os.path.abspath(__file__))

def run(args: list[str]) -> None:
    """Run one of the repository's scripts with this interpreter; stop the demo if it fails."""
    print(f'\n$ python {" ".join(args)}', flush=True)
    proc = subprocess.run([sys.executable] + args, cwd=REPO)
    if proc.returncode != 0:
        raise click.ClickException(f'{args[0]} failed (exit {proc.returncode}); see its message above')

@click.command()
@click.option('--source', default=None, metavar='DIR|ZIP|FILE', help=f'Images to train on  [default: {FASHION_MNIST}]')
@click.option('--outdir', default='demo', show_default=True, metavar='DIR', help='Where the demo writes everything')
@click.option('--kimg', default=40.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help='Training length in thousands of images')
@click.option('--cfg', default='fpa-cpu', show_default=True, help='Training preset')
def main(source, outdir, kimg, cfg):
    t_start = time.time()
    if source is None:
        if not os.path.isfile(FASHION_MNIST):
            raise click.ClickException(
                f'Fashion-MNIST not found at {FASHION_MNIST}. Install it with '
                f'"apt-get install dataset-fashion-mnist" (as root), or run the demo on your own images: '
                f'python demo.py --source=DIR_OR_ZIP')
        source = FASHION_MNIST
    source, outdir = os.path.abspath(source), os.path.abspath(outdir)   # Relative to where the demo is started, not the repository.
    os.makedirs(outdir, exist_ok=True)

    # 1. The dataset (built once per source; the source it was made from is recorded beside it).
    data = os.path.join(outdir, 'fashion-mnist-32.zip' if source == FASHION_MNIST else 'dataset-32.zip')
    record = data + '.source'
    if os.path.isfile(data):
        made_from = open(record).read().strip() if os.path.isfile(record) else None
        if made_from != source and not (made_from is None and source == FASHION_MNIST):   # (Its name says what it was made from.)
            raise click.ClickException(f'--outdir={outdir} already holds {os.path.basename(data)}, made from '
                                       f'{made_from or "a source this demo did not record"}, not from --source={source}; '
                                       'give another --outdir (its training run would continue on the old data)')
    else:
        resolution = [] if source == FASHION_MNIST else ['--resolution=32x32', '--transform=center-crop']
        run(['dataset_tool.py', f'--source={source}', f'--dest={data}'] + resolution)   # MNIST files: 28 -> 32 by padding.
        with open(record, 'w') as f:
            f.write(source + '\n')

    # 2. Training; a second run of the demo continues the first.
    runs = os.path.join(outdir, 'runs')
    resume = ['--resume=latest'] if glob.glob(os.path.join(runs, '*', 'resume-*.pt')) else []
    run(['train.py', f'--outdir={runs}', f'--cfg={cfg}', f'--data={data}', '--metrics=none', '--precision=bf16',
         f'--kimg={kimg:g}', '--tick=1', '--snap=4', '--workers=1'] + resume)
    snapshots = sorted(glob.glob(os.path.join(runs, '*', 'network-snapshot-*.pkl')), key=os.path.getmtime)
    if not snapshots:
        raise click.ClickException(f'training wrote no network snapshot under {runs}')
    network = snapshots[-1]
    run_dir = os.path.dirname(network)

    fakes = sorted(glob.glob(os.path.join(run_dir, 'fakes[0-9]*.png')))[-1]

    # 3. Pictures of the painting.
    images = os.path.join(outdir, 'images')
    run(['generate.py', f'--network={network}', '--seeds=0-3', f'--outdir={images}', '--paint', '--paint-animation', '--overwrite'])

    print(f'\nDone in {(time.time() - t_start) / 60:.1f} minutes.')
    print(f'  training run:        {run_dir}  (fakes*.png, paint*.png, log.txt, stats.jsonl)')
    print(f'  network:             {network}')
    print(f'  samples (G_ema):     {fakes}')
    print(f'  painting figures:    {os.path.join(images, "paint-seed0000.png")} ...')
    print(f'  painting animations: {os.path.join(images, "paint-seed0000.gif")} ...')

if __name__ == '__main__':
    main()
