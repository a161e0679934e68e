"""Data-side throughput: the ADA augment pipe (on --device) and dataset loading from a zip (CPU).

Table 1: AugmentPipe('bgc') images/s at 64x64 and 256x256 for p = 0.2 and 0.8, forward only
and forward + R1's double backward (grad of a small D's output w.r.t. the images with
create_graph, then backward of the squared gradient; D is one 3x3 conv, so the pipe
dominates). Ratios are against the forward pass at p = 0.2 of the same resolution. Each
cell is the fastest of a few rounds (bench/timing.py).

Table 2: ImageFolderDataset over a dataset_tool.py zip (uncompressed PNGs) through a
DataLoader with 0, 1 and 2 worker processes, one pass, batch 32; ratios against 0 workers.
Worker start-up is included in each pass (a training run with InfiniteSampler pays it once).

The machine may be shared and loaded: read the ratios, not the absolute numbers.

    python bench/bench_data.py [--quick] [--repeats 3] [--threads N] [--device cuda]
"""

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import PIL.Image
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import timing                                             # pylint: disable=wrong-import-position
import dataset_tool                                       # pylint: disable=wrong-import-position
from training.augment import AUGPIPE_SPECS, AugmentPipe  # pylint: disable=wrong-import-position
from training.dataset import ImageFolderDataset          # pylint: disable=wrong-import-position
from torch_utils.ops import conv2d_gradfix               # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def _median_seconds(fn, repeats: int) -> float:
    fn()   # Warm-up.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)

def bench_augment(resolutions: list[int], batch_sizes: dict, repeats: int, device: torch.device) -> None:
    print(f'AugmentPipe on {timing.describe(device)}, float32, fastest of {repeats} rounds\n')
    print('| resolution | batch | p | pass | images/s | ms/batch | time / forward at p=0.2 |')
    print('|---|---:|---:|---|---:|---:|---:|')
    for res in resolutions:
        batch = batch_sizes[res]
        D = torch.nn.Conv2d(3, 8, 3).to(device)
        images = torch.rand([batch, 3, res, res], device=device) * 2 - 1
        base = None
        for p in (0.2, 0.8):
            pipe = AugmentPipe(**AUGPIPE_SPECS['bgc']).to(device)
            pipe.p.fill_(p)
            def forward():
                torch.manual_seed(0)
                pipe(images)
            def r1():
                torch.manual_seed(0)
                x = images.detach().requires_grad_(True)
                with conv2d_gradfix.differentiable_backward():     # As the loss's R1 pass.
                    logits = torch.nn.functional.softplus(D(pipe(x))).mean(dim=(1, 2, 3))
                grad, = torch.autograd.grad(logits.sum(), x, create_graph=True)
                grad.square().sum().backward()
            for name, fn in (('forward', forward), ('forward + R1 double backward', r1)):
                seconds = timing.best_seconds({name: fn}, device, rounds=repeats, min_round_s=0.1)[name]
                base = seconds if base is None else base
                print(f'| {res}x{res} | {batch} | {p} | {name} | {batch / seconds:.3g} | {seconds * 1e3:.0f} | {seconds / base:.2f} |', flush=True)

def bench_loading(resolutions: list[int], counts: dict, repeats: int) -> None:
    print(f'Dataset loading on the CPU, median of {repeats} passes\n')
    print('| resolution | images | workers | images/s | s/pass | time / 0 workers |')
    print('|---|---:|---:|---:|---:|---:|')
    with tempfile.TemporaryDirectory() as tmp:
        for res in resolutions:
            src = os.path.join(tmp, f'src{res}')
            os.makedirs(src)
            rng = np.random.default_rng(0)
            for i in range(counts[res]):
                low = rng.integers(0, 256, (res // 8, res // 8, 3), dtype=np.uint8)   # Photo-like: smooth, compressible.
                PIL.Image.fromarray(low).resize((res, res), PIL.Image.BICUBIC).save(os.path.join(src, f'{i:05d}.png'))
            zip_path = os.path.join(tmp, f'data{res}.zip')
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                dataset_tool.main(['--source', src, '--dest', zip_path], standalone_mode=False)
            dataset = ImageFolderDataset(zip_path)
            base = None
            for workers in (0, 1, 2):
                def one_pass():
                    loader = torch.utils.data.DataLoader(dataset, batch_size=32, num_workers=workers)
                    for _images, _labels in loader:
                        pass
                seconds = _median_seconds(one_pass, repeats)
                base = seconds if base is None else base
                print(f'| {res}x{res} | {len(dataset)} | {workers} | {len(dataset) / seconds:.0f} | {seconds:.2f} | {seconds / base:.2f} |', flush=True)

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='smaller batches and datasets, 2 repeats')
    parser.add_argument('--repeats', type=int, default=3, help='timed repeats per cell (default 3)')
    parser.add_argument('--threads', type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument('--device', default='cpu', help='where the augment pipe runs: cpu or cuda (default cpu)')
    args = parser.parse_args()
    device = timing.device_from_arg(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    augment_batches = {64: 8, 256: 2} if args.quick else {64: 32, 256: 8}
    if device.type == 'cuda':
        augment_batches = {res: batch * 8 for res, batch in augment_batches.items()}
    dataset_counts = {64: 256, 256: 64} if args.quick else {64: 1024, 256: 256}
    torch.manual_seed(0)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} logical cores')
    print()
    bench_augment([64, 256], augment_batches, repeats, device)
    print()
    bench_loading([64, 256], dataset_counts, repeats)

if __name__ == '__main__':
    main()
