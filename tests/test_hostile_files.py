"""Hostile files through every route that reads one: nothing a file says is resolved to a
callable outside the explicit allow-lists, sizes a file asks for are bounded before anything
is allocated, and each refusal is one line naming the key and the value. Each hostile file
would write a marker file or overwrite a victim file if a name in it were ever called."""

import json
import os

import pytest
import torch
from click.testing import CliRunner

import calc_metrics
import dnnlib
import generate
import legacy
import networks
import train
from tests.training.conftest import make_image_folder
from torch_utils import persistence
from training import dataset as dataset_module
from training import checkpoint

RESOLUTION = 16

def tiny_fpa(**overrides) -> torch.nn.Module:
    kwargs = networks.generator_kwargs('fpa')
    kwargs.update(num_steps=4, step_latent_dim=4, step_input_dim=16, hidden_dim=32, **overrides)
    return dnnlib.util.construct_class_by_name(**kwargs, z_dim=16, c_dim=0, img_resolution=RESOLUTION, img_channels=3).eval()

@pytest.fixture
def victim(tmp_path):
    """A file a payload would overwrite, and a marker path a payload would create."""
    path = tmp_path / 'victim.txt'
    path.write_text('precious')
    files = dnnlib.EasyDict(victim=path, marker=tmp_path / 'marker')
    yield files
    assert path.read_text() == 'precious', 'a name from the file was called: the victim was overwritten'
    assert not files.marker.exists(), 'a name from the file was called: the marker was written'

def hostile_module_entry(class_name: str, marker) -> dict:
    """A module entry whose 'class' would write `marker` if it were called with its init_kwargs."""
    return dict(class_name=class_name, init_kwargs=dict(path=str(marker)), state_dict={})

def save_network_with(path, **entries) -> str:
    """A network file of this codebase (tiny FPA as G_ema unless given) with extra raw entries."""
    persistence.save_network(str(path), G_ema=tiny_fpa())
    data = torch.load(str(path), weights_only=True)
    data.update(entries)
    torch.save(data, str(path))
    return str(path)

def one_line_error(output: str) -> str:
    assert 'Traceback' not in output, output
    errors = [line for line in output.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1, output
    return errors[0]

# Names a payload would use: a function of ours that writes files, the same reached through
# the old allowed package prefixes, and a shell.
PAYLOAD_NAMES = ['torch_utils.persistence.save_network', 'networks.fpa.persistence.save_network',
                 'training.checkpoint.persistence.save_network']

#----------------------------------------------------------------------------
# Network files: module entries (every loader goes through persistence.module_from_data).

@pytest.mark.parametrize('class_name', PAYLOAD_NAMES)
def test_network_file_module_class_outside_the_allow_list(tmp_path, victim, class_name, monkeypatch):
    path = save_network_with(tmp_path / 'hostile.pkl', G_ema=hostile_module_entry(class_name, victim.marker))
    resolved = []
    monkeypatch.setattr(dnnlib.util, 'get_obj_by_name', lambda name: resolved.append(name))
    for load in (persistence.load_network, legacy.load_network_pkl):
        with pytest.raises(ValueError, match=rf"G_ema: class_name='{class_name}' is not allowed here \(expected networks.fpa.Generator"):
            load(path)
    assert resolved == [], 'the name was looked up before the allow-list refused it'

def test_network_file_through_generate_and_train(tmp_path, victim):
    path = save_network_with(tmp_path / 'hostile.pkl', G_ema=hostile_module_entry(PAYLOAD_NAMES[0], victim.marker),
                             G=hostile_module_entry(PAYLOAD_NAMES[0], victim.victim))
    result = CliRunner().invoke(generate.main, ['--network', path, '--seeds', '0', '--outdir', str(tmp_path / 'out')])
    assert result.exit_code != 0 and PAYLOAD_NAMES[0] in one_line_error(result.output)
    data = make_image_folder(tmp_path / 'data')
    result = CliRunner().invoke(train.main, ['--outdir', str(tmp_path / 'runs'), '--data', data, '--cfg=fpa-cpu', '--metrics=none',
                                             f'--resume={path}', '--dry-run'])
    assert result.exit_code != 0 and PAYLOAD_NAMES[0] in one_line_error(result.output)
    assert not (tmp_path / 'runs').exists()

def test_network_file_training_set_kwargs_through_calc_metrics(tmp_path, victim):
    # The hole the issue found: calc_metrics.py without --data built the stored dataset class.
    for kwargs in (dict(class_name='torch_utils.persistence.save_network', path=str(victim.victim)),
                   dict(class_name='subprocess.getoutput', cmd=f'touch {victim.marker}')):
        path = save_network_with(tmp_path / 'hostile.pkl', training_set_kwargs=kwargs)
        result = CliRunner().invoke(calc_metrics.calc_metrics, ['--network', path, '--metrics=none', '--device=cpu'])
        error = one_line_error(result.output)
        assert result.exit_code != 0
        assert f"training_set_kwargs: class_name='{kwargs['class_name']}' is not allowed" in error, error

def test_every_persistent_class_is_on_the_allow_list():
    import networks.fpa, networks.stylegan2, networks.stylegan3, networks.unet, training.augment   # pylint: disable=import-outside-toplevel,redefined-outer-name
    found = {f'{cls.__module__}.{cls.__qualname__}' for module in (networks.fpa, networks.stylegan2, networks.stylegan3, networks.unet, training.augment)
             for cls in vars(module).values() if isinstance(cls, type) and getattr(cls, '_persistent', False)}
    assert found == set(persistence.NETWORK_CLASSES)

#----------------------------------------------------------------------------
# Sizes a network file asks for.

def test_network_file_init_kwargs_asking_for_terabytes(tmp_path):
    G = tiny_fpa()
    entry = persistence.module_to_data(G)
    entry['init_kwargs']['hidden_dim'] = 2 ** 20       # An LSTM of 4 * 2^40 weights per matrix: 16 TB.
    path = save_network_with(tmp_path / 'huge.pkl', G_ema=entry)
    with pytest.raises(ValueError, match=r'G_ema: init_kwargs.hidden_dim=1048576 is above the limit 65536 for integers in a network file'):
        persistence.load_network(path)

    entry['init_kwargs']['hidden_dim'] = 2 ** 15       # Within the integer bound, but not what the file stores.
    path = save_network_with(tmp_path / 'big.pkl', G_ema=entry)
    with pytest.raises(ValueError, match=r'G_ema: init_kwargs make synthesis\.\S+ of shape \[\d+, \d+\], the file stores'):
        persistence.load_network(path)

    entry['state_dict'] = {}                           # Nothing stored to compare with: the byte budget holds.
    path = save_network_with(tmp_path / 'empty.pkl', G_ema=entry)
    with pytest.raises(ValueError, match=r'G_ema: init_kwargs ask for [\d.]+ GiB of tensors; the limit is what the file stores \(0 GiB\) plus 0.25 GiB'):
        persistence.load_network(path)

class _NeedsRealTensors(torch.nn.Module):
    def __init__(self, width=2):
        super().__init__()
        self.total = float(torch.ones(width).numpy().sum())     # Not possible with fake tensors.

def test_init_kwargs_that_cannot_be_checked_are_refused():
    with pytest.raises(ValueError, match=r'^x: cannot check the sizes init_kwargs ask for \(RuntimeError: '):
        persistence.check_init_kwargs(_NeedsRealTensors, dict(width=2), {}, 'x')

def test_network_file_within_bounds_still_loads(tmp_path):
    G = tiny_fpa()
    path = str(tmp_path / 'ok.pkl')
    persistence.save_network(path, G_ema=G)
    loaded = persistence.load_network(path).G_ema
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), loaded.state_dict().values()))

#----------------------------------------------------------------------------
# Resume checkpoints and dataset.json: plain data only; sizes bounded.

def test_resume_checkpoint_with_names_and_code(tmp_path, victim):
    path = str(tmp_path / 'resume-000000.pt')
    torch.save(dict(format=checkpoint.RESUME_STATE_FORMAT, version=checkpoint.RESUME_STATE_VERSION,
                    G=hostile_module_entry(PAYLOAD_NAMES[0], victim.marker)), path)
    G = tiny_fpa()
    state = checkpoint.load_resume_state(path)
    with pytest.raises(ValueError, match='G does not match this run'):
        checkpoint.load_module_state(G, state['G'], 'G', path)

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {victim.marker}',))
    torch.save(dict(format=checkpoint.RESUME_STATE_FORMAT, payload=Payload()), path)
    with pytest.raises(ValueError, match='not a readable resume checkpoint') as info:
        checkpoint.load_resume_state(path)
    assert 'weights_only' not in str(info.value) and '\n' not in str(info.value)

def test_dataset_json_label_asking_for_petabytes(tmp_path):
    data = make_image_folder(tmp_path / 'data', num_images=2)
    (tmp_path / 'data' / 'dataset.json').write_text(json.dumps({'labels': [['img0000.png', 0], ['img0001.png', 10 ** 12]]}))
    with pytest.raises(ValueError, match=r'dataset.json: class label 1000000000000 is above the limit of 65535'):
        dataset_module.ImageFolderDataset(data, use_labels=True)
    result = CliRunner().invoke(train.main, ['--outdir', str(tmp_path / 'runs'), '--data', data, '--cfg=fpa-cpu', '--cond=1', '--dry-run'])
    assert result.exit_code != 0 and 'class label 1000000000000' in one_line_error(result.output)
    (tmp_path / 'data' / 'dataset.json').write_text(json.dumps({'labels': [['img0000.png', 0], ['img0001.png', 10 ** 30]]}))
    with pytest.raises(ValueError, match=r'class label 1000000000000000000000000000000 is above the limit'):
        dataset_module.ImageFolderDataset(data, use_labels=True)

#----------------------------------------------------------------------------
# Detector weights: a torch.save file with code in it is refused without torch's advice.

def test_detector_file_with_code(tmp_path, victim):
    from metrics import inception   # pylint: disable=import-outside-toplevel
    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {victim.marker}',))
    path = str(tmp_path / 'inception-2015-12-05.pt')
    torch.save({'layers.conv.weight': Payload()}, path)
    with pytest.raises(ValueError, match=r'detector .*inception-2015-12-05.pt: not a readable torch.save file') as info:
        inception.read_state_dict(path)
    assert 'weights_only' not in str(info.value) and '\n' not in str(info.value)

#----------------------------------------------------------------------------
