"""training.config.build_training_config: presets, overrides, generator swaps, validation."""

import re

import pytest

import dnnlib
from training import config
from training.config import ConfigError, build_training_config, describe_run

def _info(resolution=64, num_channels=3, num_images=1000, has_labels=False, name='cats'):
    return dict(name=name, resolution=resolution, num_channels=num_channels, num_images=num_images, has_labels=has_labels)

def _build(info=None, **opts):
    opts.setdefault('data', 'cats.zip')
    opts.setdefault('metrics', [])
    return build_training_config(opts, _info() if info is None else info)

#----------------------------------------------------------------------------
# Presets: upstream's tables.

@pytest.mark.parametrize('cfg, mb, mbstd, cbase, lrate, gamma, ema, ramp, map_layers', [
    ('stylegan2', 32, 4, 32768, 0.002, 10, 10, None, 8),
    ('paper256', 64, 8, 16384, 0.0025, 1, 20, None, 8),
    ('paper512', 64, 8, 32768, 0.0025, 0.5, 20, None, 8),
    ('paper1024', 32, 4, 32768, 0.002, 2, 10, None, 8),
    ('cifar', 64, 32, 32768, 0.0025, 0.01, 500, 0.05, 2),
])
def test_stylegan2_ada_tables(cfg, mb, mbstd, cbase, lrate, gamma, ema, ramp, map_layers):
    c = _build(cfg=cfg)
    assert c.batch_size == mb
    assert c.D_kwargs.mbstd_group_size == mbstd
    assert c.D_kwargs.channel_base == cbase and c.G_kwargs.channel_base == cbase
    assert c.G_opt_kwargs.lr == c.D_opt_kwargs.lr == lrate
    assert c.G_opt_kwargs.betas == [0.0, 0.99] and c.G_opt_kwargs.eps == 1e-8
    assert c.G_opt_kwargs.fused and c.D_opt_kwargs.fused     # torch's one-kernel Adam (same update to rounding).
    assert c.loss_kwargs.r1_gamma == gamma
    assert c.ema_kimg == ema and c.ema_rampup == ramp
    assert c.G_kwargs['mapping_kwargs']['num_layers'] == map_layers
    assert c.G_kwargs.class_name == 'networks.stylegan2.Generator'
    assert c.D_kwargs.class_name == 'networks.stylegan2.Discriminator'
    # batch_gpu = mb / ref_gpus on one GPU: gradient accumulation as upstream.
    assert c.batch_gpu == mb // (2 if cfg == 'cifar' else 8)

def test_cifar_turns_off_pl_and_mixing_and_uses_orig_d():
    c = _build(cfg='cifar')
    assert c.loss_kwargs.pl_weight == 0 and c.loss_kwargs.style_mixing_prob == 0
    assert c.G_reg_interval is None and c.D_kwargs.architecture == 'orig'
    c = _build(cfg='stylegan2')
    assert c.loss_kwargs.pl_weight == 2 and c.loss_kwargs.style_mixing_prob == 0.9 and c.G_reg_interval == 4
    assert c.D_reg_interval == 16 and c.D_kwargs.architecture == 'resnet'

def test_auto_rules():
    # SG3's docs/configs.md: the auto config at 256^2 on 1 GPU is batch 16, gamma 0.8192, cbase 16384.
    c = _build(cfg='auto', info=_info(resolution=256))
    assert c.batch_size == 16 and c.batch_gpu == 16
    assert c.loss_kwargs.r1_gamma == pytest.approx(0.8192)
    assert c.G_kwargs.channel_base == 16384 and c.G_opt_kwargs.lr == 0.0025
    assert c.G_kwargs['mapping_kwargs']['num_layers'] == 2
    assert c.ema_kimg == pytest.approx(5) and c.ema_rampup == 0.05
    c = _build(cfg='auto', info=_info(resolution=1024), gpus=8)
    assert c.batch_size == 32 and c.batch_gpu == 4 and c.D_kwargs.mbstd_group_size == 4
    assert c.G_opt_kwargs.lr == 0.002 and c.G_kwargs.channel_base == 32768

def test_fpa_preset():
    c = _build(cfg='fpa')
    assert c.G_kwargs.class_name == 'networks.fpa.Generator'
    assert c.G_kwargs.rule == 'delta' and c.G_kwargs.z_dim == 512
    assert 'channel_base' not in c.G_kwargs and 'mapping_kwargs' not in c.G_kwargs, 'StyleGAN2 options leaked into the FPA'
    assert c.D_kwargs.class_name == 'networks.stylegan2.Discriminator' and c.D_kwargs.channel_base == 16384
    assert c.batch_size == 32 and c.batch_gpu == 32
    assert c.loss_kwargs.r1_gamma == pytest.approx(0.0002 * 64 ** 2 / 32)
    assert c.loss_kwargs.pl_weight == 0 and c.G_reg_interval is None
    assert c.augment_kwargs.class_name == 'training.augment.AugmentPipe' and c.ada_target == 0.6
    c = _build(cfg='fpa-unet')
    assert c.G_kwargs.unet_kwargs is not None

def test_fpa_cpu_preset_scales_the_fpa_and_d_down():
    c = _build(cfg='fpa-cpu', info=_info(resolution=32, num_channels=1))
    assert c.G_kwargs.class_name == 'networks.fpa.Generator' and c.G_kwargs.rule == 'delta'
    assert (c.G_kwargs.num_steps, c.G_kwargs.hidden_dim, c.G_kwargs.step_input_dim) == (32, 256, 64)
    assert c.D_kwargs.channel_base == 1024 and c.D_kwargs.channel_max == 128
    assert c.batch_size == 16 and c.batch_gpu == 16, 'batch 16: measured better than 32 at equal CPU time (docs/results.md)'
    assert c.ema_kimg == 10, 'EMA as measured: that of batch 32'
    assert c.loss_kwargs.r1_gamma == pytest.approx(0.5), 'gamma 0.5 at 32x32: the FPA collapsed with auto\'s 0.0064 (docs/results.md)'
    assert _build(cfg='fpa-cpu', info=_info(resolution=64)).loss_kwargs.r1_gamma == pytest.approx(2), 'gamma ~ res^2, as auto'
    assert _build(cfg='fpa-cpu', gamma=0.01, info=_info(resolution=32)).loss_kwargs.r1_gamma == 0.01, '--gamma overrides'
    c = _build(cfg='fpa-cpu', gen='stylegan2', info=_info(resolution=32))
    assert 'num_steps' not in c.G_kwargs, 'FPA options leaked into StyleGAN2'
    assert c.G_kwargs.channel_base == 1024 and c.G_kwargs.channel_max == 128
    with pytest.raises(ConfigError, match='resolution 128x128 is not supported by --cfg=fpa-cpu'):
        _build(cfg='fpa-cpu', info=_info(resolution=128))

def test_gen_swaps_the_generator_and_family_options_follow_the_class():
    c = _build(cfg='stylegan2', gen='fpa')
    assert c.G_kwargs.class_name == 'networks.fpa.Generator'
    assert 'channel_base' not in c.G_kwargs
    assert c.loss_kwargs.style_mixing_prob == 0.9, 'the preset keeps its loss settings'
    c = _build(cfg='fpa', gen='stylegan2')
    assert c.G_kwargs.class_name == 'networks.stylegan2.Generator'
    assert c.G_kwargs.channel_base == 16384 and c.G_kwargs['mapping_kwargs']['num_layers'] == 2

def test_overrides():
    c = _build(cfg='stylegan2', batch=16, gamma=3.5, kimg=100, tick=2, snap=5, seed=7, mirror=True, cbase=8192, cmax=256,
               freezed=3, workers=0, aug='fixed', p=0.3, augpipe='blit', precision='bf16', gpus=2)
    assert c.batch_size == 16 and c.batch_gpu == 8 and c.num_gpus == 2
    assert c.loss_kwargs.r1_gamma == 3.5 and c.total_kimg == 100
    assert c.kimg_per_tick == 2 and c.image_snapshot_ticks == c.network_snapshot_ticks == 5
    assert c.random_seed == 7 and c.training_set_kwargs.xflip and c.training_set_kwargs.random_seed == 7
    assert c.D_kwargs.channel_base == 8192 and c.D_kwargs.channel_max == 256 and c.G_kwargs.channel_max == 256
    assert c.D_kwargs.freeze_layers == 3
    assert c.data_loader_kwargs.num_workers == 0
    assert c.augment_p == 0.3 and c.ada_target is None
    assert set(c.augment_kwargs) == {'class_name', 'xflip', 'rotate90', 'xint'}
    assert c.precision == 'bf16'

@pytest.mark.parametrize('device, gpus, cores, expected', [
    ('cpu', 1, 2, 0), ('cpu', 1, 64, 0), ('cpu', 2, 2, 0),     # The CPU: the training process uses the cores.
    ('cuda', 1, 64, 3), ('cuda', 8, 64, 3),                    # Upstream's 3 where cores are plenty,
    ('cuda', 1, 3, 2), ('cuda', 2, 4, 1), ('cuda', 4, 4, 0),   # fewer where they are not (one per GPU process),
    ('cuda', 1, None, 0),                                       # and none when the count is unknown.
])
def test_default_workers(device, gpus, cores, expected):
    assert config.default_workers(device, gpus, cores) == expected

def test_workers_default_and_override(monkeypatch):
    monkeypatch.setattr(config.os, 'cpu_count', lambda: 16)
    assert _build(cfg='fpa', device='cpu').data_loader_kwargs.num_workers == 0
    assert _build(cfg='fpa', device='cuda').data_loader_kwargs.num_workers == 3
    assert _build(cfg='fpa', device='cuda', gpus=8).data_loader_kwargs.num_workers == 1
    assert _build(cfg='fpa', device='cpu', workers=2).data_loader_kwargs.num_workers == 2, 'an explicit --workers wins'

def test_fp16_layers_only_on_cuda_and_not_with_fp32():
    assert _build(cfg='stylegan2', device='cuda').D_kwargs.num_fp16_res == 4
    c = _build(cfg='stylegan2', device='cuda', fp32=True)
    assert c.D_kwargs.num_fp16_res == 0 and c.D_kwargs.conv_clamp is None and c.G_kwargs.num_fp16_res == 0
    assert _build(cfg='stylegan2', device='cpu').G_kwargs.num_fp16_res == 0

def test_resume_kinds():
    c = _build(cfg='fpa', resume='runs/00001-x/resume-000100.pt')
    assert c.resume_state == 'runs/00001-x/resume-000100.pt' and c.resume_pkl is None
    assert c.ada_kimg == 500 and c.ema_rampup == 0.05, 'an exact resume changes nothing'
    c = _build(cfg='fpa', resume='ffhq.pkl')
    assert c.resume_pkl == 'ffhq.pkl' and c.resume_state is None
    for source in ('fpainter/model_1.pt', 'https://example.org/x/network-snapshot-000200.pkl', 'ffhq256'):
        c = _build(cfg='fpa', resume=source)       # A reference FPA checkpoint (.pt), a URL, a name: weights only.
        assert c.resume_pkl == source and c.resume_state is None, source
    assert c.ada_kimg == 100 and c.ema_rampup is None

def test_two_stage_fpa_unet():
    c = _build(cfg='fpa-unet', resume='fpa.pkl', freeze_fpa=True)
    assert c.G_kwargs.train_fpa is False and c.resume_pkl == 'fpa.pkl'

def test_subset_and_cond():
    assert _build(subset=10).training_set_kwargs.max_size == 10
    assert _build(subset=5000).training_set_kwargs.max_size is None
    assert _build(cond=True, info=_info(has_labels=True)).training_set_kwargs.use_labels

def test_describe_run():
    assert describe_run(dict(cfg='auto', gpus=1), _info()) == 'cats-auto1'
    assert describe_run(dict(cfg='fpa', gen='fpa-v1', mirror=True, gamma=0.5, kimg=100, aug='noaug'), _info()) == \
        'cats-mirror-fpa-genfpa-v1-gpus1-gamma0.5-kimg100-noaug'   # The GPU count for every cfg, as upstream's auto1.

#----------------------------------------------------------------------------
# Validation: one clear message naming the option.

@pytest.mark.parametrize('opts, info, message', [
    (dict(cfg='fpa'), _info(resolution=48), 'resolution 48x48 is not supported by --cfg=fpa'),
    (dict(cfg='fpa'), _info(resolution=512), 'resolution 512x512 is not supported'),
    (dict(cfg='stylegan2', batch=30, gpus=4), None, '--batch=30 is not divisible by --gpus=4'),
    (dict(cfg='stylegan2', batch=32, batch_gpu=6), None, '--batch-gpu=6: must divide'),
    (dict(cfg='stylegan2', batch=36, batch_gpu=6), None, '--batch-gpu=6 is not a multiple of the minibatch-std group 4'),
    (dict(cfg='nope'), None, '--cfg=nope'),
    (dict(gen='nope'), None, '--gen=nope'),
    (dict(precision='fp16'), None, 'fp16 needs CUDA'),
    (dict(fp32=True, precision='bf16'), None, '--fp32 contradicts --precision=bf16'),
    (dict(cfg='fpa', batch=8, gpus=4), None, '--batch-gpu=2 is smaller than the minibatch-std group 4 (--mbstd-group); give --batch-gpu >= 4 or --mbstd-group <= 2'),
    (dict(cfg='cifar', gpus=4), None, '--batch-gpu=16 is smaller than the minibatch-std group 32'),
    (dict(cfg='fpa', map_depth=4), None, '--map-depth=4: generator "fpa" (networks.fpa.Generator) has no mapping layers'),
    (dict(cfg='fpa', gen='stylegan2', fpa_steps=16), None, '--fpa-steps/--fpa-vector-lr: generator "stylegan2" (networks.stylegan2.Generator) is not an FPA'),
    (dict(cfg='stylegan2', fpa_vector_lr=True), None, 'is not an FPA'),
    (dict(cfg='fpa', fpa_steps=0), None, '--fpa-steps=0: expected at least 1'),
    (dict(glr=0), None, '--glr=0: expected a positive learning rate'),
    (dict(p=0.5), None, '--p can only be given with --aug=fixed'),
    (dict(aug='noaug', target=0.5), None, '--target can only be given with --aug=ada'),
    (dict(cond=True), None, 'has no labels'),
    (dict(freeze_fpa=True, cfg='fpa-unet'), None, '--freeze-fpa needs --resume'),
    (dict(freeze_fpa=True, cfg='stylegan2', resume='x.pkl'), None, 'has no FPA to freeze'),
    (dict(kimg=0), None, '--kimg=0: expected a positive number'),
    (dict(bogus=1), None, 'unknown options: bogus'),
])
def test_validation(opts, info, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        _build(info=info, **opts)

def test_upstream_overrides_glr_dlr_map_depth_mbstd_group():
    c = _build(cfg='stylegan2', glr=0.001, dlr=0.003, map_depth=2, mbstd_group=2)
    assert c.G_opt_kwargs.lr == 0.001 and c.D_opt_kwargs.lr == 0.003
    assert c.G_kwargs['mapping_kwargs']['num_layers'] == 2 and c.D_kwargs.mbstd_group_size == 2
    assert describe_run(dict(cfg='stylegan2', glr=0.001, dlr=0.003, map_depth=2, mbstd_group=2), _info()) == \
        'cats-stylegan2-gpus1-glr0.001-dlr0.003-map2-mbstd2'
    c = _build(cfg='fpa', gen='stylegan2', map_depth=3)
    assert c.G_kwargs['mapping_kwargs']['num_layers'] == 3

def test_mode_seeking_reaches_the_loss():
    assert 'mode_seeking' not in _build(cfg='stylegan2').loss_kwargs, 'off unless a preset or the option sets it'
    c = _build(cfg='stylegan2', mode_seeking=0.5)
    assert c.loss_kwargs.mode_seeking == 0.5
    assert describe_run(dict(cfg='stylegan2', mode_seeking=0.5), _info()) == 'cats-stylegan2-gpus1-ms0.5'
    with pytest.raises(ConfigError, match=re.escape('--mode-seeking=-1: expected a finite weight of at least 0')):
        _build(cfg='stylegan2', mode_seeking=-1)

def test_fpa_steps_and_vector_lr_reach_the_painter():
    c = _build(cfg='fpa-cpu', fpa_steps=64, fpa_vector_lr=True)
    assert c.G_kwargs.num_steps == 64 and c.G_kwargs.vector_lr is True and c.G_kwargs.hidden_dim == 256, 'the rest of the preset stays'
    assert _build(cfg='fpa-cpu').G_kwargs.num_steps == 32 and 'vector_lr' not in _build(cfg='fpa-cpu').G_kwargs
    assert _build(cfg='fpa-unet-cpu', fpa_steps=8).G_kwargs.num_steps == 8
    assert describe_run(dict(cfg='fpa-cpu', fpa_steps=64, fpa_vector_lr=True), _info()) == 'cats-fpa-cpu-gpus1-T64-veclr1'
    G = dnnlib.util.construct_class_by_name(**_build(cfg='fpa-cpu', fpa_steps=4, fpa_vector_lr=True).G_kwargs, img_resolution=32, img_channels=3, c_dim=0)
    assert G.num_ws == 4 and G.synthesis.num_lrs == 32

def test_backend_switches_as_stylegan2_ada():
    c = _build()
    assert c.cudnn_benchmark is True and c.allow_tf32 is False, 'TF32 stays off unless asked for, as upstream'
    assert 'block_kwargs' not in c.D_kwargs and 'fp16_channels_last' not in c.G_kwargs
    c = _build(cfg='stylegan2', nobench=True, allow_tf32=True, nhwc=True)
    assert c.cudnn_benchmark is False and c.allow_tf32 is True
    assert c.D_kwargs.block_kwargs == dict(fp16_channels_last=True) and c.G_kwargs.fp16_channels_last is True
    assert 'fp16_channels_last' not in _build(cfg='fpa', nhwc=True).G_kwargs, 'the FPA has no fp16 layers'

def test_fixed_augmentation_defaults_to_p_0_2_as_stylegan3():
    assert _build(aug='fixed').augment_p == 0.2
    assert _build(aug='fixed', p=0.5).augment_p == 0.5

def test_fpa_presets_scale_with_gpus_like_auto():
    """Per-GPU batch fixed (32; fpa-cpu 16), the total grows; gamma ~ 1/total batch and the EMA half-life
    ~ total batch (auto's rules), so per optimiser step the EMA decay stays the same."""
    for cfg, batch_gpu in (('fpa', 32), ('fpa-unet', 32), ('fpa-cpu', 16)):
        for gpus in (1, 4, 8):
            c = _build(cfg=cfg, gpus=gpus, info=_info(resolution=32))
            assert c.batch_size == batch_gpu * gpus and c.batch_size // c.num_gpus == c.batch_gpu == batch_gpu, (cfg, gpus)
            gamma_1gpu = 0.5 if cfg == 'fpa-cpu' else 0.0002 * 32 ** 2 / 32
            assert c.loss_kwargs.r1_gamma == pytest.approx(gamma_1gpu / gpus), (cfg, gpus)
            assert c.ema_kimg == pytest.approx(10 * gpus)
    assert describe_run(dict(cfg='fpa', gpus=4), _info(name='afhq')) == 'afhq-fpa-gpus4'

def test_every_preset_has_a_help_line():
    assert list(config.PRESET_HELP) == list(config.PRESETS)
    assert all(0 < len(line) <= 100 and '\n' not in line for line in config.PRESET_HELP.values())

def test_builder_has_no_side_effects(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _build(cfg='fpa', resume='does/not/exist.pt')
    assert list(tmp_path.iterdir()) == []

def test_every_preset_builds():
    for cfg in config.PRESETS:
        needs_gamma = config.preset_spec(cfg, 64, 1).gamma is None     # StyleGAN3's presets, as its train.py.
        c = _build(cfg=cfg, **(dict(gamma=2) if needs_gamma else {}))
        assert c.batch_size % c.batch_gpu == 0

def test_stylegan3_presets_are_upstreams():
    """StyleGAN3's train.py --cfg=stylegan3-t/-r --batch=32 --gamma=G: 2 mapping layers, capacity
    32768/512 (R: G doubled, D not), G lr 0.0025, D lr 0.002, EMA batch * 10/32 kimg, magnitude
    EMA beta 0.5^(batch/20k), no style mixing or path length; R blurs D's inputs (10 px over
    batch * 200/32 kimg). The batch is split evenly over the GPUs."""
    for gpus in (1, 4):
        t = _build(cfg='stylegan3-t', gamma=8.2, gpus=gpus)
        assert t.G_kwargs.class_name == 'networks.stylegan3.Generator' and t.G_kwargs.mapping_kwargs['num_layers'] == 2
        assert (t.G_kwargs.channel_base, t.G_kwargs.channel_max, t.D_kwargs.channel_base, t.D_kwargs.channel_max) == (32768, 512, 32768, 512)
        assert t.batch_size == 32 and t.batch_gpu == 32 // gpus and t.D_kwargs.mbstd_group_size == 4
        assert (t.G_opt_kwargs.lr, t.D_opt_kwargs.lr, t.loss_kwargs.r1_gamma, t.ema_kimg, t.ema_rampup) == (0.0025, 0.002, 8.2, 10, 0.05)
        assert t.G_kwargs.magnitude_ema_beta == pytest.approx(0.5 ** (32 / 20000))
        assert t.loss_kwargs.pl_weight == 0 and t.loss_kwargs.style_mixing_prob == 0 and t.G_reg_interval is None
        assert 'blur_init_sigma' not in t.loss_kwargs and t.G_kwargs.get('conv_kernel', 3) == 3
    r = _build(cfg='stylegan3-r', gamma=2, batch=64, cbase=16384)
    assert (r.G_kwargs.channel_base, r.G_kwargs.channel_max, r.D_kwargs.channel_base, r.D_kwargs.channel_max) == (32768, 1024, 16384, 512)
    assert r.G_kwargs.conv_kernel == 1 and r.G_kwargs.use_radial_filters
    assert (r.loss_kwargs.blur_init_sigma, r.loss_kwargs.blur_fade_kimg, r.ema_kimg) == (10, 400, 20)
    assert r.G_kwargs.magnitude_ema_beta == pytest.approx(0.5 ** (64 / 20000))
    assert _build(cfg='stylegan3-t', gamma=1, device='cuda').G_kwargs.num_fp16_res == 4

def test_stylegan3_needs_gamma_but_its_cpu_preset_does_not():
    with pytest.raises(ConfigError, match=r'^--cfg=stylegan3-r needs --gamma \(the R1 weight'):
        _build(cfg='stylegan3-r')
    c = _build(cfg='stylegan3-t-cpu', info=_info(resolution=32))
    assert c.loss_kwargs.r1_gamma == pytest.approx(2 * (32 / 256) ** 2) and c.batch_size == 16
    assert (c.G_kwargs.num_layers, c.G_kwargs.channel_max, c.D_kwargs.channel_max) == (6, 64, 128)
    with pytest.raises(ConfigError, match='resolution 128x128 is not supported by --cfg=stylegan3-t-cpu'):
        _build(cfg='stylegan3-t-cpu', info=_info(resolution=128))

def test_precision_auto_is_bf16_on_a_cpu_with_native_bf16_else_fp32(monkeypatch):
    monkeypatch.setattr(config, 'cpu_has_native_bf16', lambda: True)
    assert _build().precision == 'bf16' and _build(precision='fp32').precision == 'fp32'
    assert _build(fp32=True).precision == 'fp32', '--fp32 keeps float32 everywhere'
    assert _build(device='cuda').precision == 'fp32', "on CUDA upstream's default (fp16 layers, no autocast)"
    assert _build(device='cuda').D_kwargs.num_fp16_res == 4
    assert describe_run(dict(cfg='fpa'), _info()) == 'cats-fpa-gpus1', 'the default adds only the GPU count to the run name'
    monkeypatch.setattr(config, 'cpu_has_native_bf16', lambda: False)
    assert _build().precision == 'fp32' and _build(precision='bf16').precision == 'bf16'
