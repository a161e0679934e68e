"""Two processes (gloo, CPU) train to the same weights as one process with the same total batch.

Why they can agree: both see the same latents (each rank takes its slice of one batch drawn
from a generator seeded by (seed, step)), the same set of real images per step (the sampler
shards one stream), networks initialised from the same seed, and gradients that are exact
means over the global batch (chunk losses are divided by the number of chunks; the flat
all-reduce divides by the world size). What differs is which reals share a chunk, so the
test turns the cross-sample minibatch-std statistic off (group size 1) and compares up to
float32 rounding of differently ordered sums.
"""

import os

import torch

from tests.conftest import assert_close
from tests.training.tiny import loop_kwargs
from torch_utils import distributed
from training import training_loop as tl

def _quiet(*args, **kwargs):
    pass

def _settings(image_folder, run_dir):
    kwargs = loop_kwargs(image_folder, run_dir=run_dir, batch_size=8, batch_gpu=4, total_kimg=0.032, D_reg_interval=2,
                         print_fn=_quiet)
    kwargs.D_kwargs = dict(kwargs.D_kwargs, mbstd_group_size=1)
    return kwargs

def _worker(rank, world_size, init_file, kwargs, out_path):
    torch.set_num_threads(1)
    distributed.init(rank=rank, world_size=world_size, device_type='cpu', init_method=f'file://{init_file}')
    try:
        result = tl.training_loop(**kwargs, rank=rank, num_gpus=world_size)
        if rank == 0:
            torch.save({name: dict(getattr(result, name).named_parameters()) for name in ('G', 'D', 'G_ema')}, out_path)
    finally:
        distributed.teardown()

def test_two_processes_match_one_process(image_folder, tmp_path):
    single = tl.training_loop(**_settings(image_folder, str(tmp_path)), rank=0, num_gpus=1)
    out_path = str(tmp_path / 'two.pt')
    torch.multiprocessing.start_processes(_worker, nprocs=2, start_method='spawn',
        args=(2, str(tmp_path / 'init'), dict(_settings(image_folder, str(tmp_path))), out_path))
    two = torch.load(out_path, weights_only=True)
    for name in ('G', 'D', 'G_ema'):
        init_changed = False
        for pname, p in getattr(single, name).named_parameters():
            assert_close(two[name][pname], p.detach(), rtol=1e-4, atol=1e-5, name=f'{name}.{pname}')
        for pname, p in getattr(single, name).named_parameters():
            init_changed |= bool(p.detach().abs().sum() > 0)
        assert init_changed
    assert os.path.exists(out_path)
