"""Fast CPU path vs reference path of the resampling ops (torch_utils/ops), 64x64, batch 20.

Prints a markdown table: milliseconds per call (fastest of the repeats, the least
disturbed by other processes) for the reference
implementation and the fast one, and their ratio, in float32 and bfloat16, forward and
forward+backward. The machine may be shared and loaded: read the ratios, not the times.

    python bench/bench_ops.py [--quick] [--channels 128] [--repeats 5] [--threads N]
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from torch_utils.ops import conv2d_resample, upfirdn2d # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def _cases(channels: int):
    """name -> (input shape, fn(x, impl_is_ref) -> y, weight shape or None)."""
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    def upfirdn(fn, **kwargs):
        return lambda x, w, ref: fn(x, f, impl=('ref' if ref else None), **kwargs)
    def resample(**kwargs):
        return lambda x, w, ref: (conv2d_resample._conv2d_resample_ref if ref else conv2d_resample.conv2d_resample)(x, w, f, **kwargs)
    return {
        'upsample2d 32->64':          ([20, channels, 32, 32], upfirdn(upfirdn2d.upsample2d), None),
        'downsample2d 64->32':        ([20, channels, 64, 64], upfirdn(upfirdn2d.downsample2d), None),
        'filter2d 64':                ([20, channels, 64, 64], upfirdn(upfirdn2d.filter2d), None),
        'conv2d_resample 3x3 up 32->64':   ([20, channels, 32, 32], resample(up=2, padding=1), [channels, channels, 3, 3]),
        'conv2d_resample 3x3 down 64->32': ([20, channels, 64, 64], resample(down=2, padding=1), [channels, channels, 3, 3]),
        'conv2d_resample 1x1 down 64->32': ([20, channels, 64, 64], resample(down=2), [channels, channels, 1, 1]),
    }

def _time_ms(fn, repeats: int) -> float:
    fn() # Warm-up (and matrix caches).
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='32 channels and 3 repeats')
    parser.add_argument('--channels', type=int, default=128, help='channels per image (default 128)')
    parser.add_argument('--repeats', type=int, default=5, help='timed repeats per cell (default 5)')
    parser.add_argument('--threads', type=int, default=None, help='torch intra-op threads (default: torch\'s choice)')
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    channels, repeats = (32, 3) if args.quick else (args.channels, args.repeats)
    torch.manual_seed(0)

    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, batch 20, {channels} channels, fastest of {repeats} runs')
    print()
    print('| op | dtype | pass | ref ms | fast ms | ref / fast |')
    print('|---|---|---|---:|---:|---:|')
    for name, (shape, fn, w_shape) in _cases(channels).items():
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(shape).to(dtype)
            w = None if w_shape is None else (torch.randn(w_shape) / (w_shape[1] * w_shape[2] * w_shape[3]) ** 0.5).to(dtype)
            dy = fn(x, w, True).detach().normal_() # Upstream gradient of the right shape.
            for pass_name in ('fwd', 'fwd+bwd'):
                ms = {}
                for ref in (True, False):
                    def step(ref=ref, pass_name=pass_name):
                        if pass_name == 'fwd':
                            with torch.no_grad():
                                fn(x, w, ref)
                        else:
                            xg = x.detach().requires_grad_(True)
                            wg = None if w is None else w.detach().requires_grad_(True)
                            fn(xg, wg, ref).backward(dy)
                    ms[ref] = _time_ms(step, repeats)
                print(f'| {name} | {str(dtype).replace("torch.", "")} | {pass_name} | {ms[True]:.1f} | {ms[False]:.1f} | '
                      f'{ms[True] / ms[False]:.2f}x |', flush=True)

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
