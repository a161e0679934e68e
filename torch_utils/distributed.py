"""Multi-process training helpers: process-group set-up and teardown, rank and world size,
broadcast of parameters and buffers, and gradient averaging with one flat all-reduce.

Gradient synchronisation follows StyleGAN3 (Karras et al., "Alias-Free Generative
Adversarial Networks", 2021, training_loop): parameters and buffers are broadcast from
rank 0 once at start, and after every backward pass all gradients are concatenated into
one flat vector, all-reduced and divided by the world size. Unlike per-submodule
DistributedDataParallel this works for any module tree, so every registered generator
trains unchanged. The backend is NCCL on CUDA and gloo on CPU; the same code runs under
`torch.multiprocessing.spawn` (train.py --gpus=N) and under torchrun (RANK, WORLD_SIZE,
LOCAL_RANK and MASTER_ADDR/MASTER_PORT in the environment).
"""

import os
from typing import Iterable

import torch

#----------------------------------------------------------------------------
# Process group.

def backend_for(device_type: str) -> str:
    return 'nccl' if device_type == 'cuda' else 'gloo'

def init(rank: int, world_size: int, device_type: str, init_method: str | None = None) -> None:
    """Join a process group of `world_size` processes (no-op for a single process).
    `init_method` is a file:// or tcp:// URL; None = read MASTER_ADDR/MASTER_PORT (torchrun)."""
    if world_size <= 1 or torch.distributed.is_initialized():
        return
    torch.distributed.init_process_group(backend=backend_for(device_type), init_method=init_method or 'env://',
                                         rank=rank, world_size=world_size)

def env_launch() -> tuple[int, int, int] | None:
    """(rank, world_size, local_rank) when launched by torchrun, else None."""
    if 'RANK' not in os.environ or 'WORLD_SIZE' not in os.environ:
        return None
    rank = int(os.environ['RANK'])
    world_size = int(os.environ['WORLD_SIZE'])
    local_rank = int(os.environ.get('LOCAL_RANK', rank))
    return rank, world_size, local_rank

def teardown() -> None:
    """Leave the process group together: a rank that tore its connections down while another
    was still finishing made gloo abort that other process (seen as a rare SIGABRT at exit)."""
    if torch.distributed.is_initialized():
        if torch.distributed.get_world_size() > 1:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()

def get_rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0

def get_world_size() -> int:
    return torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1

def barrier() -> None:
    if get_world_size() > 1:
        torch.distributed.barrier()

#----------------------------------------------------------------------------
# Broadcasts.

@torch.no_grad()
def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Overwrite every parameter and buffer of `module` with rank `src`'s values."""
    if get_world_size() <= 1:
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        torch.distributed.broadcast(tensor.data, src=src)

def broadcast_object(obj, src: int = 0):
    """Rank `src`'s value of a picklable object (e.g. the run directory chosen by rank 0)."""
    if get_world_size() <= 1:
        return obj
    holder = [obj]
    torch.distributed.broadcast_object_list(holder, src=src)
    return holder[0]

#----------------------------------------------------------------------------
# Gradients.

@torch.no_grad()
def sync_gradients(params: Iterable[torch.Tensor], nan_to: float = 0.0, inf_to: float = 1e5) -> torch.Tensor:
    """Average the gradients of `params` over all processes with one flat all-reduce, then
    replace non-finite entries (NaN -> nan_to, +-inf -> +-inf_to), as StyleGAN2-ADA does
    before every optimizer step. Parameters without a gradient are skipped; which ones have
    one must agree across processes (it does: every process runs the same phases).
    Returns the number of non-finite gradient entries (after averaging) as a 0-dim tensor
    on the gradients' device, so that counting does not wait for the GPU."""
    params = [p for p in params if p.grad is not None and p.numel() > 0]
    if len(params) == 0:
        return torch.zeros([], dtype=torch.int64)
    world_size = get_world_size()
    if world_size == 1 and params[0].grad.device.type == 'cpu':
        # One process on a CPU, where waiting costs nothing: the float64 sum of a gradient is
        # finite when every entry is (a sum that overflows only takes the exact path below).
        # Much faster than the flat path for fpa-cpu's G, whose gradients are nearly always finite.
        sums = torch.stack([p.grad.sum(dtype=torch.float64) for p in params])
        if bool(sums.isfinite().all()):
            return torch.zeros([], dtype=torch.int64)
    flat = torch.cat([p.grad.flatten() for p in params])
    if world_size > 1:
        torch.distributed.all_reduce(flat)
        flat /= world_size
    num_nonfinite = flat.numel() - torch.isfinite(flat).sum()
    torch.nan_to_num(flat, nan=nan_to, posinf=inf_to, neginf=-inf_to, out=flat)
    for p, grad in zip(params, flat.split([p.numel() for p in params])):
        p.grad.copy_(grad.reshape(p.shape))
    return num_nonfinite

#----------------------------------------------------------------------------
