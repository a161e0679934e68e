"""The study's pieces on tiny data: train.py --minutes, bench/gpu_train.sh on the CPU with a
tiny budget (the GPU run's steps and its folder of results), the PIL plot, bad options."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'bench'))
import study   # noqa: E402

TINY_FPA = ['--cfg=fpa-cpu', '--batch=4', '--aug=noaug', '--metrics=none', '--workers=0', '--device=cpu']

@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """A folder of 8 random 16x16 RGB PNGs (seeded)."""
    folder = tmp_path_factory.mktemp('images')
    rnd = np.random.RandomState(0)
    for i in range(8):
        PIL.Image.fromarray(rnd.randint(0, 256, size=(16, 16, 3), dtype=np.uint8)).save(folder / f'{i}.png')
    return str(folder)

@pytest.fixture(scope='module')
def tiny_run(images, tmp_path_factory):
    """A tiny FPA run stopped by --minutes: its run directory."""
    outdir = str(tmp_path_factory.mktemp('runs'))
    args = ['--outdir', outdir, '--data', images, '--kimg=1000', '--tick=0.008', '--snap=1000', '--minutes=0.0001'] + TINY_FPA
    result = CliRunner().invoke(train.main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [run_dir] = glob.glob(os.path.join(outdir, '0*'))
    return run_dir

def test_report_from_recorded_results(images, tiny_run, tmp_path):
    """--report-only: the table (into the page between its markers and table.md), the plots,
    the sample grid and the painting figure, from results.jsonl rows."""
    network = glob.glob(os.path.join(tiny_run, 'network-snapshot-*.pkl'))[0]
    workdir = tmp_path / 'study' / 'emoji'
    workdir.mkdir(parents=True)
    rows = [dict(model='fpa', minutes=m, sec=60.0 * m, kimg=2.0 * m, fid=100.0 / m, fid_images=4, network=network, run_dir=tiny_run)
            for m in (1, 2)] + [dict(model='real', fid=5.0, fid_images=4)]
    (workdir / 'results.jsonl').write_text(''.join(json.dumps(row) + '\n' for row in rows))
    os.symlink(images, workdir / 'real-reference-4')
    docs = tmp_path / 'docs' / 'results.md'
    docs.parent.mkdir()
    docs.write_text(f'before\n{study.TABLE_BEGIN}\nold table\n{study.TABLE_END}\nafter\n')
    result = CliRunner().invoke(study.main, ['--outdir', str(tmp_path / 'study'), '--datasets=emoji', '--docs', str(docs), '--report-only'])
    assert result.exit_code == 0, result.output
    page = docs.read_text()
    assert 'old table' not in page and '| emoji | FPA | 50.0 | 4.0 | 30.0 |' in page and page.endswith('after\n')
    assert '| emoji | real images (FID: other real images, the noise floor) | 5.0 |' in page
    figures = sorted(os.listdir(docs.parent / 'results'))
    assert figures == ['emoji-fid-kimg.png', 'emoji-fid-minutes.png', 'emoji-fpa-fakes.png', 'emoji-fpa-paint.png', 'table.md']

def test_train_minutes_stops_with_a_checkpoint_that_continues(images, tmp_path):
    """--minutes stops a run long before --kimg, with a snapshot and a resume checkpoint; the
    checkpoint continues the run to a later kimg."""
    outdir = str(tmp_path / 'runs')
    args = ['--outdir', outdir, '--data', images, '--kimg=1000', '--tick=0.008', '--snap=1000', '--minutes=0.0001'] + TINY_FPA
    result = CliRunner().invoke(train.main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [run_dir] = glob.glob(os.path.join(outdir, '0*'))
    [resume] = glob.glob(os.path.join(run_dir, 'resume-*.pt'))
    assert glob.glob(os.path.join(run_dir, 'network-snapshot-*.pkl'))
    result = CliRunner().invoke(train.main, args + [f'--resume={resume}'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        kimgs = [json.loads(line)['Progress/kimg']['mean'] for line in f]
    assert kimgs[-1] > kimgs[0]

def run_gpu_train(out, **env):
    env = dict(os.environ, DEVICE='cpu', CFG='fpa-cpu', METRIC='none', MINUTES='0.0001', TICK='0.008', SNAP='1',
               EXTRA='--batch=4 --aug=noaug --workers=0', PYTHON=sys.executable, OMP_NUM_THREADS='1', **env)
    return subprocess.run(['bash', os.path.join(REPO, 'bench', 'gpu_train.sh'), str(out)], env=env, capture_output=True, text=True)

def test_gpu_train_script_on_the_cpu(images, tmp_path):
    """The GPU script's steps with a tiny budget on the CPU: one folder, at most 8 files."""
    proc = run_gpu_train(tmp_path / 'out', EMOJI_DATA=images)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted(os.listdir(tmp_path / 'out'))
    assert {'env.txt', 'log.txt', 'stats.jsonl', 'fakes.png', 'paint.png', 'summary.md'} <= set(files) and len(files) <= 8
    assert 'not computed' in (tmp_path / 'out' / 'summary.md').read_text()
    assert PIL.Image.open(tmp_path / 'out' / 'fakes.png').size == (8 * 16 * 2, 8 * 16 * 2)
    assert "the authors' training step not timed (it needs DEVICE=cuda" in proc.stdout and 'authors-step.md' not in files

def test_gpu_train_script_refuses_missing_data(tmp_path):
    proc = run_gpu_train(tmp_path / 'out', EMOJI_DATA=str(tmp_path / 'absent.zip'))
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines()[-1].startswith('gpu_train.sh: EMOJI_DATA=')

def test_plot_curves_draws_every_series(tmp_path):
    path = str(tmp_path / 'plot.png')
    study.plot_curves([('a', (255, 0, 0), [(1, 80.0), (2, 60.0)]), ('b', (0, 0, 255), [(1, 90.0)])], 10.0, 'minutes', 'title', path)
    pixels = np.asarray(PIL.Image.open(path).convert('RGB')).reshape(-1, 3)
    assert ((pixels == (255, 0, 0)).all(axis=1)).any() and ((pixels == (0, 0, 255)).all(axis=1)).any()

@pytest.mark.parametrize('args, hint', [(['--datasets=cifar'], '--datasets'), (['--models=fpa,big'], '--models'),
                                        (['--minutes=1', '--fid-every=2'], '--fid-every')])
def test_study_refuses_bad_options(args, hint, tmp_path):
    result = CliRunner().invoke(study.main, args + ['--outdir', str(tmp_path), '--report-only'])
    assert result.exit_code == 2 and hint in result.output

def test_stripe_index_separates_full_width_bands_from_noise():
    import torch
    bands = torch.zeros(2, 3, 32, 32)
    bands[:, :, 10:14, :] = 255             # A horizontal band across the full width.
    bands[:, :, :, 20:22] += 100            # and a vertical one.
    noise = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255
    assert study.stripe_index(bands) == pytest.approx(1.0)
    assert study.stripe_index(noise) < 0.1

#----------------------------------------------------------------------------
# bench/diagnose_collapse.py: the collapse diagnosis behind docs/results.md.

import diagnose_collapse   # noqa: E402
import torch                # noqa: E402
from metrics import collapse_index   # noqa: E402

def test_collapse_measures_on_known_sets():
    rnd = np.random.RandomState(0)
    real = rnd.randn(64, 48)
    assert collapse_index.collapse_index(real, np.repeat(real[:4], 16, axis=0)) == 1.0     # 4 images repeated: every one has a twin.
    same_law = [collapse_index.collapse_index(rnd.randn(256, 8), rnd.randn(256, 8)) for _ in range(8)]
    assert 0.4 < np.mean(same_law) < 0.6                                                         # Data-like: about half.
    assert collapse_index.collapse_index(real, 10 * rnd.randn(64, 48)) == 0.0           # Spread wider than the data.
    assert diagnose_collapse.seed_spread(np.ones([16, 3, 5])) == 0.0
    assert abs(diagnose_collapse.seed_spread(rnd.randn(4000, 8)) - 1) < 0.05                   # Independent noise: about 1.
    x = rnd.randn(5, 3)
    brute = np.mean([np.linalg.norm(x[i] - x[j]) for i in range(5) for j in range(5) if i != j])
    assert abs(diagnose_collapse.mean_pairwise_distance(x) - brute) < 1e-7
    nn = [min(np.linalg.norm(x[i] - x[j]) for j in range(5) if j != i) for i in range(5)]
    np.testing.assert_allclose(collapse_index.nearest_neighbour_distances(torch.as_tensor(x)).numpy(), nn, atol=1e-7)

def test_collapse_diagnosis_of_a_run(tiny_run, images):
    result = CliRunner().invoke(diagnose_collapse.main, ['--run', tiny_run, '--data', images, '--num=8'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    stats_rows = [json.loads(line) for line in open(os.path.join(tiny_run, 'stats.jsonl'))]
    tick_table = result.output.split('Per snapshot')[0]
    assert tick_table.count('\n| ') == len(stats_rows) + 1          # Header and one row per tick.
    snapshot_table = result.output.split('Per snapshot')[1].split('Per painting step')[0]
    rows = [line for line in snapshot_table.splitlines() if line.startswith('| ') and not line.startswith('| kimg')]
    assert len(rows) == len(glob.glob(os.path.join(tiny_run, 'network-snapshot-*.pkl')))
    assert all(len(row.split('|')) == 8 and 'nan' not in row for row in rows)   # Every column filled for a painter.
    step_table = result.output.split('Per painting step')[1]
    steps = [line.split('|')[1].strip() for line in step_table.splitlines() if line.startswith('| ') and not line.startswith('| step')]
    import networks
    G = networks.load_network(sorted(glob.glob(os.path.join(tiny_run, 'network-snapshot-*.pkl')))[-1]).G_ema
    assert steps[0] == '1' and steps[-1] == str(G.num_ws)                   # From the first stroke to the last.
    result = CliRunner().invoke(diagnose_collapse.main, ['--run', images, '--data', images])
    assert result.exit_code == 2 and 'no stats.jsonl' in result.output and 'Traceback' not in result.output

def test_step_spread_of_a_painter_is_zero_without_z():
    G = _tiny_painter('fpa')
    with torch.no_grad():
        G.synthesis.latent_to_init.weight.zero_()                          # No path from z to the slow net: every seed paints alike.
        G.synthesis.input_generator.weight.zero_()
    with torch.no_grad():
        rows = diagnose_collapse.step_rows(G.paint(torch.randn([8, G.z_dim]), torch.zeros([8, 0])))
    assert [r['step'] for r in rows] == [1, 2, 3, 4]                        # T = 4: every step.
    assert all(abs(r[k]) < 1e-6 for r in rows for k in ('key', 'written', 'value', 'update', 'partial_image'))

#----------------------------------------------------------------------------
# docs/unet_figure.py: the U-Net comparison figure of docs/results.md.

sys.path.insert(0, os.path.join(REPO, 'docs'))
import unet_figure   # noqa: E402

def _tiny_painter(gen: str, **extra):
    import dnnlib
    import networks
    kwargs = networks.generator_kwargs(gen)
    kwargs.update(num_steps=4, step_latent_dim=4, step_input_dim=16, hidden_dim=32, **extra)
    torch.manual_seed(0)                    # The same weights on every run.
    return dnnlib.util.construct_class_by_name(**kwargs, z_dim=16, c_dim=0, img_resolution=16, img_channels=3).eval()

def test_unet_figure_rows(tmp_path):
    from torch_utils import persistence
    fpa, unet = str(tmp_path / 'fpa.pkl'), str(tmp_path / 'unet.pkl')
    persistence.save_network(fpa, G_ema=_tiny_painter('fpa'))
    persistence.save_network(unet, G_ema=_tiny_painter('fpa-unet', unet_kwargs=dict(dim=8, attn_heads=1, attn_head_dim=8)))
    out = str(tmp_path / 'fig.png')
    result = CliRunner().invoke(unet_figure.main, ['--net', f'plain={fpa}', '--net', f'refined={unet}', '--seeds=0-4', '--scale=2', '--out', out])
    assert result.exit_code == 0, result.output
    figure = np.asarray(PIL.Image.open(out))
    assert figure.shape[0] == 3 * 32 + 2 * 2                                  # Rows: plain FPA, refined's FPA, its U-Net.
    G = unet_figure.api.load_generator(unet, device='cpu')
    rows = dict(unet_figure.figure_rows(G, [0, 1, 2, 3, 4]))
    assert rows['FPA'].shape == rows['U-Net'].shape == (5, 16, 16, 3)
    assert not np.array_equal(rows['FPA'], rows['U-Net'])                    # The refined row is the U-Net's output, not W again.
    right = figure[:, -16 * 2:]                                              # The last seed's column, all three rows.
    np.testing.assert_array_equal(right[2 * 34 : 2 * 34 + 32 : 2, ::2], rows['U-Net'][4])

def test_unet_figure_refuses_a_net_without_label(tmp_path):
    from torch_utils import persistence
    fpa = str(tmp_path / 'fpa.pkl')
    persistence.save_network(fpa, G_ema=_tiny_painter('fpa'))
    result = CliRunner().invoke(unet_figure.main, ['--net', fpa, '--out', str(tmp_path / 'x.png')])
    assert result.exit_code != 0 and 'expected LABEL=PATH' in result.output
    missing = str(tmp_path / 'missing.pkl')
    result = CliRunner().invoke(unet_figure.main, ['--net', f'a={missing}', '--out', str(tmp_path / 'x.png')])
    assert result.exit_code == 2 and result.exception is not None and isinstance(result.exception, SystemExit)
    assert f'{missing}: no such file' in result.output and 'Traceback' not in result.output
    assert not os.path.exists(tmp_path / 'x.png')

#----------------------------------------------------------------------------
# bench/bench_sampling.py: seconds per image of network files, side by side.

import bench_sampling   # noqa: E402

def test_bench_sampling_table(tmp_path):
    from torch_utils import persistence
    fpa, unet = str(tmp_path / 'fpa.pkl'), str(tmp_path / 'unet.pkl')
    persistence.save_network(fpa, G_ema=_tiny_painter('fpa'))
    persistence.save_network(unet, G_ema=_tiny_painter('fpa-unet', unet_kwargs=dict(dim=8, attn_heads=1, attn_head_dim=8)))
    result = CliRunner().invoke(bench_sampling.main, ['--net', f'FPA={fpa}', '--net', f'FPA/U-Net={unet}', '--batch=4', '--rounds=1'])
    assert result.exit_code == 0, result.output
    rows = [line.split('|') for line in result.output.splitlines() if line.startswith('| FPA')]
    assert [r[1].strip() for r in rows] == ['FPA', 'FPA/U-Net']
    assert rows[0][4].strip() == '1.00x' and float(rows[1][2]) > 0 and float(rows[1][4].strip().rstrip('x')) > 0
    result = CliRunner().invoke(bench_sampling.main, ['--net', fpa])
    assert result.exit_code != 0 and 'expected LABEL=PATH' in result.output
    result = CliRunner().invoke(bench_sampling.main, ['--net', f'FPA={tmp_path / "missing.pkl"}'])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert 'missing.pkl: no such file' in result.output
