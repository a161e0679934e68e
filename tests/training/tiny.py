"""Tiny network and loop settings shared by the training tests (fast on one CPU thread)."""

import dnnlib

TINY_FPA = dict(class_name='networks.fpa.Generator', z_dim=16, num_steps=4, step_latent_dim=4, step_input_dim=16, hidden_dim=32)
TINY_D = dict(class_name='networks.stylegan2.Discriminator', channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=None,
              mbstd_group_size=2)
ADAM = dict(class_name='torch.optim.Adam', lr=0.0025, betas=[0, 0.99], eps=1e-8, fused=True)   # As train.py's.

def loop_kwargs(data_path, **overrides):
    """training_loop kwargs for a tiny FPA + tiny StyleGAN2 D run on `data_path` (16x16)."""
    kwargs = dnnlib.EasyDict(
        training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=data_path),
        data_loader_kwargs=dict(num_workers=0),
        G_kwargs=dict(TINY_FPA), D_kwargs=dict(TINY_D), G_opt_kwargs=dict(ADAM), D_opt_kwargs=dict(ADAM),
        loss_kwargs=dict(class_name='training.loss.StyleGAN2Loss', r1_gamma=1.0),
        batch_size=4, batch_gpu=2, total_kimg=0.016, kimg_per_tick=0.008, image_snapshot_ticks=None,
        network_snapshot_ticks=None, ema_kimg=0.01, random_seed=1, print_fn=lambda *args, **kwargs: None,
    )
    kwargs.update(overrides)
    return kwargs
