"""Timing helpers shared by the benchmarks, on CPU and on CUDA.

Every benchmark compares variants side by side in one run; these helpers make the numbers
comparable: warm-up first, the device synchronised before each clock read (CUDA work is
asynchronous), several rounds with the variants alternating, and the fastest round kept (the
least disturbed measurement on a shared machine).
"""

import contextlib
import time

import torch

#----------------------------------------------------------------------------

def device_from_arg(name: str) -> torch.device:
    """--device=cpu|cuda|cuda:N, with a clear error when CUDA is asked for but absent."""
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ('cpu', 'cuda'):
        raise SystemExit(f'--device={name}: expected cpu, cuda or cuda:N')
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit(f'--device={name}: no CUDA device is available (torch {torch.__version__})')
    return device

def describe(device: torch.device) -> str:
    """One phrase naming where the benchmark runs, for the table's caption."""
    if device.type == 'cuda':
        return f'{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}, torch {torch.__version__}'
    return f'CPU, {torch.get_num_threads()} threads, torch {torch.__version__}'

def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)

@contextlib.contextmanager
def tf32(enabled: bool):
    """float32 matrix products (torch.matmul, nn.Linear) and cuDNN (convolutions, RNNs) with
    TensorFloat-32 allowed or not, on CUDA; the previous settings are restored on exit. With
    enabled=False float32 stays IEEE float32 on every device."""
    prev_matmul, prev_cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision('high' if enabled else 'highest')
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(prev_matmul)
        torch.backends.cudnn.allow_tf32 = prev_cudnn

#----------------------------------------------------------------------------

def best_seconds(fns: dict, device: torch.device, rounds: int = 3, min_round_s: float = 0.3) -> dict:
    """Seconds per call of every callable in `fns` (name -> fn): the fastest of `rounds`
    rounds, each repeating the call until `min_round_s` has passed, the callables alternating
    round by round so that a disturbance hits them alike. One warm-up call each first."""
    for fn in fns.values():
        fn()
    synchronize(device)
    best = {name: float('inf') for name in fns}
    for _round in range(rounds):
        for name, fn in fns.items():
            reps, start = 0, time.perf_counter()
            while True:
                fn()
                reps += 1
                synchronize(device)
                elapsed = time.perf_counter() - start
                if elapsed >= min_round_s:
                    break
            best[name] = min(best[name], elapsed / reps)
    return best

def peak_cuda_bytes(fn, device: torch.device) -> int:
    """Bytes allocated by `fn` at its peak on a CUDA device, beyond what was allocated before."""
    assert device.type == 'cuda'
    synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base

def matmul_flops_per_s(dtype: torch.dtype, size: int, device: torch.device, rounds: int = 3) -> float:
    """FLOP/s of a square matrix product of random data (a ceiling to compare kernels with)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn([size, size], generator=gen).to(device=device, dtype=dtype)
    b = torch.randn([size, size], generator=gen).to(device=device, dtype=dtype)
    seconds = best_seconds({'matmul': lambda: a @ b}, device, rounds=rounds, min_round_s=0.2)['matmul']
    return 2 * size ** 3 / seconds

#----------------------------------------------------------------------------

CUDA_PLUGINS = ('bias_act', 'upfirdn2d') # torch_utils/ops modules with a compiled plugin (a _plugin() builder).

def build_cuda_plugins() -> dict:
    """Build (first use: about a minute each, with nvcc and ninja) or load the CUDA plugins of
    torch_utils/ops, so that no timed call pays for it. Returns plugin name -> the reason it is
    unavailable (custom_ops.PluginUnavailable), for each one that is; the ops then use torch code."""
    import importlib # pylint: disable=import-outside-toplevel
    from torch_utils import custom_ops # pylint: disable=import-outside-toplevel
    unavailable = {}
    for name in CUDA_PLUGINS:
        try:
            importlib.import_module(f'torch_utils.ops.{name}')._plugin() # pylint: disable=protected-access
        except custom_ops.PluginUnavailable as err:
            unavailable[name] = str(err)
    return unavailable

#----------------------------------------------------------------------------
