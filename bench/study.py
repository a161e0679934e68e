"""The study: the FPA, the two-stage FPA/U-Net and the StyleGAN2 generator, same D, loss, ADA
and wall-clock budget, on Fashion-MNIST and the Google emoji at 32x32; results into docs/results.md.

    make emoji                                         # datasets/emoji-google{32,64}.zip
    python bench/study.py                              # the defaults: what docs/results.md shows
    python bench/study.py --minutes=2 --fid-every=1 --outdir=runs/quick --docs=/tmp/results.md

Per dataset (one worker process per dataset, --threads threads each, in parallel) and per model, in turn:
  - fpa:        train.py --cfg=fpa-cpu for --minutes of training, stopped (train.py --minutes)
                every --fid-every minutes and at half the budget for an FID of the snapshot;
  - stylegan2:  the same with --gen=stylegan2 (the preset's D, loss, ADA and batch);
  - fpa-unet:   two-stage: the FPA's snapshot at half the budget, then --cfg=fpa-unet-cpu
                --freeze-fpa=1 for the other half (the U-Net is trained, the FPA stays fixed),
                scored at the --fid-every marks after half the budget;
  - the noise floor: the FID of real images that are not in the reference.
The FID: --fid-images generated images (generate.py, seeds 0..N-1) against as many real images
(the even-numbered ones of the dataset), calc_metrics.py --fakes --metrics=fid_full. Few images
make the FID high and noisy (the noise floor row shows how high); fid2k_full would cost 2,000
generated images and all reals per score, more than a 2-core machine shared with other work
gave (docs/results.md).
Every result is appended to <outdir>/<dataset>/results.jsonl as it comes; a second start skips
what is recorded and continues a stopped training run from its resume checkpoint. At the end (or
with --report-only, from what is recorded) it writes the pictures that docs/results.md shows into
docs/results/: the table (table.md: FID, kimg, sec/kimg, parameters, stripe index), FID against
minutes and against kimg per dataset, 8x8 sample grids and painting figures.
Times are training wall-clock (Timing/total_sec of stats.jsonl): FID evaluations and process
start-up are not counted.
"""

import concurrent.futures
import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile

import click

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION_MNIST = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz'
STUDY_RESOLUTION = 32     # Both datasets are 32x32.
MODELS = ('fpa', 'fpa-unet', 'stylegan2')
MODEL_LABELS = {'fpa': 'FPA', 'fpa-unet': 'FPA/U-Net (two-stage)', 'stylegan2': 'StyleGAN2 G'}
MODEL_COLOURS = {'fpa': (31, 119, 180), 'fpa-unet': (44, 160, 44), 'stylegan2': (214, 39, 40)}

# Datasets: name -> (zip under datasets/, how to build it). Fashion-MNIST is cut to its first
# 4,000 training images (a size like the emoji set's 3,786): the FID statistics of all 60,000
# would cost about two hours of Inception on one core.
DATASETS = {
    'fmnist': ('fashion-mnist32-4k.zip', ['--source=' + FASHION_MNIST, '--max-images=4000']),
    'emoji': ('emoji-google32.zip', None),     # Built by `make emoji` (npm package, see the Makefile).
}

#----------------------------------------------------------------------------

THREADS = {'n': 1}      # torch threads per script (--threads).

def python(args: list[str], log_path: str) -> str:
    """Run one of the repository's scripts (--threads threads), output appended to log_path; its stdout."""
    threads = str(THREADS['n'])
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable] + args, cwd=REPO, env=env, capture_output=True, text=True)
    with open(log_path, 'a') as log:
        log.write(f'$ python {" ".join(args)}\n{proc.stdout}{proc.stderr}\n')
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ['(no output)']
        raise RuntimeError(f'{args[0]} failed (exit {proc.returncode}): {tail[0]}; full output in {log_path}')
    return proc.stdout

def metric_value(stdout: str, metric: str) -> float:
    """The value in the JSON result line that calc_metrics.py prints."""
    for line in stdout.splitlines():
        if line.startswith('{') and f'"{metric}"' in line:
            return float(json.loads(line)['results'][metric])
    raise RuntimeError(f'calc_metrics.py printed no {metric} result')

def last_stats(run_dir: str) -> tuple[float, float]:
    """(training seconds, kimg) of the run's last stats.jsonl line."""
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        line = json.loads(f.read().strip().splitlines()[-1])
    return line['Timing/total_sec']['mean'], line['Progress/kimg']['mean']

def newest(pattern: str) -> str | None:
    paths = sorted(glob.glob(pattern))
    return paths[-1] if paths else None

class Recorder:
    """<outdir>/<dataset>/results.jsonl: one JSON object per finished step."""

    def __init__(self, path: str):
        self.path = path
        self.rows = []
        if os.path.isfile(path):
            with open(path) as f:
                self.rows = [json.loads(line) for line in f if line.strip()]

    def find(self, **keys) -> dict | None:
        return next((row for row in self.rows if all(row.get(k) == v for k, v in keys.items())), None)

    def add(self, row: dict) -> None:
        self.rows.append(row)
        with open(self.path, 'a') as f:
            f.write(json.dumps(row) + '\n')

#----------------------------------------------------------------------------

def train_and_score(dataset: str, data: str, model: str, cfg: str, marks: list[float], train_args: list[str], start: dict | None,
                    workdir: str, reference: str, fid_images: int, rec: Recorder) -> None:
    """Train `model` until each mark (minutes of training, `start`'s included) and score it there."""
    outdir = os.path.join(workdir, model)
    log = os.path.join(workdir, f'{model}.log')
    for mark in marks:
        if rec.find(model=model, minutes=mark) is not None:
            continue
        run_dir = newest(os.path.join(outdir, '[0-9]*'))
        resume = newest(os.path.join(run_dir, 'resume-*.pt')) if run_dir else None
        if resume is not None:
            done_sec = last_stats(run_dir)[0] + (start['sec'] if start else 0)
            resume_args = [f'--resume={resume}'] + (['--freeze-fpa=1'] if start else [])
        else:
            done_sec = start['sec'] if start else 0
            resume_args = [f'--resume={start["network"]}', '--freeze-fpa=1'] if start else []
        if resume is None or done_sec < mark * 60:     # (A run stopped just after this mark is scored as it is.)
            minutes = max(mark * 60 - done_sec, 1) / 60
            print(f'[study] {dataset} {model}: training to {mark:g} min ({minutes:.2f} min now)', flush=True)
            python(['train.py', f'--outdir={outdir}', f'--data={data}', f'--cfg={cfg}', '--precision=bf16', '--metrics=none',
                    '--tick=1', '--snap=100000', '--workers=1', '--kimg=100000', f'--minutes={minutes:.4f}']
                   + train_args + resume_args, log)
        run_dir = newest(os.path.join(outdir, '[0-9]*'))
        network = newest(os.path.join(run_dir, 'network-snapshot-*.pkl'))
        sec, kimg = last_stats(run_dir)
        if start:
            sec, kimg = sec + start['sec'], kimg + start['kimg']
        fid = network_fid(network, reference, fid_images, workdir, log)
        print(f'[study] {dataset} {model}: {mark:g} min, {kimg:.1f} kimg, FID {fid:.2f}', flush=True)
        rec.add(dict(model=model, minutes=mark, sec=sec, kimg=kimg, fid=fid, fid_images=fid_images, network=network,
                     run_dir=run_dir, **(dict(stage1_minutes=start['minutes']) if start else {})))

def network_fid(network: str, reference: str, fid_images: int, workdir: str, log: str) -> float:
    """FID of the network's images of seeds 0..fid_images-1 (generate.py) against the reference images."""
    fakes = os.path.join(workdir, 'fakes-scratch')
    shutil.rmtree(fakes, ignore_errors=True)
    python(['generate.py', f'--network={network}', f'--seeds=0-{fid_images - 1}', f'--outdir={fakes}', '--device=cpu'], log)
    fid = metric_value(python(['calc_metrics.py', f'--fakes={fakes}', f'--data={reference}', '--metrics=fid_full',
                               '--device=cpu', '--verbose=0'], log), 'fid_full')
    shutil.rmtree(fakes)
    return fid

def real_sets(data: str, workdir: str, fid_images: int) -> tuple[str, str]:
    """Two disjoint folders of fid_images real images each: the FID reference (even-numbered images
    of the dataset) and, for the noise floor, the odd-numbered ones."""
    folders = [os.path.join(workdir, f'real-{name}-{fid_images}') for name in ('reference', 'other')]
    if all(os.path.isdir(f) and len(os.listdir(f)) == fid_images for f in folders):
        return folders[0], folders[1]
    with zipfile.ZipFile(data) as z:
        names = sorted(n for n in z.namelist() if n.lower().endswith('.png'))
        if len(names) < 2 * fid_images:
            raise click.ClickException(f'--fid-images={fid_images}: {data} has {len(names)} images, fewer than twice that')
        for i, folder in enumerate(folders):
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
            for j, name in enumerate(names[i::2][:fid_images]):
                with open(os.path.join(folder, f'{j:06d}.png'), 'wb') as f:
                    f.write(z.read(name))
    return folders[0], folders[1]

def noise_floor(dataset: str, reference: str, other: str, fid_images: int, workdir: str, rec: Recorder) -> None:
    """The FID of real images against the reference: what a perfect generator would score with this many images."""
    if rec.find(model='real') is not None:
        return
    print(f'[study] {dataset}: noise floor ({fid_images} real vs {fid_images} other real images)', flush=True)
    fid = metric_value(python(['calc_metrics.py', f'--fakes={other}', f'--data={reference}', '--metrics=fid_full',
                               '--device=cpu', '--verbose=0'], os.path.join(workdir, 'real.log')), 'fid_full')
    rec.add(dict(model='real', fid=fid, fid_images=fid_images))

def run_dataset(dataset: str, outdir: str, minutes: float, fid_every: float, fid_images: int, models: list[str], floor: bool,
                train_args: list[str]) -> None:
    """Everything for one dataset, in turn (one worker)."""
    workdir = os.path.join(outdir, dataset)
    os.makedirs(workdir, exist_ok=True)
    data = dataset_path(dataset)
    rec = Recorder(os.path.join(workdir, 'results.jsonl'))
    reference, other = real_sets(data, workdir, fid_images)
    scoring = dict(workdir=workdir, reference=reference, fid_images=fid_images, rec=rec)
    marks = sorted({round(fid_every * i, 6) for i in range(1, int(minutes / fid_every + 1e-9) + 1)} | {minutes})
    half = minutes / 2      # The two-stage FPA/U-Net: the FPA for the first half of the budget, the U-Net for the second.
    if 'fpa' in models or 'fpa-unet' in models:
        fpa_marks = sorted(set(marks) | ({half} if 'fpa-unet' in models else set()))
        train_and_score(dataset, data, 'fpa', 'fpa-cpu', fpa_marks, train_args, None, **scoring)
    if 'stylegan2' in models:
        train_and_score(dataset, data, 'stylegan2', 'fpa-cpu', marks, ['--gen=stylegan2'] + train_args, None, **scoring)
    if 'fpa-unet' in models:
        start = rec.find(model='fpa', minutes=half)
        train_and_score(dataset, data, 'fpa-unet', 'fpa-unet-cpu', [m for m in marks if m > half], train_args, start, **scoring)
    if floor:
        noise_floor(dataset, reference, other, fid_images, workdir, rec)

def dataset_path(dataset: str) -> str:
    """The dataset's zip, built first if it can be (Fashion-MNIST); a clear error if not."""
    name, build = DATASETS[dataset]
    path = os.path.join(REPO, 'datasets', name)
    if not os.path.isfile(path):
        if build is None:
            raise click.ClickException(f'{path} not found; build it with "make emoji" (needs npm)')
        if not os.path.isfile(FASHION_MNIST):
            raise click.ClickException(f'{FASHION_MNIST} not found; as root: apt-get install dataset-fashion-mnist')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        python(['dataset_tool.py', f'--dest={path}'] + build, os.devnull)
    return path

#----------------------------------------------------------------------------
# The report: docs/results.md and its pictures, from the recorded results.

def parameter_counts(network: str) -> tuple[int, int]:
    """(all parameters of G, trainable ones: the U-Net alone for a frozen FPA)."""
    sys.path.insert(0, REPO)
    import networks
    G = networks.load_network(network).G_ema
    total = sum(p.numel() for p in G.parameters())
    frozen = 0
    if getattr(G, 'synthesis', None) is not None and getattr(G.synthesis, 'train_fpa', True) is False:
        frozen = sum(p.numel() for name, p in G.named_parameters() if 'unet' not in name)
    return total, total - frozen

STRIPE_SAMPLES = 256
TABLE_BEGIN, TABLE_END = '<!-- study table: begin -->', '<!-- study table: end -->'

def stripe_index(images, low_cut: int = 2) -> float:
    """The share on the two axes of frequency space of an image's power (2D FFT of the
    luminance), leaving out the lowest frequencies (|kx|, |ky| <= low_cut cycles per image: the
    object's overall shape); averaged over the images. A band that spans the full width or
    height has all its power on the axes (index 1). Real images have some there too (edges
    along x and y), so compare with the real row."""
    import torch
    x = images.float().mean(dim=1)                              # [N, H, W] luminance.
    power = torch.fft.fft2(x).abs().square()
    H, W = x.shape[1:]
    fy = torch.fft.fftfreq(H).abs()[:, None] * H                # Cycles per image.
    fx = torch.fft.fftfreq(W).abs()[None, :] * W
    kept = ((fy > low_cut) | (fx > low_cut)).float()
    on_axes = ((fy == 0) | (fx == 0)).float() * kept
    return float(((power * on_axes).sum(dim=(1, 2)) / (power * kept).sum(dim=(1, 2)).clamp(min=1e-12)).mean())

def generated_images(network: str, num: int):
    """uint8-range float images [num, C, H, W] of G_ema, z from torch.Generator seeded 0."""
    import torch
    sys.path.insert(0, REPO)
    import networks
    G = networks.load_network(network).G_ema.eval()
    z = torch.randn([num, G.z_dim], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = torch.cat([G(z=zb, c=torch.zeros([len(zb), G.c_dim]), noise_mode='const') for zb in z.split(64)])
    return (images * 127.5 + 128).clamp(0, 255)

def painter_images(network: str, num: int):
    """An FPA/U-Net's FPA image before the U-Net, for the latents of generated_images (float, uint8 range)."""
    import torch
    sys.path.insert(0, REPO)
    import networks
    G = networks.load_network(network).G_ema.eval()
    z = torch.randn([num, G.z_dim], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = torch.cat([G.paint(zb, torch.zeros([len(zb), G.c_dim]))['image'] for zb in z.split(64)])
    return (images.float() * 127.5 + 128).clamp(0, 255)

def stroke_extent(network: str, num: int) -> tuple[float, float]:
    """How much of the image one FPA stroke covers: the participation ratio (sum |x|)^2 / (N sum x^2)
    of the written vectors and of the keys (1 = spread evenly over all N rows or columns, 1/N =
    one row or column), averaged over steps, channels and `num` samples (seeds as generated_images)."""
    import torch
    sys.path.insert(0, REPO)
    import networks
    G = networks.load_network(network).G_ema.eval()
    z = torch.randn([num, G.z_dim], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        painted = G.paint(z, torch.zeros([num, G.c_dim]))
    def ratio(x):
        x = x.float().abs()
        return float((x.sum(dim=-1).square() / (x.shape[-1] * x.square().sum(dim=-1)).clamp(min=1e-12)).mean())
    return ratio(painted['written']), ratio(painted['key_vectors'])

def real_images(folder: str, num: int):
    """The first `num` PNGs of a folder (sorted by name) as float [num, C, H, W] RGB."""
    import numpy as np
    import torch
    from PIL import Image
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith('.png'))[:num]
    arrays = []
    for name in names:
        with Image.open(os.path.join(folder, name)) as image:
            arrays.append(np.asarray(image.convert('RGB')))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()

def plot_curves(series: list[tuple[str, tuple, list]], floor: float | None, x_label: str, title: str, path: str) -> None:
    """A line plot (PNG, drawn with PIL) of [(label, RGB colour, [(x, FID)])], the noise floor dashed."""
    from PIL import Image, ImageDraw
    width, height, left, right, top, bottom = 560, 360, 60, 170, 30, 45
    image = Image.new('RGB', (width, height), 'white')
    draw = ImageDraw.Draw(image)
    points = [p for _, _, values in series for p in values]
    x_max = max(x for x, _ in points) * 1.05
    y_values = [y for _, y in points] + ([floor] if floor is not None else [])
    y_max = max(y_values) * 1.1
    def to_px(x, y):
        return left + x / x_max * (width - left - right), height - bottom - y / y_max * (height - top - bottom)
    draw.rectangle([left, top, width - right, height - bottom], outline='black')
    for i in range(6):      # Ticks: five steps on each axis.
        x, y = x_max * i / 5, y_max * i / 5
        px, _ = to_px(x, 0)
        _, py = to_px(0, y)
        draw.line([px, height - bottom, px, height - bottom + 4], fill='black')
        draw.text((px - 10, height - bottom + 6), f'{x:.3g}', fill='black')
        draw.line([left - 4, py, left, py], fill='black')
        draw.text((left - 40, py - 6), f'{y:.0f}', fill='black')
    draw.text(((left + width - right) / 2 - 40, height - 18), x_label, fill='black')
    draw.text((left, 8), title, fill='black')
    if floor is not None:
        _, py = to_px(0, floor)
        for px in range(left, width - right, 8):
            draw.line([px, py, px + 4, py], fill=(120, 120, 120))
    for row, (label, colour, values) in enumerate(series):
        pixels = [to_px(x, y) for x, y in sorted(values)]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for px, py in pixels:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        draw.line([width - right + 10, top + 10 + 16 * row, width - right + 30, top + 10 + 16 * row], fill=colour, width=2)
        draw.text((width - right + 35, top + 4 + 16 * row), label, fill='black')
    if floor is not None:
        row = len(series)
        draw.line([width - right + 10, top + 10 + 16 * row, width - right + 30, top + 10 + 16 * row], fill=(120, 120, 120))
        draw.text((width - right + 35, top + 4 + 16 * row), 'real vs real', fill='black')
    image.save(path)

def crop_grid(path: str, out: str, cells: int, cell_px: int) -> None:
    """The top-left cells x cells images of a training grid (fakesKKKKKK.png), scaled 2x."""
    from PIL import Image
    with Image.open(path) as grid:
        grid.crop((0, 0, cells * cell_px, cells * cell_px)).resize((2 * cells * cell_px,) * 2, Image.NEAREST).save(out)

def write_report(outdir: str, docs: str, datasets: list[str]) -> None:
    figures = os.path.join(os.path.dirname(docs), 'results')
    os.makedirs(figures, exist_ok=True)
    lines = ['| dataset | generator | FID | kimg | sec/kimg | G parameters (trained) | stripe index |',
             '|---|---|---:|---:|---:|---:|---:|']
    strokes = []
    for dataset in datasets:
        rec = Recorder(os.path.join(outdir, dataset, 'results.jsonl'))
        floor = rec.find(model='real')
        series_min, series_kimg = [], []
        for model in MODELS:
            rows = [r for r in rec.rows if r['model'] == model]
            if model == 'fpa-unet' and rows:    # Its curve starts at stage 1, the FPA's snapshot.
                rows = [rec.find(model='fpa', minutes=rows[0]['stage1_minutes'])] + rows
            if not rows:
                continue
            series_min.append((MODEL_LABELS[model], MODEL_COLOURS[model], [(r['sec'] / 60, r['fid']) for r in rows]))
            series_kimg.append((MODEL_LABELS[model], MODEL_COLOURS[model], [(r['kimg'], r['fid']) for r in rows]))
            last = max(rows, key=lambda r: r['sec'])
            total, trained = parameter_counts(last['network'])
            stripes = stripe_index(generated_images(last['network'], STRIPE_SAMPLES))
            lines.append(f'| {dataset} | {MODEL_LABELS[model]} | {last["fid"]:.1f} | {last["kimg"]:.1f} | '
                         f'{last["sec"] / max(last["kimg"], 1e-9):.1f} | {total:,}' + (f' ({trained:,})' if trained != total else '')
                         + f' | {stripes:.3f} |')
            if model == 'fpa':
                written, keys = stroke_extent(last['network'], 64)
                strokes.append(f'| {dataset} | {MODEL_LABELS[model]} | {written:.2f} | {keys:.2f} |')
            if model == 'fpa-unet':
                before = stripe_index(painter_images(last['network'], STRIPE_SAMPLES))
                lines.append(f'| {dataset} | (its FPA\'s image before the U-Net) | | | | | {before:.3f} |')
            crop_grid(newest(os.path.join(last['run_dir'], 'fakes[0-9]*.png')), os.path.join(figures, f'{dataset}-{model}-fakes.png'), 8, STUDY_RESOLUTION)
            paint = newest(os.path.join(last['run_dir'], 'paint[0-9]*.png'))
            if paint is not None:
                shutil.copyfile(paint, os.path.join(figures, f'{dataset}-{model}-paint.png'))
        reference = newest(os.path.join(outdir, dataset, 'real-reference-*'))
        stripes = f'{stripe_index(real_images(reference, STRIPE_SAMPLES)):.3f}' if reference else 'not measured'
        floor_text = f'{floor["fid"]:.1f}' if floor is not None else 'not measured'
        lines.append(f'| {dataset} | real images (FID: other real images, the noise floor) | {floor_text} | | | | {stripes} |')
        floor_fid = floor['fid'] if floor else None
        if series_min:
            plot_curves(series_min, floor_fid, 'training wall-clock (minutes)', f'{dataset}: FID vs time',
                        os.path.join(figures, f'{dataset}-fid-minutes.png'))
            plot_curves(series_kimg, floor_fid, 'kimg (thousands of images shown to D)', f'{dataset}: FID vs kimg',
                        os.path.join(figures, f'{dataset}-fid-kimg.png'))
    if strokes:
        lines += ['', 'Stroke extent of the FPAs (participation ratio, 1 = a stroke spans all 32 rows or columns, 1/32 = one):', '',
                  '| dataset | generator | written vectors | keys |', '|---|---|---:|---:|'] + strokes
    table = '\n'.join(lines)
    with open(os.path.join(figures, 'table.md'), 'w') as f:
        f.write(table + '\n')
    if os.path.isfile(docs):    # The table also between the page's markers, if it has them.
        with open(docs) as f:
            page = f.read()
        begin, end = page.find(TABLE_BEGIN), page.find(TABLE_END)
        if 0 <= begin < end:
            with open(docs, 'w') as f:
                f.write(page[:begin + len(TABLE_BEGIN)] + '\n' + table + '\n' + page[end:])
    print(table)
    print(f'[study] figures in {figures}; the table also in {os.path.join(figures, "table.md")}', flush=True)

#----------------------------------------------------------------------------

@click.command()
@click.option('--outdir', default='runs/study', show_default=True, metavar='DIR', help='Training runs and recorded results')
@click.option('--minutes', default=5.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help='Training wall-clock budget per generator')
@click.option('--fid-every', default=2.5, show_default=True, type=click.FloatRange(min=0, min_open=True), help='Minutes of training between FIDs')
@click.option('--fid-images', default=500, show_default=True, type=click.IntRange(min=2), help='Generated and reference real images per FID')
@click.option('--datasets', default='fmnist,emoji', show_default=True, help=f'Comma list of {", ".join(DATASETS)}')
@click.option('--models', default=','.join(MODELS), show_default=True, help=f'Comma list of {", ".join(MODELS)}')
@click.option('--floor/--no-floor', default=True, show_default=True, help='Compute the noise floor (FID of real images outside the reference)')
@click.option('--docs', default=os.path.join(REPO, 'docs', 'results.md'), show_default=True, metavar='FILE',
              help='The results page; its folder receives results/ (plots, grids, painting figures, table.md)')
@click.option('--train-args', default='', metavar='ARGS', help='More train.py options for every run, e.g. "--glr=0.002 --gamma=0.05"')
@click.option('--threads', default=1, show_default=True, type=click.IntRange(min=1), help='Threads of each training and scoring process')
@click.option('--report-only', is_flag=True, help='Make the figures and the table from what is recorded; train nothing')
def main(outdir, minutes, fid_every, fid_images, datasets, models, floor, docs, train_args, threads, report_only):
    datasets = [d for d in datasets.split(',') if d]
    models = [m for m in models.split(',') if m]
    for name, allowed, option in [(datasets, DATASETS, '--datasets'), (models, MODELS, '--models')]:
        unknown = sorted(set(name) - set(allowed))
        if unknown or not name:
            raise click.BadParameter(f'expected a comma list of {", ".join(allowed)}, got "{",".join(name)}"', param_hint=option)
    THREADS['n'] = threads
    if fid_every > minutes:
        raise click.BadParameter(f'{fid_every:g} is longer than --minutes={minutes:g}', param_hint='--fid-every')
    if not report_only:
        paths = {d: dataset_path(d) for d in datasets}    # Build or refuse before any training starts.
        print(f'[study] {", ".join(f"{d}: {p}" for d, p in paths.items())}', flush=True)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(datasets)) as pool:
            jobs = {pool.submit(run_dataset, d, outdir, minutes, fid_every, fid_images, models, floor, train_args.split()): d for d in datasets}
            errors = [f'{jobs[job]}: {job.exception()}' for job in concurrent.futures.as_completed(jobs) if job.exception()]
        if errors:
            raise click.ClickException('; '.join(errors))
    write_report(outdir, docs, datasets)

if __name__ == '__main__':
    main()
