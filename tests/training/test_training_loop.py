"""End-to-end tests of training_loop on a tiny dataset (16x16, CPU): a smoke run, exact
resume, non-finite losses, resume from a network file, atomic writes."""

import json
import glob
import os

import numpy as np
import pytest
import torch

import dnnlib
import networks
from tests.conftest import assert_close
from tests.training.tiny import TINY_D, loop_kwargs
from training import loss as loss_module
from painting import paintings, pictures
from training import checkpoint
from training import training_loop as tl

#----------------------------------------------------------------------------

def _params(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}

def test_smoke_run_writes_files_and_trains(image_folder, tmp_path):
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    messages = []
    torch.manual_seed(123)
    kwargs = loop_kwargs(image_folder, run_dir=str(run_dir), image_snapshot_ticks=1, network_snapshot_ticks=1,
                         G_reg_interval=2, D_reg_interval=2, loss_kwargs=dict(class_name='training.loss.StyleGAN2Loss',
                         r1_gamma=1.0, pl_weight=2.0, style_mixing_prob=0.9), print_fn=lambda *a, **k: messages.append(' '.join(map(str, a))))
    result = tl.training_loop(**kwargs)

    files = set(os.listdir(run_dir))
    for name in ['reals.png', 'fakes_init.png', 'stats.jsonl', 'network-snapshot-000000.pkl', 'resume-000000.pt',
                 'fakes000000.png', 'paint000000.png']:
        assert name in files, f'{name} missing; have {sorted(files)}'
    assert not [f for f in files if f.startswith('.tmp-')], 'temporary files left behind'

    # Statistics: one line per tick, upstream's names, finite losses.
    lines = [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    assert len(lines) == 3   # ticks at 4, 8 and 16 images (tick 0 comes after the first batch)
    stats = {}
    for line in lines:
        stats.update(line)
    for name in ['Loss/G/loss', 'Loss/D/loss', 'Loss/r1_penalty', 'Loss/D/reg', 'Loss/pl_penalty', 'Loss/G/reg',
                 'Loss/scores/fake', 'Loss/scores/real', 'Loss/signs/fake', 'Loss/signs/real', 'Progress/kimg', 'Timing/sec_per_kimg',
                 'Timing/Gmain', 'Timing/Greg', 'Timing/Dmain', 'Timing/Dreg']:    # Per-phase milliseconds, as upstream's (on the CPU too).
        assert name in stats, f'{name} not in stats.jsonl'
        assert torch.isfinite(torch.tensor(stats[name]['mean'])), f'{name} is not finite'
    assert any(line.startswith('tick 0') and 'sec/kimg' in line and 'augment' in line for line in messages)

    # Training changed G and D; G_ema follows G; the snapshot holds the final networks.
    assert result.cur_nimg == 16 and result.batch_idx == 4
    torch.manual_seed(tl.derive_seed(1, tl.STREAM_INIT))
    init = _params(dnnlib.util.construct_class_by_name(**kwargs.G_kwargs, c_dim=0, img_resolution=16, img_channels=3))
    changed = [n for n, p in _params(result.G).items() if not torch.equal(p, init[n])]
    assert len(changed) == len(init), f'parameters that did not change: {set(init) - set(changed)}'
    snapshot = networks.load_network(str(run_dir / 'network-snapshot-000000.pkl'))
    for name, p in result.G_ema.named_parameters():
        assert torch.equal(dict(snapshot.G_ema.named_parameters())[name], p.cpu())
    assert snapshot.training_set_kwargs.path == image_folder

def _run(image_folder, run_dir, **overrides):
    os.makedirs(run_dir, exist_ok=True)
    settings = dict(run_dir=str(run_dir), network_snapshot_ticks=100, G_reg_interval=2, D_reg_interval=3,
        loss_kwargs=dict(class_name='training.loss.StyleGAN2Loss', r1_gamma=1.0, pl_weight=2.0, style_mixing_prob=0.9))
    kwargs = loop_kwargs(image_folder, **dict(settings, **overrides))
    return tl.training_loop(**kwargs)

def test_resume_is_exact(image_folder, tmp_path):
    """6 steps straight == 4 steps, stop, resume from the checkpoint, 2 more steps (bitwise).
    With ADA (p moves every 3 steps, so the stop falls inside an ADA window), lazy R1 every
    3 steps, path-length regularisation every 2 steps and style mixing: every random draw
    and every piece of state must come back."""
    from training.augment import AUGPIPE_SPECS
    ada = dict(augment_kwargs=dict(class_name='training.augment.AugmentPipe', **AUGPIPE_SPECS['bgc']),
               ada_target=0.0, ada_interval=3, ada_kimg=0.05, augment_p=0.1)
    straight = _run(image_folder, tmp_path / 'straight', total_kimg=0.024, **ada)
    _run(image_folder, tmp_path / 'split', total_kimg=0.016, **ada)
    state_path = checkpoint.find_latest_resume_state(str(tmp_path / 'split'))
    assert state_path is not None and os.path.basename(state_path) == 'resume-000000.pt'
    resumed = _run(image_folder, tmp_path / 'split', total_kimg=0.024, resume_state=state_path, **ada)
    assert resumed.batch_idx == straight.batch_idx == 6
    assert float(straight.augment_pipe.p) != 0.1, 'ADA did not move p'
    for attr in ('G', 'D', 'G_ema', 'augment_pipe'):
        a = dict(getattr(straight, attr).state_dict())
        b = dict(getattr(resumed, attr).state_dict())
        for name in a:
            assert torch.equal(a[name], b[name]), f'{attr}.{name} differs after resume (max diff {float((a[name] - b[name]).abs().max())})'

def test_run_state_is_saved_and_restored_whole(image_folder, tmp_path):
    """The checkpoint holds the run's state as the resumed run starts: the next tick, the
    counters, the run id; restoring it names the checkpoint as the run's last one."""
    result = _run(image_folder, tmp_path / 'run', total_kimg=0.016)
    path = checkpoint.find_latest_resume_state(str(tmp_path / 'run'))
    data = checkpoint.load_resume_state(path)
    state = checkpoint.RunState.from_checkpoint(data, path)
    assert (state.cur_nimg, state.batch_idx, state.cur_tick) == (result.cur_nimg, result.batch_idx, result.cur_tick) == (16, 4, 3)
    assert state.last_checkpoint == path and state.run_id == data['run_id'] and state.elapsed_sec > 0
    assert state.stored() == {name: data[name] for name in checkpoint.RunState.STORED}
    del data['run_id']      # A checkpoint from before run ids: a new id, never pruned.
    old = checkpoint.RunState.from_checkpoint(data, path)
    assert old.last_checkpoint is None and old.run_id != state.run_id and old.cur_nimg == state.cur_nimg

def test_unreadable_resume_checkpoint_is_one_clear_line(tmp_path):
    path = tmp_path / 'resume-000000.pt'
    path.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='resume-000000.pt: not a readable resume checkpoint') as info:
        checkpoint.load_resume_state(str(path))
    message = str(info.value)
    assert '\n' not in message
    assert 'weights_only' not in message, "never pass on torch's advice to load with weights_only=False"

def test_resume_checkpoint_is_plain_data(image_folder, tmp_path):
    _run(image_folder, tmp_path / 'run', total_kimg=0.008)
    state = torch.load(checkpoint.find_latest_resume_state(str(tmp_path / 'run')), weights_only=True)
    for key in ['run_id', 'G', 'D', 'G_ema', 'augment_pipe', 'G_opt', 'D_opt', 'loss', 'cur_nimg', 'cur_tick', 'batch_idx',
                'batch_size', 'num_gpus', 'random_seed', 'elapsed_sec', 'ada_pending', 'rng']:
        assert key in state
    assert state['cur_nimg'] == 8 and state['batch_idx'] == 2 and set(state['loss']) == {'pl_mean'}

def test_resume_state_of_another_architecture_is_a_clear_error(image_folder, tmp_path):
    _run(image_folder, tmp_path / 'run', total_kimg=0.004)
    state_path = checkpoint.find_latest_resume_state(str(tmp_path / 'run'))
    with pytest.raises(ValueError, match='G does not match this run'):
        _run(image_folder, tmp_path / 'run', total_kimg=0.008, resume_state=state_path,
             G_kwargs=dict(loop_kwargs(image_folder).G_kwargs, hidden_dim=24))

#----------------------------------------------------------------------------

class NaNEveryOtherStepLoss(loss_module.StyleGAN2Loss):
    """Real logits become NaN on every other Dmain call: a diverging D, on purpose."""
    calls = 0

    def run_D(self, img, c, blur_sigma=0.0, update_emas=False):
        logits = super().run_D(img, c, blur_sigma=blur_sigma, update_emas=update_emas)
        if img.requires_grad is False and not update_emas:
            NaNEveryOtherStepLoss.calls += 1
            if NaNEveryOtherStepLoss.calls % 2 == 1:
                return logits * float('nan')
        return logits

def test_nan_losses_are_counted_logged_and_neutralised(image_folder, tmp_path):
    messages = []
    result = _run(image_folder, tmp_path / 'run', total_kimg=0.016,
                  loss_kwargs=dict(class_name=NaNEveryOtherStepLoss, r1_gamma=1.0),
                  print_fn=lambda *a, **k: messages.append(' '.join(map(str, a))))
    assert NaNEveryOtherStepLoss.calls > 0
    for module in (result.G, result.D, result.G_ema):
        for name, p in module.named_parameters():
            assert torch.isfinite(p).all(), f'{name} became non-finite'
    warnings = [m for m in messages if m.startswith('Warning:') and 'non-finite loss values' in m]
    assert warnings, 'no warning about non-finite losses'
    stats = [json.loads(line) for line in (tmp_path / 'run' / 'stats.jsonl').read_text().splitlines()]
    nan_count = sum(s[name]['mean'] * s[name]['num'] for s in stats for name in s if name.startswith('Loss/nonfinite/'))
    assert nan_count > 0
    grad_count = sum(s['Progress/nonfinite_grads']['mean'] * s['Progress/nonfinite_grads']['num'] for s in stats)
    assert grad_count > 0

class PoisonedAdam(torch.optim.Adam):
    """Adam whose 4th step makes every parameter NaN: a run that diverges after its first checkpoint."""
    def step(self, closure=None):
        result = super().step(closure)
        self.num_steps = getattr(self, 'num_steps', 0) + 1
        if self.num_steps == 4:
            with torch.no_grad():
                for group in self.param_groups:
                    for param in group['params']:
                        param.fill_(float('nan'))
        return result

def test_non_finite_weights_stop_the_run_and_keep_the_last_good_checkpoint(image_folder, tmp_path):
    run_dir = tmp_path / 'run'
    messages = []
    with pytest.raises(checkpoint.RunStopped, match=r'^G\.\S+ became NaN or infinite at 0\.0 kimg; training stopped and the last good '
                       r'checkpoint .*resume-000000.pt is kept'):
        _run(image_folder, run_dir, total_kimg=0.032, kimg_per_tick=0.004, network_snapshot_ticks=1,
             G_opt_kwargs=dict(class_name=PoisonedAdam, lr=0.002, betas=(0, 0.99), eps=1e-8),
             print_fn=lambda *a, **k: messages.append(' '.join(map(str, a))))
    state = checkpoint.load_resume_state(str(run_dir / 'resume-000000.pt'))
    assert state['cur_nimg'] < 16 and all(torch.isfinite(t).all() for t in state['G'].values())
    for name in os.listdir(run_dir):
        if name.startswith('network-snapshot-'):
            network = networks.load_network(str(run_dir / name))
            assert all(torch.isfinite(t).all() for t in network.G.state_dict().values()), f'{name} holds non-finite weights'

#----------------------------------------------------------------------------

def test_resume_from_network_file(image_folder, tmp_path):
    first = _run(image_folder, tmp_path / 'a', total_kimg=0.004, network_snapshot_ticks=1)
    pkl = tmp_path / 'a' / 'network-snapshot-000000.pkl'
    second = _run(image_folder, tmp_path / 'b', total_kimg=0.004, resume_pkl=str(pkl), G_opt_kwargs=dict(loop_kwargs(image_folder).G_opt_kwargs, lr=0.0),
                  D_opt_kwargs=dict(loop_kwargs(image_folder).D_opt_kwargs, lr=0.0))
    # With lr 0, the new run's G is exactly the file's G.
    for name, p in first.G.named_parameters():
        assert torch.equal(dict(second.G.named_parameters())[name], p), name

def test_resume_from_network_file_of_another_resolution(image_folder, tmp_path):
    from tests.training.conftest import make_image_folder
    _run(image_folder, tmp_path / 'a', total_kimg=0.004, network_snapshot_ticks=1)
    pkl = str(tmp_path / 'a' / 'network-snapshot-000000.pkl')
    data32 = make_image_folder(tmp_path / 'data32', resolution=32)
    with pytest.raises(ValueError, match='img_resolution=16, this run needs 32'):
        _run(data32, tmp_path / 'b', total_kimg=0.004, resume_pkl=pkl)

#----------------------------------------------------------------------------

def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    """A write killed before the rename leaves the previous file intact and no temporary."""
    path = tmp_path / 'network-snapshot-000000.pkl'
    dnnlib.util.atomic_write(str(path), b'old content')
    def failing_replace(src, dst):
        raise KeyboardInterrupt('killed')
    monkeypatch.setattr(os, 'replace', failing_replace)
    with pytest.raises(KeyboardInterrupt):
        pictures.save_image_grid(torch.zeros([1, 3, 4, 4]), str(path), drange=(-1, 1), grid_size=(1, 1))
    assert path.read_bytes() == b'old content'
    assert os.listdir(tmp_path) == ['network-snapshot-000000.pkl']

def test_paint_columns():
    from painting.paintings import paint_columns
    assert paint_columns(4) == [0, 1, 2, 3]
    cols = paint_columns(64)
    assert len(cols) == 16 and cols[0] == 0 and cols[-1] == 63 and cols == sorted(set(cols))

#----------------------------------------------------------------------------

def test_two_stage_fpa_unet_keeps_the_fpa_frozen(image_folder, tmp_path):
    """Stage 1 trains a plain FPA; stage 2 builds FPA/U-Net with train_fpa=False from its file:
    the FPA is the file's G_ema FPA, in G and in G_ema, and stays fixed in both; only the U-Net trains."""
    _run(image_folder, tmp_path / 'fpa', total_kimg=0.008, network_snapshot_ticks=1)
    pkl = sorted(glob.glob(str(tmp_path / 'fpa' / 'network-snapshot-*.pkl')))[-1]     # After training: G_ema != G.
    stage1 = networks.load_network(pkl)
    fpa = stage1.G_ema
    assert any(not torch.equal(p, q) for p, q in zip(stage1.G.parameters(), fpa.parameters())), 'the test needs G != G_ema in the file'
    unet_kwargs = dict(loop_kwargs(image_folder).G_kwargs, unet_kwargs=dict(dim=8, dim_mults=[1, 2], attn_heads=1, attn_head_dim=8),
                       train_fpa=False)
    result = _run(image_folder, tmp_path / 'unet', total_kimg=0.008, resume_pkl=pkl, G_kwargs=unet_kwargs)
    fpa_params = dict(fpa.named_parameters())
    for G in (result.G, result.G_ema):
        for name, p in G.named_parameters():
            if name in fpa_params:
                assert torch.equal(p, fpa_params[name]), f'frozen FPA parameter {name} is not the file\'s G_ema one'
    assert set(fpa_params) < {name for name, _ in result.G.named_parameters()}
    torch.manual_seed(tl.derive_seed(1, tl.STREAM_INIT))   # The loop's initialisation of stage 2.
    G_init = dict(dnnlib.util.construct_class_by_name(**unet_kwargs, c_dim=0, img_resolution=16, img_channels=3).named_parameters())
    unet_names = [name for name, _ in result.G.named_parameters() if name not in fpa_params]
    assert unet_names and all(name.startswith('synthesis.unet.') for name in unet_names)
    changed = [name for name in unet_names if not torch.equal(dict(result.G.named_parameters())[name], G_init[name])]
    assert len(changed) > len(unet_names) // 2, 'the U-Net did not train'

def test_freeze_d_layers_stay_fixed(image_folder, tmp_path):
    torch.manual_seed(0)
    kwargs = loop_kwargs(image_folder)
    D_kwargs = dict(kwargs.D_kwargs, freeze_layers=2)
    result = _run(image_folder, tmp_path / 'run', total_kimg=0.008, D_kwargs=D_kwargs)
    torch.manual_seed(tl.derive_seed(1, tl.STREAM_INIT))
    dnnlib.util.construct_class_by_name(**kwargs.G_kwargs, c_dim=0, img_resolution=16, img_channels=3)
    D0 = dnnlib.util.construct_class_by_name(**D_kwargs, c_dim=0, img_resolution=16, img_channels=3)
    before = dict(D0.named_buffers())
    after = dict(result.D.named_buffers())
    frozen = [name for name in before if name.endswith(('.weight', '.bias'))]
    assert frozen, 'Freeze-D should turn the first layers into buffers'
    for name in frozen:
        assert torch.equal(before[name], after[name]), f'frozen D layer {name} changed'
    trained = dict(D0.named_parameters())
    assert any(not torch.equal(trained[name], p) for name, p in result.D.named_parameters())

def _fake_mean_metric(opts, name):
    """A cheap registered metric: the mean pixel of 8 generated images (plumbing test only)."""
    z = torch.randn([8, opts.G.z_dim], generator=torch.Generator().manual_seed(opts.seed))
    return {name: float(opts.G(z.to(opts.device), torch.zeros([8, opts.G.c_dim], device=opts.device)).mean())}

def test_metrics_after_each_network_snapshot(image_folder, tmp_path):
    from metrics import metric_main
    if not metric_main.is_valid_metric('test_fake_mean'):
        metric_main.register_metric('test_fake_mean', _fake_mean_metric, ())
    _run(image_folder, tmp_path / 'run', total_kimg=0.008, network_snapshot_ticks=1, metrics=['test_fake_mean'])
    lines = [json.loads(line) for line in (tmp_path / 'run' / 'metric-test_fake_mean.jsonl').read_text().splitlines()]
    assert len(lines) == 2   # tick 0 and the final tick
    assert lines[-1]['snapshot_pkl'] == 'network-snapshot-000000.pkl'
    assert abs(lines[-1]['results']['test_fake_mean']) <= 1

@pytest.mark.parametrize('num_steps, unet, columns', [(4, False, 4), (20, False, 16), (20, True, 17)])
def test_paint_grid_layout(tmp_path, num_steps, unet, columns):
    """Two rows (updates, partial images) per seed; at most 16 step columns; +1 for the U-Net."""
    import PIL.Image
    kwargs = dict(loop_kwargs('unused').G_kwargs, num_steps=num_steps)
    if unet:
        kwargs['unet_kwargs'] = dict(dim=8, dim_mults=[1, 2], attn_heads=1, attn_head_dim=8)
    G = dnnlib.util.construct_class_by_name(**kwargs, c_dim=0, img_resolution=16, img_channels=3).eval()
    path = str(tmp_path / 'paint.png')
    z = torch.randn([3, G.z_dim])
    paintings.save_paint_grid(G, z, torch.zeros([3, 0]), path)
    img = PIL.Image.open(path)
    assert img.size == (columns * 16, 3 * 2 * 16) and img.mode == 'RGB'
    # Seed 0's last partial image (row 1, last step column) is the FPA's image tanh(W); with a
    # U-Net, the extra column holds G's output.
    grid = np.asarray(img)
    fpa_col = columns - 1 - int(unet)
    with torch.no_grad():
        painting = G.paint(z[:1], torch.zeros([1, 0]))
    expected = pictures.to_uint8(painting.image[:1])[0]
    assert np.abs(grid[16:32, fpa_col * 16:(fpa_col + 1) * 16].astype(int) - expected.astype(int)).max() <= 1
    if unet:
        with torch.no_grad():
            out = pictures.to_uint8(G(z[:1], torch.zeros([1, 0])))[0]
        assert np.abs(grid[16:32, -16:].astype(int) - out.astype(int)).max() <= 1

@pytest.mark.gpu
@pytest.mark.parametrize('precision, fp16_res', [('fp32', 0), ('bf16', 0), ('fp16', 2)])
def test_cuda_run_trains_and_snapshots(image_folder, tmp_path, monkeypatch, precision, fp16_res):
    """The loop on CUDA: losses finite, the snapshot loads on the CPU and its G_ema paints the
    same images there as on the GPU (float32, TF32 off in the comparison)."""
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)
    monkeypatch.setattr(torch.backends.cuda.matmul, 'allow_tf32', False)
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    D_kwargs = dict(TINY_D, num_fp16_res=fp16_res, conv_clamp=256 if fp16_res else None)
    kwargs = loop_kwargs(image_folder, run_dir=str(run_dir), device='cuda', precision=precision, D_kwargs=D_kwargs,
                         network_snapshot_ticks=1)
    result = tl.training_loop(**kwargs)
    assert result.cur_nimg == 16 and next(result.G.parameters()).is_cuda
    lines = [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    for name in ('Loss/G/loss', 'Loss/D/loss', 'Loss/r1_penalty'):
        assert all(torch.isfinite(torch.tensor(line[name]['mean'])) for line in lines if name in line), name
    snapshot = networks.load_network(str(run_dir / 'network-snapshot-000000.pkl'))
    z = torch.randn([3, result.G_ema.z_dim], generator=torch.Generator().manual_seed(0))
    c = torch.zeros([3, 0])
    with torch.no_grad():
        on_gpu = result.G_ema.float()(z.cuda(), c.cuda(), noise_mode='const').cpu()
        on_cpu = snapshot.G_ema(z, c, noise_mode='const')
    assert_close(on_gpu, on_cpu, rtol=0, atol=1e-3, name=f'{precision} G_ema on GPU vs its snapshot on CPU')

def test_data_replaced_after_the_start_is_one_line(tmp_path):
    import zipfile   # pylint: disable=import-outside-toplevel
    from tests.training.conftest import make_image_folder   # pylint: disable=import-outside-toplevel
    folder = make_image_folder(tmp_path / 'data')
    data = str(tmp_path / 'data.zip')
    with zipfile.ZipFile(data, 'w') as z:
        for name in sorted(os.listdir(folder)):
            z.write(os.path.join(folder, name), name)
    real_open, reads = zipfile.ZipFile.open, []
    def replaced(self, name, *args, **kwargs):   # The first image (read by the constructor) is there; later ones are not.
        reads.append(name)
        if name.endswith('.png') and len(reads) > 1:
            raise KeyError(f"There is no item named '{name}' in the archive")
        return real_open(self, name, *args, **kwargs)
    kwargs = loop_kwargs(data, run_dir=str(tmp_path / 'run'))
    os.makedirs(kwargs['run_dir'])
    import unittest.mock   # pylint: disable=import-outside-toplevel
    with unittest.mock.patch.object(zipfile.ZipFile, 'open', replaced):
        with pytest.raises(checkpoint.RunStopped, match=r'--data=.*data.zip: the training data changed or was damaged after the start '
                                                        r'\(.*There is no item named'):
            tl.training_loop(**dict(kwargs, training_set_kwargs=dict(kwargs['training_set_kwargs'], path=data)))
    os.remove(data)
    with pytest.raises(checkpoint.RunStopped, match=r'the training data no longer reads as at the start \(.*data.zip: dataset not found\)'):
        tl.training_loop(**dict(kwargs, training_set_kwargs=dict(kwargs['training_set_kwargs'], path=data)))
