"""The implementations of the custom ops (torch_utils/ops) side by side, at 64x64.

Prints a markdown table: milliseconds per call (timing.best_seconds: the variants alternate
round by round and the fastest round counts, the least disturbed by other processes), forward
and forward+backward (`backward(dy)` with a fixed random `dy`), and the ratios.

- CPU: the resampling ops, reference ('ref') vs fast (the CPU default), float32 and bfloat16,
  batch 20. The machine may be shared and loaded: read the ratios, not the times.
- CUDA: the same ops plus bias_act (lrelu, clamp 256, as in the networks), the CUDA plugins
  ('cuda', built just-in-time by torch_utils/custom_ops.py) vs 'ref' and 'fast', float32 (TF32
  off) and float16, a larger batch and more channels. The plugins are built (or loaded) once
  before any timing; one that cannot be built is reported above the table, with the reason,
  and its column reads "unavailable".

conv2d_resample has no `impl` argument: its "ref" is the literal definition
`_conv2d_resample_ref` (reference upfirdn2d, full-resolution convolution), and its "fast" is
`conv2d_resample()` itself, whose filter steps use upfirdn2d's default ('fast' on every device
since the plugin measured slower on an H200); on CUDA its ratio cells read "-" (no plugin
column to divide by).

    python bench/bench_ops.py [--quick] [--device cpu|cuda] [--batch N] [--channels N] [--repeats N] [--threads N]
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timing                                                            # pylint: disable=wrong-import-position
from torch_utils.ops import bias_act, conv2d_resample, upfirdn2d         # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------
# Sizes per (device type, --quick): rounds of timing.best_seconds, each at least min_round_s.

DEFAULTS = {
    ('cpu', False):  dict(batch=20, channels=128, rounds=5, min_round_s=0.0),
    ('cpu', True):   dict(batch=20, channels=32,  rounds=3, min_round_s=0.0),
    ('cuda', False): dict(batch=64, channels=256, rounds=3, min_round_s=0.1),
    ('cuda', True):  dict(batch=32, channels=128, rounds=2, min_round_s=0.03),
}

#----------------------------------------------------------------------------

def _cases(batch: int, channels: int, device: torch.device) -> dict:
    """name -> EasyDict-like dict: x shape, parameter shape (weight or bias; None = none),
    fn(x, p, impl) -> y, the implementations to compare, and the plugin the 'cuda' one needs."""
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device=device)
    def upfirdn(fn, **kwargs):
        return lambda x, p, impl: fn(x, f, impl=impl, **kwargs)
    def resample(**kwargs):
        return lambda x, p, impl: (conv2d_resample._conv2d_resample_ref if impl == 'ref' else conv2d_resample.conv2d_resample)(x, p, f, **kwargs)
    def lrelu(x, p, impl):
        return bias_act.bias_act(x, p, act='lrelu', clamp=256, impl=impl)
    lo, hi = [batch, channels, 32, 32], [batch, channels, 64, 64]
    conv3, conv1 = [channels, channels, 3, 3], [channels, channels, 1, 1]
    cases = {
        'upsample2d 32->64':               (lo, None,  upfirdn(upfirdn2d.upsample2d),   ('ref', 'fast', 'cuda'), 'upfirdn2d'),
        'downsample2d 64->32':             (hi, None,  upfirdn(upfirdn2d.downsample2d), ('ref', 'fast', 'cuda'), 'upfirdn2d'),
        'filter2d 64':                     (hi, None,  upfirdn(upfirdn2d.filter2d),     ('ref', 'fast', 'cuda'), 'upfirdn2d'),
        'conv2d_resample 3x3 up 32->64':   (lo, conv3, resample(up=2, padding=1),       ('ref', 'fast'),         None),
        'conv2d_resample 3x3 down 64->32': (hi, conv3, resample(down=2, padding=1),     ('ref', 'fast'),         None),
        'conv2d_resample 1x1 down 64->32': (hi, conv1, resample(down=2),                ('ref', 'fast'),         None),
    }
    if device.type == 'cuda': # On CPU bias_act has one implementation only.
        cases = {'bias_act lrelu clamp 64': (hi, [channels], lrelu, ('ref', 'cuda'), 'bias_act'), **cases}
    return cases

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='smaller: 32 channels and 3 rounds on CPU; batch 32, 128 channels on CUDA')
    parser.add_argument('--device', default='cpu', help='cpu (default), cuda or cuda:N')
    parser.add_argument('--batch', type=int, default=None, help='images per call (default 20 on CPU, 64 on CUDA, 32 with --quick)')
    parser.add_argument('--channels', type=int, default=None, help='channels per image (default 128 on CPU, 256 on CUDA; --quick: 32, 128)')
    parser.add_argument('--repeats', type=int, default=None, help='timing rounds per cell (default 5 on CPU, 3 on CUDA; --quick: 3, 2)')
    parser.add_argument('--threads', type=int, default=None, help='torch intra-op threads (default: torch\'s choice)')
    args = parser.parse_args()
    device = timing.device_from_arg(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = dict(DEFAULTS[(device.type, args.quick)])
    cfg.update({key: value for key, value in dict(batch=args.batch, channels=args.channels, rounds=args.repeats).items() if value is not None})
    torch.manual_seed(0)

    on_cuda = device.type == 'cuda'
    unavailable = {}
    if on_cuda:
        unavailable = timing.build_cuda_plugins()
    dtypes = (torch.float32, torch.float16) if on_cuda else (torch.float32, torch.bfloat16)
    impls = ('ref', 'fast', 'cuda') if on_cuda else ('ref', 'fast')
    base = impls[-1] # Ratios: every other implementation's time / this one's.
    ms_format = '.3f' if on_cuda else '.1f'

    round_text = f'fastest of {cfg["rounds"]} runs' if cfg['min_round_s'] == 0 else \
                 f'fastest of {cfg["rounds"]} alternating rounds of >= {cfg["min_round_s"]:g} s'
    print(f'{timing.describe(device)}; batch {cfg["batch"]}, {cfg["channels"]} channels, {round_text}'
          + ('; float32 with TF32 off (matmul and cuDNN); float16 = inputs and weights in float16' if on_cuda else ''))
    for name, reason in unavailable.items():
        print(f'\nCUDA plugin {name} unavailable (its "cuda" cells read "unavailable"): {reason}')
    print()
    print('| op | dtype | pass | ' + ' | '.join(f'{impl} ms' for impl in impls) + ' | '
          + ' | '.join(f'{impl} / {base}' for impl in impls[:-1]) + ' |')
    print('|---|---|---|' + '---:|' * (2 * len(impls) - 1))
    for name, (shape, p_shape, fn, case_impls, plugin) in _cases(cfg['batch'], cfg['channels'], device).items():
        for dtype in dtypes:
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(shape, generator=gen).to(device=device, dtype=dtype)
            p = None
            if p_shape is not None:
                fan_in = p_shape[1] * p_shape[2] * p_shape[3] if len(p_shape) == 4 else 1
                p = (torch.randn(p_shape, generator=gen) / fan_in ** 0.5).to(device=device, dtype=dtype)
            dy = torch.randn(fn(x, p, 'ref').shape, generator=gen).to(device=device, dtype=dtype) # Upstream gradient.
            runnable = [impl for impl in case_impls if impl in impls and not (impl == 'cuda' and plugin in unavailable)]
            for pass_name in ('fwd', 'fwd+bwd'):
                def step(impl, pass_name=pass_name):
                    if pass_name == 'fwd':
                        with torch.no_grad():
                            fn(x, p, impl)
                    else:
                        xg = x.detach().requires_grad_(True)
                        pg = None if p is None else p.detach().requires_grad_(True)
                        fn(xg, pg, impl).backward(dy)
                try:
                    with timing.tf32(False): # IEEE float32 in every implementation's matmuls and convolutions.
                        seconds = timing.best_seconds({impl: (lambda impl=impl: step(impl)) for impl in runnable}, device,
                                                      rounds=cfg['rounds'], min_round_s=cfg['min_round_s'])
                except Exception as err: # pylint: disable=broad-except
                    # One failing row (out of memory, a kernel error) must not cost the rest of a one-off GPU run.
                    print(f'| {name} | {str(dtype).replace("torch.", "")} | {pass_name} | failed: {type(err).__name__}: '
                          f'{str(err).strip().splitlines()[0] if str(err).strip() else ""} |', flush=True)
                    continue
                cells = [f'{seconds[impl] * 1e3:{ms_format}}' if impl in seconds else
                         ('unavailable' if impl in case_impls else '-') for impl in impls]
                ratios = [f'{seconds[impl] / seconds[base]:.2f}x' if impl in seconds and base in seconds else '-' for impl in impls[:-1]]
                print(f'| {name} | {str(dtype).replace("torch.", "")} | {pass_name} | ' + ' | '.join(cells + ratios) + ' |', flush=True)

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
