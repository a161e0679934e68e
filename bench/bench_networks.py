"""Throughput of the StyleGAN2 generator and discriminator (networks/stylegan2.py) beside the
FPA generator (networks/fpa.py), at 64x64, on the CPU (batch 20) or a CUDA device (batch 256).

Rows: G forward (inference), G forward+backward (to the parameters), D forward+backward, R1
(D forward, input gradient with create_graph, backward of the penalty to the parameters), and
G forward with the modulated-convolution choice that inference does not make by default
(fused on CPU, float32 only; unfused on CUDA). Columns: images/s and the achieved GFLOP/s as a
share of the matrix-multiply peak of the same dtype on the same device (timing.matmul_flops_per_s).
- CPU: float32 and bfloat16 autocast; the peak is measured just before and after each row (the
  best of the two, so that a machine shared with other jobs is compared with itself).
- CUDA: fp32 (TF32 off), tf32 (TF32 on), bf16 autocast, and "fp16 blocks": SG2 G and D as
  train.py builds them on CUDA (num_fp16_res=4, conv_clamp=256; the other rows pass
  force_fp32=True). The peak is measured once per precision; a column gives the peak CUDA
  memory of one step. The plugins (torch_utils/ops) are built or loaded before any timing.

FLOPs are counted analytically, 2 per multiply-add, for the convolutions and linear layers only
(what `analytic_flops` below computes from the layer shapes):
- modulated 3x3 conv:   2 N O I 9 H W, at the input resolution for the upsampling ones (the
                        strided transposed convolution multiplies each input pixel once);
- toRGB 1x1, fromRGB:   2 N O I H W;  D strided conv: 2 N O I k^2 at the output resolution;
- linear layers (mapping, affine style layers, D epilogue): 2 N in out.
Not counted: FIR filters, bias/activation, (de)modulation arithmetic. Forward+backward is 3x
forward (input and weight gradients); R1 is 6x D forward: the forward, the input gradient
(1x), the backward of that gradient (2x: the weight and output gradients of each adjoint
convolution) and a full backward of the forward pass (2x), which the minibatch-std layer's
second derivative makes necessary (it reaches every earlier activation; the profiler shows two
convolution_backward calls per convolution). Counted as 4x before the training step's third round (bench/results.md). The header line cross-checks the forward counts with
torch.utils.flop_counter (executed matmuls and convolutions, FIR filters included). The FPA
rows report images/s only (its LSTM is invisible to flop_counter, and its FLOPs are not ours
to derive here); the ratio SG2 / FPA is printed under the table.

Under the table, "D against upstream": our D and StyleGAN2-ADA's (`training/networks.py` of an
export of NVlabs/stylegan2-ada-pytorch, --upstream, default /tmp/sg2ada; the section is skipped,
saying so, when it is absent) with the same weights, forward+backward and R1 timed alternately in
this process (float32, the sizes of the table). Upstream's modules are imported under their own
names and then moved aside in sys.modules, so ours are untouched; nothing of theirs is copied.

On a machine shared with other jobs, use --threads=1: two OpenMP threads lose much of their time
waiting for each other whenever the scheduler takes one of them away, which hurts the network's
many medium-sized operations far more than one large matmul.

    python bench/bench_networks.py [--quick] [--device cpu|cuda] [--batch N] [--repeats N] [--threads N] [--upstream DIR]
"""

import argparse
import importlib
import os
import sys
import types

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnnlib                       # pylint: disable=wrong-import-position
import networks                     # pylint: disable=wrong-import-position
import timing                       # pylint: disable=wrong-import-position
from networks import stylegan2      # pylint: disable=wrong-import-position
from torch_utils.ops import conv2d_gradfix     # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------
# Analytic FLOPs of one forward pass, from forward hooks that see the actual shapes.

def analytic_flops(module: torch.nn.Module, run) -> int:
    total = [0]
    def conv_hook(mod, inputs, output):
        x = inputs[0]
        N, I, H_in, W_in = x.shape
        O, _, kh, kw = mod.weight.shape
        H, W = output.shape[2], output.shape[3]
        if getattr(mod, 'up', 1) > 1:
            H, W = H_in, W_in # Transposed convolution: one multiply per input pixel and tap.
        total[0] += 2 * N * O * I * kh * kw * H * W
    def fc_hook(mod, inputs, output):
        total[0] += 2 * inputs[0].shape[0] * mod.in_features * mod.out_features
    hooks = []
    for mod in module.modules():
        if isinstance(mod, (stylegan2.SynthesisLayer, stylegan2.ToRGBLayer, stylegan2.Conv2dLayer)):
            hooks.append(mod.register_forward_hook(conv_hook))
        if isinstance(mod, stylegan2.FullyConnectedLayer):
            hooks.append(mod.register_forward_hook(fc_hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]

def counted_flops(run) -> int:
    """Executed FLOPs of matmuls and convolutions, including the backward, as torch counts them."""
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return counter.get_total_flops()

#----------------------------------------------------------------------------

# Precisions: how one row runs. CPU keeps its two rows; CUDA compares four settings.

def _precision(name, autocast=None, tf32=False, fp16_layers=False, peak_dtype=torch.float32) -> dnnlib.EasyDict:
    """name: label in the table; autocast: torch.autocast dtype (None = off); tf32: TF32 allowed in
    float32 matmuls and cuDNN (timing.tf32); fp16_layers: SG2 G and D run their fp16 blocks
    (force_fp32=False; CUDA only); peak_dtype: dtype of the matmul whose FLOP/s is the row's peak."""
    return dnnlib.EasyDict(name=name, autocast=autocast, tf32=tf32, fp16_layers=fp16_layers, peak_dtype=peak_dtype)

PRECISIONS = {
    'cpu': [_precision('float32'),
            _precision('bfloat16', autocast=torch.bfloat16, peak_dtype=torch.bfloat16)],
    'cuda': [_precision('fp32'),
             _precision('tf32', tf32=True),
             _precision('bf16 autocast', autocast=torch.bfloat16, peak_dtype=torch.bfloat16),
             _precision('fp16 blocks', fp16_layers=True, peak_dtype=torch.float16)],
}

# Sizes per (device type, --quick); rounds of timing.best_seconds, each at least min_round_s.
DEFAULTS = {
    ('cpu', False):  dict(batch=20,  resolution=64, rounds=1, min_round_s=0.0, peak_size=2048),
    ('cpu', True):   dict(batch=4,   resolution=32, rounds=1, min_round_s=0.0, peak_size=1024),
    ('cuda', False): dict(batch=256, resolution=64, rounds=3, min_round_s=0.2, peak_size=8192),
    ('cuda', True):  dict(batch=64,  resolution=64, rounds=2, min_round_s=0.05, peak_size=4096),
}

#----------------------------------------------------------------------------

D_CHANNELS = dict(channel_base=16384, channel_max=512)

def build_networks(resolution: int, device: torch.device):
    """SG2 G and D as the presets build them (on CUDA: fp16 in the 4 highest resolutions and
    conv_clamp 256, as train.py does), and the FPA when it is registered."""
    torch.manual_seed(0)
    fp16_kwargs = dict(num_fp16_res=4, conv_clamp=256) if device.type == 'cuda' else {}
    G = stylegan2.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                            mapping_kwargs=dict(num_layers=2), channel_base=16384, channel_max=512, **fp16_kwargs)
    D = stylegan2.Discriminator(c_dim=0, img_resolution=resolution, img_channels=3, **D_CHANNELS, **fp16_kwargs)
    fpa = None
    if 'fpa' in networks.GENERATORS:
        fpa = dnnlib.util.construct_class_by_name(**networks.generator_kwargs('fpa'), z_dim=512, c_dim=0,
                                                  img_resolution=resolution, img_channels=3)
        fpa = fpa.to(device)
    return G.to(device), D.to(device), fpa

def workloads(G, D, fpa, batch: int, resolution: int, device: torch.device):
    """name -> (step(force_fp32), FLOPs per step, how the FLOPs were counted, CPU float32 only?)."""
    gen = torch.Generator().manual_seed(1)
    z = torch.randn([batch, 512], generator=gen).to(device)
    img = torch.randn([batch, 3, resolution, resolution], generator=gen).to(device)

    def g_forward(force_fp32=True, G=G, **kwargs):
        with torch.no_grad():
            G.eval()(z, None, force_fp32=force_fp32, **kwargs)
    def g_forward_backward(force_fp32=True, G=G):
        G.train()(z, None, force_fp32=force_fp32).float().square().mean().backward()
    def d_forward_backward(force_fp32=True):
        torch.nn.functional.softplus(D(img, None, force_fp32=force_fp32)).mean().backward()
    def r1(force_fp32=True):
        x = img.detach().requires_grad_(True)
        with conv2d_gradfix.differentiable_backward():     # As the loss's R1 pass.
            logits = D(x, None, force_fp32=force_fp32)
        (grad,) = torch.autograd.grad(logits.sum(), [x], create_graph=True)
        grad.float().square().sum(dim=[1, 2, 3]).mean().backward()

    # Inference picks fused modconv on CUDA and not on CPU ('auto'); the other choice gets a row.
    other_modconv = device.type != 'cuda'
    flops_G = analytic_flops(G, g_forward)
    flops_D = analytic_flops(D, lambda: D(img, None))
    rows = {
        'SG2 G forward':                 (g_forward,          flops_G,     'analytic',        False),
        f'SG2 G forward, {"fused" if other_modconv else "unfused"} modconv':
            (lambda force_fp32: g_forward(force_fp32, fused_modconv=other_modconv), flops_G, 'analytic', device.type == 'cpu'),
        'SG2 G forward+backward':        (g_forward_backward, 3 * flops_G, '3x analytic fwd', False),
        'SG2 D forward+backward':        (d_forward_backward, 3 * flops_D, '3x analytic fwd', False),
        'SG2 R1 (D double backward)':    (r1,                 6 * flops_D, '6x analytic fwd', False),
    }
    if fpa is not None:
        rows['FPA G forward'] = (lambda force_fp32: g_forward(force_fp32, G=fpa), None, 'not counted', False)
        rows['FPA G forward+backward'] = (lambda force_fp32: g_forward_backward(force_fp32, G=fpa), None, 'not counted', False)
    extra = dict(flops_G=flops_G, flops_D=flops_D, counted_G=counted_flops(g_forward), counted_D=counted_flops(lambda: D(img, None)))
    return rows, extra

#----------------------------------------------------------------------------
# Upstream's discriminator, for the side-by-side rows.

UPSTREAM_PACKAGES = ('dnnlib', 'torch_utils', 'training')   # Top-level names both code bases use.

def load_upstream_networks(path: str, module_name: str = 'training.networks'):
    """Upstream's module `module_name` (StyleGAN2-ADA's training.networks by default) from the
    directory `path`, or None when it is absent. Our modules of the same names are set aside
    while it imports and put back after; upstream's stay reachable through the returned
    module's globals only."""
    if not os.path.isfile(os.path.join(path, *module_name.split('.')) + '.py'):
        return None
    ours = {name: mod for name, mod in sys.modules.items() if name.split('.')[0] in UPSTREAM_PACKAGES}
    for name in ours:
        del sys.modules[name]
    if 'pkg_resources' not in sys.modules: # Imported (not used on the CPU) by upstream's conv2d_gradfix.
        sys.modules['pkg_resources'] = types.ModuleType('pkg_resources')
    sys.path.insert(0, path)
    try:
        module = importlib.import_module(module_name)
    finally:
        sys.path.remove(path)
        for name in [name for name in sys.modules if name.split('.')[0] in UPSTREAM_PACKAGES]:
            del sys.modules[name]
        sys.modules.update(ours)
    # Its persistence checks that every module pickles under its import name, which it no longer has.
    module.persistence._check_pickleable = lambda obj: None # pylint: disable=protected-access
    return module

def compare_with_upstream(D, path: str, batch: int, resolution: int, device: torch.device, rounds: int, min_round_s: float) -> None:
    """Our D and upstream's with the same weights: forward+backward and R1, alternately, float32."""
    print()
    upstream = load_upstream_networks(path)
    if upstream is None:
        print(f'D against upstream: skipped, no StyleGAN2-ADA export at --upstream={path} (training/networks.py missing).')
        return
    D_up = upstream.Discriminator(c_dim=0, img_resolution=resolution, img_channels=3, num_fp16_res=0, conv_clamp=D.b4.conv.conv_clamp,
                                  **D_CHANNELS).to(device)
    missing = D_up.load_state_dict(D.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    gen = torch.Generator().manual_seed(2)
    img = torch.randn([batch, 3, resolution, resolution], generator=gen).to(device)
    def forward_backward(net):
        return lambda: torch.nn.functional.softplus(net(img, None)).mean().backward()
    def r1(net):
        def run():
            x = img.detach().requires_grad_(True)
            with conv2d_gradfix.differentiable_backward():     # Ours as the loss's R1 pass; no effect on upstream's code.
                logits = net(x, None)
            (grad,) = torch.autograd.grad(logits.sum(), [x], create_graph=True)
            grad.square().sum(dim=[1, 2, 3]).mean().backward()
        return run
    with torch.no_grad():
        diff = float((D(img, None, force_fp32=True) - D_up(img, None, force_fp32=True)).abs().max())
    seconds = timing.best_seconds({'ours fb': forward_backward(D), 'upstream fb': forward_backward(D_up),
                                   'ours r1': r1(D), 'upstream r1': r1(D_up)}, device, rounds=rounds, min_round_s=min_round_s)
    print(f'D against upstream ({path}, same weights, logits equal to {diff:.1e}; float32, alternating, load average '
          f'{os.getloadavg()[0]:.1f})')
    print()
    print('| workload | ours images/s | upstream images/s | ours / upstream |')
    print('|---|---:|---:|---:|')
    for name, key in (('SG2 D forward+backward', 'fb'), ('SG2 R1 (D double backward)', 'r1')):
        ours, theirs = seconds[f'ours {key}'], seconds[f'upstream {key}']
        print(f'| {name} | {batch / ours:.2f} | {batch / theirs:.2f} | {theirs / ours:.2f}x |', flush=True)

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='smaller: batch 4 at 32x32 on CPU, batch 64 on CUDA; smaller peak matmul')
    parser.add_argument('--device', default='cpu', help='cpu (default), cuda or cuda:N')
    parser.add_argument('--batch', type=int, default=None, help='images per step (default 20 on CPU, 256 on CUDA; --quick: 4, 64)')
    parser.add_argument('--repeats', type=int, default=None, help='timing rounds per cell after one warm-up, the best counts (default 1 on CPU, 3 on CUDA)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s choice)')
    parser.add_argument('--upstream', default='/tmp/sg2ada', help='StyleGAN2-ADA export for the D rows against upstream (skipped when absent)')
    args = parser.parse_args()
    device = timing.device_from_arg(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = dict(DEFAULTS[(device.type, args.quick)])
    cfg.update({key: value for key, value in dict(batch=args.batch, rounds=args.repeats).items() if value is not None})
    batch, resolution, rounds, peak_size = cfg['batch'], cfg['resolution'], cfg['rounds'], cfg['peak_size']
    on_cuda = device.type == 'cuda'
    precisions = PRECISIONS[device.type]

    unavailable = timing.build_cuda_plugins() if on_cuda else {}
    G, D, fpa = build_networks(resolution, device)
    with timing.tf32(precisions[0].tf32):
        rows, extra = workloads(G, D, fpa, batch, resolution, device)

    def time_cell(step, precision):
        def run():
            with torch.autocast(device.type, dtype=precision.autocast, enabled=precision.autocast is not None):
                step(force_fp32=not precision.fp16_layers)
        with timing.tf32(precision.tf32):
            seconds = timing.best_seconds({'step': run}, device, rounds=rounds, min_round_s=cfg['min_round_s'])['step']
            memory = timing.peak_cuda_bytes(run, device) if on_cuda else None
        return seconds, memory

    peaks = {}
    def peak_flops(precision):
        """The matmul peak: around each cell on CPU (a shared machine against itself), once per precision on CUDA."""
        with timing.tf32(precision.tf32):
            if not on_cuda or precision.name not in peaks:
                peaks[precision.name] = timing.matmul_flops_per_s(precision.peak_dtype, peak_size, device)
        return peaks[precision.name]

    print(f'{timing.describe(device)}; {resolution}x{resolution}, batch {batch}, ', end='')
    if on_cuda:
        print(f'fastest of {rounds} rounds of >= {cfg["min_round_s"]:g} s after a warm-up; peak = {peak_size}^3 matmul of '
              f'the row\'s dtype (TF32 as in the row), measured once per precision')
        print('Precisions: fp32 = float32, TF32 off (matmul and cuDNN), SG2 force_fp32=True; tf32 = the same with TF32 on; '
              'bf16 autocast = torch.autocast(bfloat16), TF32 off, force_fp32=True; fp16 blocks = SG2 G and D as train.py '
              'builds them on CUDA (num_fp16_res=4: float16 in the 4 highest resolutions, conv_clamp 256), TF32 off, '
              'peak = float16 matmul (the FPA has no fp16 layers: no row). Memory = peak CUDA bytes allocated by one step.')
        print('CUDA plugins: ' + ', '.join(f'{name} {"unavailable (" + unavailable[name] + ")" if name in unavailable else "built"}'
                                           for name in timing.CUDA_PLUGINS))
    else:
        print(f'best of {rounds} after a warm-up; peak = best {peak_size}^3 matmul measured around each cell')
    print(f'SG2 G {sum(p.numel() for p in G.parameters()):,} parameters, D {sum(p.numel() for p in D.parameters()):,}'
          + (f', FPA {sum(p.numel() for p in fpa.parameters()):,}' if fpa is not None else ''))
    print(f'Forward GFLOP per batch: G {extra["flops_G"] / 1e9:.1f} analytic ({extra["counted_G"] / 1e9:.1f} counted by torch, '
          f'incl. FIR filters and demodulation), D {extra["flops_D"] / 1e9:.1f} ({extra["counted_D"] / 1e9:.1f})')
    print()
    ratio_name = 'bf16 / fp32' if not on_cuda else f'vs {precisions[0].name}'
    print(f'| workload | {"precision" if on_cuda else "dtype"} | images/s | GFLOP/s | peak GFLOP/s | % of peak | FLOPs | '
          + ('peak memory GiB | ' if on_cuda else '') + f'{ratio_name} |')
    print('|---|---|---:|---:|---:|---:|---|' + ('---:|' if on_cuda else '') + '---:|')
    first_speed = {}
    for name, (step, flops, how, first_only) in rows.items():
        for precision in precisions:
            if first_only and precision is not precisions[0]:
                continue # The fused path is the GPU's; one float32 row shows why the CPU does not use it.
            if precision.fp16_layers and name.startswith('FPA'):
                continue # The FPA has no fp16 layers.
            try:
                peak = peak_flops(precision)
                seconds, memory = time_cell(step, precision)
                peak = max(peak, peak_flops(precision))
            except Exception as err: # pylint: disable=broad-except
                # One failing cell (out of memory, say) must not cost the rest of a one-off GPU run.
                message = str(err).strip().splitlines()[0] if str(err).strip() else ''
                print(f'| {name} | {precision.name} | failed: {type(err).__name__}: {message} |', flush=True)
                continue
            speed = batch / seconds
            ratio = ''
            if precision is precisions[0]:
                first_speed[name] = speed
            elif name in first_speed:
                ratio = f'{speed / first_speed[name]:.2f}x'
            gflops, share = ('-', '-') if flops is None else (f'{flops / seconds / 1e9:.1f}', f'{100 * flops / seconds / peak:.0f}%')
            memory_cell = f'{memory / 2**30:.2f} | ' if on_cuda else ''
            print(f'| {name} | {precision.name} | {speed:.2f} | {gflops} | {peak / 1e9:.1f} | {share} | {how} | {memory_cell}{ratio} |',
                  flush=True)
    if fpa is None:
        print('\nFPA rows skipped: networks.fpa is not registered as "fpa" yet.')
    elif all(key in first_speed for key in ('SG2 G forward', 'FPA G forward', 'SG2 G forward+backward', 'FPA G forward+backward')):
        print(f'\nSG2 / FPA images/s ({precisions[0].name}): forward {first_speed["SG2 G forward"] / first_speed["FPA G forward"]:.2f}x, '
              f'forward+backward {first_speed["SG2 G forward+backward"] / first_speed["FPA G forward+backward"]:.2f}x')
    with timing.tf32(False):
        compare_with_upstream(D, args.upstream, batch, resolution, device, rounds=max(rounds, 2), min_round_s=cfg['min_round_s'])

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
