"""The authors' FPA training step (IDSIA/fpainter) beside this codebase's, seconds per image.

The paper's own training code (a fork of lightweight-gan: LightweightGAN discriminator with
its auto-encoding and 32x32 heads, hinge loss, gradient penalty every 4th step, DiffAugment,
Adam) is imported from a checkout given by --fpainter=DIR or FPAINTER_DIR (default
/tmp/fpainter), never copied here. Get it with

    git clone https://github.com/IDSIA/fpainter /tmp/fpainter      # and: pip install einops

Without a checkout (or without einops, its one dependency that the training step uses) the
benchmark says so and exits 0; a DIR given explicitly that holds no checkout is an error.

Both sides train the same generator: the paper's 64x64 FPA (v2 input generator, T = 64, LSTM
1024, delta rule; their `lstm_delta_split_v2` with the flags of their README) or, with
--quick, fpa-cpu's sizes at 32x32 (T = 32, LSTM 256, d_in 64). Each with its own D, loss and
optimiser, as a user of either code base trains: theirs with the D options of their main.py
(attention at 32x32, 1x1 logits, fmap_max 512), no augmentation (their default aug_prob 0),
no gradient accumulation (their README's --grad_cummulate_every 1); ours is train.py's loop
(training_loop, the preset's D, lazy R1 every 16 steps, no augmentation) at --precision=fp32
and at the default (auto: bf16 on a CPU with native bf16). Same batch (--batch) on both
sides. Their step is timed over whole gradient-penalty cycles (4 steps, one with the
penalty), ours over one tick of 16 steps (one lazy R1); the two alternate round by round in
this process and the fastest round of each counts. On a CPU the paper's size is slow on both
sides (the fpa preset's D is a wide one: bench/results.md); --quick is the CPU's comparison.

Their code asserts CUDA at import and moves everything with .cuda(rank). On the CPU those
calls are pointed at the CPU while their code runs (torch.cuda.is_available, Module.cuda,
Tensor.cuda, and torch.device('cuda:N') as their module sees it), restored after; nothing in
their tree is written. torchvision and kornia, which their modules import but the training
step never calls, are replaced by placeholders when they are not installed.

    python bench/bench_authors_training.py [--quick] [--fpainter DIR] [--device cpu|cuda] [--batch N]
                                           [--rounds N] [--threads N] [--profile]

--profile: instead of the table, where their step's time goes: each part it runs (G, D on
fakes, D on reals, D with the penalty, and parts of D) timed alone at the batch, with its
FLOPs (torch.utils.flop_counter) and GFLOP/s; our preset's D's FLOPs for scale; and
torch.profiler's operators of one D forward+backward on reals by self time.
"""

import argparse
import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
import time
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dnnlib                                        # noqa: E402
import timing                                        # noqa: E402
import bench_training                                # noqa: E402
from training.config import build_training_config, default_precision   # noqa: E402

DEFAULT_FPAINTER = '/tmp/fpainter'
FPAINTER_ENV = 'FPAINTER_DIR'
AUTHORS_MODULES = ('painter', 'lightweight_gan', 'unet', 'model_utils', 'diff_augment', 'diff_augment_test', 'version')
NEEDED_IMPORTS = ('einops',)                                                               # Used by their D.
UNUSED_IMPORTS = ('torchvision', 'torchvision.transforms', 'kornia', 'kornia.filters')   # Imported by their modules, not used by a step.
GP_CYCLE = 4            # Their gradient penalty runs on every 4th step.
OUR_TICK = 16           # Our lazy R1 runs on every 16th step.

# The generator on both sides: (ours: preset, resolution) and theirs: Trainer options.
CONFIGS = {
    'paper': dict(cfg='fpa', resolution=64, theirs=dict(image_size=64, latent_dim=512, num_decoding_steps=64, rnn_hidden_size=1024,
                                                        mini_latent_dim=8, mini_input_size=128)),
    'quick': dict(cfg='fpa-cpu', resolution=32, theirs=dict(image_size=32, latent_dim=512, num_decoding_steps=32, rnn_hidden_size=256,
                                                            mini_latent_dim=8, mini_input_size=64)),
}
# Their README's FPA flags and their main.py's D options.
THEIR_FLAGS = dict(model_type='lstm_delta_split_v2', num_layers=1, v2_input_sigmoid=True, use_latent_to_init=True, use_softmax=True,
                   out_tanh=True, attn_res_layers=[32], disc_output_size=1, fmap_max=512, aug_prob=0.0, lr=2e-4, ttur_mult=1.0,
                   gradient_accumulate_every=1)

#----------------------------------------------------------------------------
# Locating and importing their code.

class BenchSkip(Exception):
    """The comparison cannot run here (no checkout, a missing dependency); not a user error."""

def fpainter_dir(arg: str | None) -> tuple[str, bool]:
    """(directory, given explicitly) from --fpainter, else FPAINTER_ENV, else the default."""
    if arg is not None:
        return arg, True
    if os.environ.get(FPAINTER_ENV):
        return os.environ[FPAINTER_ENV], True
    return DEFAULT_FPAINTER, False

def check_checkout(path: str, explicit: bool, source: str) -> str:
    """The checkout's code/ directory; a clear SystemExit for an explicit path that holds none,
    BenchSkip for the default path."""
    code = os.path.join(path, 'code')
    if os.path.isfile(os.path.join(code, 'painter.py')):
        return code
    if explicit:
        raise SystemExit(f'{source}={path}: no IDSIA/fpainter checkout there (expected {os.path.join(code, "painter.py")})')
    raise BenchSkip(f'no IDSIA/fpainter checkout at {path} (give --fpainter=DIR or {FPAINTER_ENV}=DIR; '
                    f'git clone https://github.com/IDSIA/fpainter {DEFAULT_FPAINTER})')

def _placeholder(name: str) -> types.ModuleType:
    """A module standing in for one their code imports and the training step never uses: any
    attribute is a function that raises."""
    module = types.ModuleType(name)
    def unavailable(*_args, **_kwargs):
        raise RuntimeError(f'{name} is not installed (a placeholder stood in for it while the authors\' code was imported)')
    module.__getattr__ = lambda attr: unavailable
    return module

class _TorchOnDevice(types.ModuleType):
    """torch as their module sees it: torch.device('cuda:N') names `device`; the rest is torch."""
    def __init__(self, device: torch.device):
        super().__init__('torch')
        self._device = device
    def __getattr__(self, name):
        return getattr(torch, name)
    def device(self, *args, **kwargs):
        wanted = torch.device(*args, **kwargs)
        return self._device if wanted.type == 'cuda' else wanted

@contextlib.contextmanager
def cuda_calls_on(device: torch.device):
    """While their code runs: on a CPU, their CUDA calls (torch.cuda.is_available asserted at
    import, Module.cuda(rank), Tensor.cuda(rank)) move to `device`; restored on exit. On CUDA,
    nothing changes."""
    if device.type == 'cuda':
        yield
        return
    saved = [(torch.cuda, 'is_available'), (torch.nn.Module, 'cuda'), (torch.Tensor, 'cuda')]
    saved = [(owner, name, owner.__dict__.get(name)) for owner, name in saved]
    torch.cuda.is_available = lambda: True
    torch.nn.Module.cuda = lambda self, *_args, **_kwargs: self.to(device)
    torch.Tensor.cuda = lambda self, *_args, **_kwargs: self.to(device)
    try:
        yield
    finally:
        for owner, name, value in saved:
            if value is None:
                delattr(owner, name)
            else:
                setattr(owner, name, value)

def import_authors(code_dir: str, device: torch.device) -> types.ModuleType:
    """Their painter module (Trainer, the generators, the LightweightGAN D), imported from
    `code_dir` with the device calls shimmed; raises BenchSkip when einops is missing."""
    for name in NEEDED_IMPORTS:
        if importlib.util.find_spec(name) is None:
            raise BenchSkip(f'the authors\' code needs {name} (pip install {name})')
    clashes = [name for name in AUTHORS_MODULES if name in sys.modules]
    assert not clashes, f'module names of the authors\' code already taken in this process: {clashes}'
    missing = [name for name in UNUSED_IMPORTS if importlib.util.find_spec(name.split('.')[0]) is None]
    placeholders = {name: _placeholder(name) for name in missing}
    sys.modules.update(placeholders)
    sys.path.insert(0, code_dir)
    try:
        with cuda_calls_on(device):
            painter = importlib.import_module('painter')
    finally:
        sys.path.remove(code_dir)
        for name in placeholders:
            del sys.modules[name]
    if device.type == 'cpu':
        painter.torch = _TorchOnDevice(device)
    return painter

#----------------------------------------------------------------------------
# The two training steps.

class AuthorsStep:
    """Their Trainer (their G, D, losses, Adam, EMA bookkeeping) on a fixed batch of random
    images; `cycle()` runs GP_CYCLE steps, the last one with the gradient penalty."""
    def __init__(self, painter: types.ModuleType, theirs: dict, batch: int, device: torch.device, workdir: str, seed: int = 0):
        torch.manual_seed(seed)
        with cuda_calls_on(device):
            self.trainer = painter.Trainer(name='bench', base_dir=workdir, fid_real_path=workdir, batch_size=batch,
                                           save_every=10**9, evaluate_every=10**9, loginf=lambda *_args: None, **theirs, **THEIR_FLAGS)
            self.trainer.init_GAN()
        gen = torch.Generator().manual_seed(seed)
        real = torch.rand([batch, 3, theirs['image_size'], theirs['image_size']], generator=gen).to(device)  # Their images are in [0, 1].
        self.trainer.loader = iter(lambda: real.clone(), None)
        self.device = device

    def cycle(self, steps: int = GP_CYCLE) -> None:
        # Steps 5..8: no checkpoint, no sample grid, no EMA reset (those follow the step count), the penalty at 8.
        self.trainer.steps = 5
        with cuda_calls_on(self.device):
            for _ in range(steps):
                self.trainer.train()
        timing.synchronize(self.device)

def our_seconds_per_image(data: str, config: dict, batch: int, precision: str, device: torch.device) -> float:
    """One tick of OUR_TICK steps of training_loop after a warm-up step (bench_training.measure)."""
    r = bench_training.measure(data, config['resolution'], None, precision, batch, OUR_TICK, device.type, None, None,
                               iters_per_tick=OUR_TICK, cfg=config['cfg'])
    return r.sec_per_kimg / 1000

#----------------------------------------------------------------------------

def load_average() -> str:
    return f'{os.getloadavg()[0]:.1f}' if hasattr(os, 'getloadavg') else 'n/a'

def table(painter, config: dict, batch: int, device: torch.device, rounds: int) -> None:
    precisions = ['fp32', 'auto']
    resolved = default_precision(device.type, False)
    with tempfile.TemporaryDirectory() as tmp:
        data = bench_training.make_dataset(os.path.join(tmp, 'data'), config['resolution'], batch)
        theirs = AuthorsStep(painter, config['theirs'], batch, device, tmp)
        theirs.cycle(steps=1)                               # Warm-up.
        best = {}
        load_start = load_average()
        for _ in range(rounds):
            start = time.perf_counter()
            theirs.cycle()
            best['theirs'] = min(best.get('theirs', float('inf')), (time.perf_counter() - start) / (GP_CYCLE * batch))
            for precision in precisions:
                best[precision] = min(best.get(precision, float('inf')), our_seconds_per_image(data, config, batch, precision, device))
    res = config['resolution']
    print(f'# The authors\' FPA training step against ours ({res}x{res}, {config["cfg"]} generator sizes), batch {batch}; '
          f'{timing.describe(device)}; load average {load_start} at the start, {load_average()} at the end; best of {rounds} rounds')
    print()
    print('| training step | D, loss | precision | s / image | images / s | theirs / ours |')
    print('|---|---|---|---:|---:|---:|')
    print(f'| authors (IDSIA/fpainter, lstm_delta_split_v2) | LightweightGAN D, hinge, GP every {GP_CYCLE} | fp32 | '
          f'{best["theirs"]:.4f} | {1 / best["theirs"]:.2f} | 1.00x |')
    for precision in precisions:
        label = 'fp32' if precision == 'fp32' else f'{resolved} (auto, default)'
        print(f'| ours (train.py --cfg={config["cfg"]}) | StyleGAN2 residual D, logistic, lazy R1 every {OUR_TICK} | {label} | '
              f'{best[precision]:.4f} | {1 / best[precision]:.2f} | {best["theirs"] / best[precision]:.1f}x |')
    print()
    print(f'Theirs: a cycle of {GP_CYCLE} steps (one with the gradient penalty) on one batch of random images; ours: one tick of '
          f'{OUR_TICK} steps of training_loop (one lazy R1 step) on {batch} random images, no augmentation, no metrics.')

def profile(painter, config: dict, batch: int, device: torch.device, rounds: int) -> None:
    """Where their step's time goes: each part it runs, timed alone at the step's batch (the
    D step runs D on fakes and on reals, with the auto-encoding loss on reals and the penalty's
    double backward on every 4th step; the G step runs G and D forward and backward), then
    the operators of one D forward+backward on reals by self time."""
    import torch.nn.functional as F                  # pylint: disable=import-outside-toplevel
    from torch.profiler import profile as torch_profile, ProfilerActivity   # pylint: disable=import-outside-toplevel
    from torch.utils.flop_counter import FlopCounterMode                   # pylint: disable=import-outside-toplevel
    res = config['theirs']['image_size']
    workdir = tempfile.TemporaryDirectory()     # pylint: disable=consider-using-with (kept until the cycle below has run)
    step = AuthorsStep(painter, config['theirs'], batch, device, workdir.name)
    G, D = step.trainer.GAN.G, step.trainer.GAN.D
    gen = torch.Generator().manual_seed(1)
    z = torch.randn([batch, G.input_generator.in_features], generator=gen).to(device)
    img = torch.rand([batch, 3, res, res], generator=gen).to(device)

    def d_real(penalty: bool):
        def run():
            x = img.clone().requires_grad_(True)
            logits, logits_32, aux = D(x, calc_aux_loss=True)
            loss = logits.mean() + logits_32.mean() + aux
            if penalty:
                (grad,) = torch.autograd.grad([logits, logits_32], [x], [torch.ones_like(logits), torch.ones_like(logits_32)], create_graph=True)
                loss = loss + ((grad.reshape(batch, -1).norm(2, dim=1) - 1) ** 2).mean()
            loss.backward()
        return run
    def d_fake():
        logits, logits_32, _ = D(img)
        (logits.mean() + logits_32.mean()).backward()
    def d_main_path():
        x = img.clone().requires_grad_(True)
        for net, attn in D.residual_layers:
            x = net(x if attn is None else attn(x) + x)
        D.to_logits(x).mean().backward()
    def d_head_32():
        D.to_shape_disc_out(F.interpolate(img, size=(32, 32)).requires_grad_(True)).mean().backward()
    with torch.no_grad():
        features_8x8 = img
        for net, attn in D.residual_layers:
            features_8x8 = net(features_8x8 if attn is None else attn(features_8x8) + features_8x8)
    def d_decoder():
        recon = D.decoder1(features_8x8.clone().requires_grad_(True))
        F.mse_loss(recon, F.interpolate(img, size=recon.shape[2:])).backward()
    parts = {
        'G forward+backward': lambda: G(z).mean().backward(),
        'D forward+backward on fakes (logits, 32x32 head)': d_fake,
        'D forward+backward on reals (+ auto-encoding decoder)': d_real(False),
        'D on reals with the gradient penalty (double backward)': d_real(True),
        '  of D: main path (residual layers, attention at 32x32) f+b': d_main_path,
        '  of D: 32x32 head (two attention layers at 32x32) f+b': d_head_32,
        '  of D: decoder of the auto-encoding loss (8x8 features -> 128x128) f+b': d_decoder,
    }
    load_start = load_average()
    flops = {}
    for name, fn in parts.items():
        try:
            with FlopCounterMode(display=False) as counter:
                fn()
            flops[name] = counter.get_total_flops()
        except RuntimeError:    # torch's counter cannot follow autograd.grad (the penalty): that row goes uncounted.
            flops[name] = None
    with cuda_calls_on(device):
        seconds = timing.best_seconds(parts, device, rounds=rounds, min_round_s=0.0)
        cycle_start = time.perf_counter()
        step.cycle()
        cycle = (time.perf_counter() - cycle_start) / GP_CYCLE
    workdir.cleanup()
    print(f'# Where the authors\' training step spends its time ({res}x{res}, batch {batch}); {timing.describe(device)}; '
          f'load average {load_start} at the start, {load_average()} at the end; best of {rounds}')
    print()
    print('FLOPs counted by torch.utils.flop_counter (matmuls and convolutions); GFLOP/s compares the parts with each other.')
    print()
    print('| part | s / call | s / image | vs a mean step | GFLOP / image | GFLOP/s |')
    print('|---|---:|---:|---:|---:|---:|')
    for name, sec in seconds.items():
        counted = f'{flops[name] / batch / 1e9:.2f} | {flops[name] / sec / 1e9:.1f}' if flops[name] is not None else 'not counted | '
        print(f'| {name} | {sec:.3f} | {sec / batch:.4f} | {sec / cycle:.0%} | {counted} |')
    print(f'| a step (mean over a cycle of {GP_CYCLE}, one with the penalty) | {cycle:.3f} | {cycle / batch:.4f} | 100% | | |')
    print()
    print(f'For scale, our D (--cfg={config["cfg"]}) forward+backward: {our_d_flops(config, batch, device) / batch / 1e9:.2f} GFLOP / image, '
          f'counted the same way.')
    print()
    print('A D step runs D on fakes and on reals (the penalty on every 4th step); a G step runs G and D forward+backward once.')
    print()
    with torch_profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else []), record_shapes=True) as prof:
        d_real(False)()
        timing.synchronize(device)
    sort_by = 'self_cuda_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
    print('Operators of one D forward+backward on reals, by self time:')
    print()
    print('```')
    print(prof.key_averages(group_by_input_shape=True).table(sort_by=sort_by, row_limit=12, max_name_column_width=36,
                                                             max_shapes_column_width=70))
    print('```')

def our_d_flops(config: dict, batch: int, device: torch.device) -> int:
    """FLOPs of one forward+backward of our D as the preset builds it, at `batch` images."""
    from torch.utils.flop_counter import FlopCounterMode   # pylint: disable=import-outside-toplevel
    res = config['resolution']
    c = build_training_config(dict(cfg=config['cfg'], batch=batch, aug='noaug', metrics=[], device=device.type),
                              dict(name='bench', resolution=res, num_channels=3, num_images=batch, has_labels=False))
    D = dnnlib.util.construct_class_by_name(**c.D_kwargs, c_dim=0, img_resolution=res, img_channels=3).to(device)
    with FlopCounterMode(display=False) as counter:
        D(torch.randn([batch, 3, res, res], device=device), torch.zeros([batch, 0], device=device)).sum().backward()
    return counter.get_total_flops()

#----------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--fpainter', default=None, metavar='DIR', help=f'IDSIA/fpainter checkout (default ${FPAINTER_ENV}, else {DEFAULT_FPAINTER})')
    parser.add_argument('--quick', action='store_true', help='fpa-cpu generator sizes at 32x32 instead of the paper\'s 64x64 FPA')
    parser.add_argument('--device', default='cpu', help='cpu or cuda (default cpu)')
    parser.add_argument('--batch', type=int, default=16, help='images per step on both sides (default 16)')
    parser.add_argument('--rounds', type=int, default=2, help='rounds, the two code bases alternating (default 2)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--profile', action='store_true', help='profile one step cycle of each instead of the table')
    args = parser.parse_args(argv)
    if args.batch < 4 or args.batch % 4 != 0:
        parser.error(f'--batch={args.batch}: expected a positive multiple of 4 (our minibatch-std group)')
    if args.rounds < 1:
        parser.error(f'--rounds={args.rounds}: expected at least 1')
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads={args.threads}: expected at least 1')
    device = timing.device_from_arg(args.device)
    path, explicit = fpainter_dir(args.fpainter)
    source = '--fpainter' if args.fpainter is not None else FPAINTER_ENV
    try:
        code_dir = check_checkout(path, explicit, source)
        painter = import_authors(code_dir, device)
    except BenchSkip as skip:
        print(f'bench_authors_training.py: skipped, {skip}.')
        return
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = CONFIGS['quick' if args.quick else 'paper']
    if args.profile:
        profile(painter, config, args.batch, device, args.rounds)
    else:
        table(painter, config, args.batch, device, args.rounds)

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
